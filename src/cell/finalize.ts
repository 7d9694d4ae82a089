/**
 * Finalize: exports out (the caches are written back by write-back/caches.ts), ownership to
 * the invoking user.
 *
 * Exports are read through the cell's own view of its filesystem (/proc/PID/root of the still
 * alive, quiescent cell), walking each path component without following symlinks: a symlink
 * the build planted (to /etc, to /) can never make the engine copy host content out. Export
 * destinations were resolved on the host before the cell ran, so the cell cannot redirect them.
 */
import { lstat, realpath, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { overlaps, relativeTo } from '../cellspec/paths.js';
import type { BuildCellSpec } from '../cellspec/types.js';
import { CellSetupError, UserError, show } from '../util/errors.js';
import { copyTree } from './stage.js';
import { randomHex } from '../util/random.js';
import { mkdirOwned, settleCopiedTree, type Owner } from '../util/fs.js';

export type { Owner } from '../util/fs.js';

/** Resolve each export's host destination before the run: parent created, symlinks in it resolved now. */
/**
 * Export destinations against caches, on the host paths as they resolve now (read-only: the
 * engine checks this before it creates anything).
 */
export async function checkExportDestinations(spec: Pick<BuildCellSpec, 'exports' | 'caches'>): Promise<void> {
  const caches = await Promise.all(spec.caches.map((c) => realPathOf(c.source)));
  for (const [i, e] of spec.exports.entries()) {
    const destination = join(await realPathOf(dirname(e.destination)), basename(e.destination));
    for (const [k, c] of spec.caches.entries()) {
      // An export replaces its destination: inside a cache it would race the sync, around one delete it.
      if (overlaps(caches[k]!, destination)) {
        throw new UserError(
          `exports[${i}].destination`,
          `${show(e.destination)} must neither lie inside nor contain the cache ${show(c.source)}`,
        );
      }
    }
  }
}

/** Create each export destination's parent (owned by `owner`) and resolve it: the cell cannot redirect it later. */
export async function resolveExportDestinations(spec: BuildCellSpec, owner?: Owner): Promise<string[]> {
  const out: string[] = [];
  for (const e of spec.exports) {
    const parent = dirname(e.destination);
    await mkdirOwned(parent, owner);
    out.push(join(await realpath(parent), basename(e.destination)));
  }
  return out;
}

/** realpath of the longest existing ancestor, joined with the missing rest. */
async function realPathOf(path: string): Promise<string> {
  const missing: string[] = [];
  for (let current = path; ; current = dirname(current)) {
    try {
      return join(await realpath(current), ...missing.reverse());
    } catch {
      if (current === dirname(current)) return path;
      missing.push(basename(current));
    }
  }
}

/**
 * Find `cellPath` under `viewRoot` (the cell's `/`) without following any symlink on the
 * way; the last component may itself be a symlink (it is copied as one). Undefined: missing.
 */
export async function resolveInCell(viewRoot: string, cellPath: string, field: string): Promise<string | undefined> {
  const parts = relativeTo('/', cellPath).split('/').filter(Boolean);
  let current = viewRoot;
  for (const [i, part] of parts.entries()) {
    current = join(current, part);
    const info = await lstat(current).catch(() => undefined);
    if (!info) return undefined;
    if (i < parts.length - 1) {
      if (info.isSymbolicLink())
        throw new CellSetupError(
          `${field}: ${cellPath} passes through a symlink at /${parts.slice(0, i + 1).join('/')}; exports never follow symlinks`,
        );
      if (!info.isDirectory()) return undefined;
    }
  }
  return current;
}

export async function copyExports(
  spec: BuildCellSpec,
  cellRoot: string,
  destinations: string[],
  commandSucceeded: boolean,
  owner?: Owner,
): Promise<Array<{ source: string; destination: string; bytes: number }>> {
  const copied = [];
  for (const [i, e] of spec.exports.entries()) {
    const field = `exports[${i}].source`;
    const source = await resolveInCell(cellRoot, e.source, field);
    if (!source) {
      if (commandSucceeded)
        throw new CellSetupError(`${field}: the command succeeded but ${e.source} does not exist in the cell`);
      continue;
    }
    const destination = destinations[i]!;
    await replaceWithCopy(source, destination, `export ${e.source}`);
    copied.push({ source: e.source, destination, bytes: await settleCopiedTree(destination, owner) });
  }
  return copied;
}

/** Copy `source` next to `destination`, then swap it in: a failed copy never leaves half a tree. */
export async function replaceWithCopy(source: string, destination: string, what: string): Promise<void> {
  // A short name of its own (not derived from the destination's, which may be 255 bytes long).
  const temp = join(dirname(destination), `.build-cell-${process.pid}-${randomHex(4)}.tmp`);
  await rm(temp, { recursive: true, force: true });
  try {
    await copyTree(source, temp, what);
    await rm(destination, { recursive: true, force: true });
    await rename(temp, destination);
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
}
