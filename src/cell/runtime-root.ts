/**
 * The runtime prefix guard (from the seed): the cell's root and scratch must lie under the
 * state dir, reached without symlinks, and the root must carry a sentinel file naming that
 * prefix. The helper checks the sentinel again from inside the namespaces.
 */
import { lstat, mkdir, readFile, realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { ROOT_SENTINEL } from '../image/store.js';
import { checkAbsoluteNotRoot, covers, normalizeAbsolute } from '../spec/paths.js';
import { CellSetupError, UserError, show } from '../util/errors.js';

/** The state dir, created if needed and canonicalized: the runtime prefix. */
export async function canonicalPrefix(stateDir: string): Promise<string> {
  checkAbsoluteNotRoot(stateDir, 'state-dir');
  await mkdir(stateDir, { recursive: true, mode: 0o755 });
  const canonical = await realpath(stateDir);
  if (canonical === '/') throw new UserError('state-dir', 'must not resolve to /');
  // Mount options (overlay lowerdir=...) and helper arguments cannot carry these safely.
  if (/[,:\n\\]/.test(canonical)) throw new UserError('state-dir', `must not contain ',', ':', '\\' or newlines: ${show(canonical)}`);
  return canonical;
}

/**
 * Create `path` (and missing parents) under `prefix`, refusing any component that is a
 * symlink or not a directory. Returns the path.
 */
export async function prepareDirUnder(prefix: string, path: string, field: string): Promise<string> {
  const normalized = normalizeAbsolute(path);
  if (!covers(prefix, normalized) || normalized === prefix) {
    throw new UserError(field, `${show(path)} must live under the runtime prefix ${show(prefix)}`);
  }
  let current = '/';
  for (const part of normalized.split('/').filter(Boolean)) {
    current = join(current, part);
    let info;
    try {
      info = await lstat(current);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      await mkdir(current, { mode: 0o755 });
      continue;
    }
    if (info.isSymbolicLink()) throw new CellSetupError(`${field} ${normalized} traverses a symlink at ${current}`);
    if (!info.isDirectory()) throw new CellSetupError(`${field} ${normalized} traverses a non-directory at ${current}`);
  }
  return normalized;
}

/** The root must be a real directory under the prefix whose sentinel names the prefix. */
export async function checkRuntimeRoot(prefix: string, root: string): Promise<void> {
  if (!covers(prefix, root) || root === prefix) throw new UserError('root', `${show(root)} must live under the runtime prefix ${show(prefix)}`);
  const info = await lstat(root).catch(() => undefined);
  if (!info || info.isSymbolicLink() || !info.isDirectory()) throw new CellSetupError(`container root ${root} is not a directory (or is a symlink)`);
  if ((await realpath(root)) !== root) throw new CellSetupError(`container root ${root} traverses a symlink`);
  const sentinel = join(root, ROOT_SENTINEL);
  const sentinelInfo = await lstat(sentinel).catch(() => undefined);
  if (!sentinelInfo?.isFile()) throw new CellSetupError(`missing runtime root sentinel ${sentinel}`);
  if ((await readFile(sentinel, 'utf8')) !== prefix) {
    throw new CellSetupError(`runtime root sentinel ${sentinel} does not match the runtime prefix ${prefix}`);
  }
}
