/**
 * The runtime prefix guard (from the seed): the cell's root and scratch must lie under the
 * state dir, reached without symlinks, and the root must carry a sentinel file naming that
 * prefix. The helper checks the sentinel again from inside the namespaces.
 */
// Synchronous: a few metadata calls on every run's warm path (cheaper than thread-pool round trips).
import { chmodSync, lstatSync, mkdirSync, readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT_SENTINEL } from '../image/store.js';
import { checkAbsoluteNotRoot, covers, normalizeAbsolute } from '../cellspec/paths.js';
import { CellSetupError, UserError, show } from '../util/errors.js';

/** The state dir, created if needed and canonicalized: the runtime prefix. */
export async function canonicalPrefix(stateDir: string): Promise<string> {
  checkAbsoluteNotRoot(stateDir, 'state-dir');
  // Checked on the path as given before anything is created, and on the canonical one after.
  checkPrefixName(stateDir);
  mkdirSync(stateDir, { recursive: true, mode: 0o755 });
  const canonical = realpathSync(stateDir);
  if (canonical === '/') throw new UserError('state-dir', 'must not resolve to /');
  checkPrefixName(canonical);
  closeToOthers(canonical);
  return canonical;
}

/**
 * The image store and the cells are for their owner only: images hold setuid binaries (su,
 * passwd, sudo of whatever release the image has), and a cell's root can make its own; other
 * host users must not be able to reach and run them.
 */
function closeToOthers(prefix: string): void {
  for (const name of ['images', 'cells']) {
    const dir = join(prefix, name);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const info = lstatSync(dir);
    if (!info.isDirectory()) throw new CellSetupError(`${dir} is not a directory`);
    if ((info.mode & 0o777) !== 0o700) chmodSync(dir, 0o700);
  }
}

/** Mount options (overlay lowerdir=...) and helper arguments cannot carry these safely. */
function checkPrefixName(path: string): void {
  if (/[,:\n\\]/.test(path))
    throw new UserError('state-dir', `must not contain ',', ':', '\\' or newlines: ${show(path)}`);
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
    const info = lstatSync(current, { throwIfNoEntry: false });
    if (!info) {
      mkdirSync(current, { mode: 0o755 });
      continue;
    }
    if (info.isSymbolicLink()) throw new CellSetupError(`${field} ${normalized} traverses a symlink at ${current}`);
    if (!info.isDirectory()) throw new CellSetupError(`${field} ${normalized} traverses a non-directory at ${current}`);
  }
  return normalized;
}

/** The root must be a real directory under the prefix whose sentinel names the prefix. */
export async function checkRuntimeRoot(prefix: string, root: string): Promise<void> {
  if (!covers(prefix, root) || root === prefix)
    throw new UserError('root', `${show(root)} must live under the runtime prefix ${show(prefix)}`);
  const info = lstatSync(root, { throwIfNoEntry: false });
  if (!info || info.isSymbolicLink() || !info.isDirectory())
    throw new CellSetupError(`container root ${root} is not a directory (or is a symlink)`);
  if (realpathSync(root) !== root) throw new CellSetupError(`container root ${root} traverses a symlink`);
  const sentinel = join(root, ROOT_SENTINEL);
  const sentinelInfo = lstatSync(sentinel, { throwIfNoEntry: false });
  if (!sentinelInfo?.isFile()) throw new CellSetupError(`missing runtime root sentinel ${sentinel}`);
  if (readFileSync(sentinel, 'utf8') !== prefix) {
    throw new CellSetupError(`runtime root sentinel ${sentinel} does not match the runtime prefix ${prefix}`);
  }
}

/**
 * A root image file (mounted on the root in the cell only) must be a regular file under the
 * prefix, reached without symlinks: the kernel parses it, and nothing else may be swapped in.
 */
export function checkRuntimeImage(prefix: string, file: string): void {
  if (!covers(prefix, file) || file === prefix)
    throw new UserError('rootImage', `${show(file)} must live under the runtime prefix ${show(prefix)}`);
  const info = lstatSync(file, { throwIfNoEntry: false });
  if (!info?.isFile()) throw new CellSetupError(`root image ${file} is not a regular file (or is a symlink)`);
  if (realpathSync(file) !== file) throw new CellSetupError(`root image ${file} traverses a symlink`);
}
