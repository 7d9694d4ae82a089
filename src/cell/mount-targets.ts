/**
 * Creating mount points without following symlinks planted in the image or the workspace.
 *
 * Before the cell starts its root is an overlay of the image (lower) and a fresh, empty upper
 * directory, so the merged view is known from the host: a path resolves in upper first, then
 * lower. Missing components are created in upper (directories copied up with the lower one's
 * mode and owner), never in the pristine image, and never through a symlink.
 */
import { chmod, chown, lstat, mkdir, rm, writeFile } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join } from 'node:path';
import { CellSetupError } from '../util/errors.js';

export interface TargetRequest {
  /** For the rootfs: the image dir; for a staged input: undefined. */
  lower?: string;
  /** Where new components are created: the overlay upper dir, or the staged input dir. */
  upper: string;
  /** Path below upper/lower, without a leading slash ('' for the top). */
  rel: string;
  kind: 'dir' | 'file';
  replaceSymlink?: boolean;
  /** For messages: the cell path. */
  cellPath: string;
}

async function lstatOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await lstat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw error;
  }
}

export async function prepareTarget(request: TargetRequest): Promise<void> {
  const parts = request.rel.split('/').filter(Boolean);
  let rel = '';
  const fail = (why: string): never => {
    throw new CellSetupError(`mount target ${request.cellPath} ${why}`);
  };
  for (let i = 0; i < parts.length; i++) {
    rel = rel ? `${rel}/${parts[i]}` : parts[i]!;
    const last = i === parts.length - 1;
    const upperPath = join(request.upper, rel);
    const inUpper = await lstatOrUndefined(upperPath);
    const inLower = inUpper || !request.lower ? undefined : await lstatOrUndefined(join(request.lower, rel));
    const found = inUpper ?? inLower;
    if (found?.isSymbolicLink()) {
      if (last && request.replaceSymlink && request.kind === 'file') {
        // Shadow the image's symlink with a regular file in the upper layer: strictly inside the cell,
        // never writing through the link.
        if (inUpper) await rm(upperPath, { force: true });
        await writeFile(upperPath, '', { mode: 0o644, flag: 'wx' });
        return;
      }
      fail(`traverses a symlink at /${rel}`);
    }
    if (!found) {
      if (last && request.kind === 'file') await writeFile(upperPath, '', { mode: 0o644, flag: 'wx' });
      else await mkdir(upperPath, { mode: 0o755 });
      continue;
    }
    if (last) {
      if (request.kind === 'dir' && !found.isDirectory()) fail(`already exists as a non-directory at /${rel}`);
      if (request.kind === 'file' && found.isDirectory()) fail(`already exists as a directory at /${rel}`);
      return;
    }
    if (!found.isDirectory()) fail(`traverses a non-directory at /${rel}`);
    if (!inUpper) {
      // Copy the directory up so that children can be created in the upper layer.
      await mkdir(upperPath);
      await chmod(upperPath, found.mode & 0o7777);
      if (process.getuid?.() === 0) await chown(upperPath, found.uid, found.gid);
    }
  }
}
