/**
 * Checking a downloaded file against its pinned sha256: the streamed hash, the check (which
 * deletes a mismatching file), and the error a mismatch is.
 */
import { rm, stat } from 'node:fs/promises';
import { CellSetupError } from '../util/errors.js';
import { sha256File } from '../util/fs.js';

/** A downloaded file whose sha256 is not the pinned one. */
export class ChecksumMismatchError extends CellSetupError {
  override name = 'ChecksumMismatchError';
  constructor(
    readonly url: string,
    readonly path: string,
    readonly expected: string,
    readonly actual: string,
    readonly size: number,
    readonly expectedSize?: number,
  ) {
    const sizes =
      expectedSize !== undefined && expectedSize !== size
        ? `${size} bytes instead of ${expectedSize}`
        : `${size} bytes`;
    super(
      `checksum mismatch for ${url}: expected sha256 ${expected}, got sha256 ${actual} (${sizes}; downloaded to ${path}, now deleted). ` +
        'The tools source did not serve the pinned Debian package: refusing to use it. Check the tools-source mirror and any proxy in between.',
    );
  }
}

/** Throw ChecksumMismatchError (after deleting `path`) unless `path` has sha256 `expected`. */
export async function verifySha256(
  path: string,
  expected: string,
  context: { url: string; expectedSize?: number },
): Promise<void> {
  const [actual, info] = await Promise.all([sha256File(path), stat(path)]);
  if (actual === expected.toLowerCase()) return;
  await rm(path, { force: true });
  throw new ChecksumMismatchError(context.url, path, expected.toLowerCase(), actual, info.size, context.expectedSize);
}
