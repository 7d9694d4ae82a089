/**
 * Creating mount points without following symlinks planted in the image or the workspace.
 *
 * Before the cell starts its root is an overlay of the image (lower) and a fresh, empty upper
 * directory, so the merged view is known from the host: a path resolves in upper first, then
 * lower. Missing components are created in upper (directories copied up with the lower one's
 * mode and owner), never in the pristine image, and never through a symlink.
 */
// Synchronous calls: a handful of tiny metadata operations per cell, where a thread-pool round
// trip per call would cost more than the call (see the cell's warm-path budget in the README).
import { chmodSync, chownSync, lstatSync, mkdirSync, rmSync, writeFileSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { CellSetupError } from '../util/errors.js';
import type { LowerEntry, LowerView } from '../image/lower-view.js';

export interface TargetRequest {
  /** For the rootfs: the image dir (or a view of it); for a staged input: its host dir, or undefined. */
  lower?: string | LowerView;
  /** Where new components are created: the overlay upper dir, or the staged input dir. */
  upper: string;
  /** Path below upper/lower, without a leading slash ('' for the top). */
  rel: string;
  kind: 'dir' | 'file';
  replaceSymlink?: boolean;
  /** For messages: the cell path. */
  cellPath: string;
}

function lstatOrUndefined(path: string, cellPath: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ENOTDIR')
      return undefined;
    throw new CellSetupError(`mount target ${cellPath}: cannot inspect ${path}: ${(error as Error).message}`);
  }
}

function lowerLstat(lower: string | LowerView, rel: string, cellPath: string): LowerEntry | undefined {
  return typeof lower === 'string' ? lstatOrUndefined(join(lower, rel), cellPath) : lower.lstat(rel);
}

/** Returns what it created in `upper` (paths relative to it, parents first). */
export async function prepareTarget(request: TargetRequest): Promise<string[]> {
  const parts = request.rel.split('/').filter(Boolean);
  const created: string[] = [];
  let rel = '';
  const fail = (why: string): never => {
    throw new CellSetupError(`mount target ${request.cellPath} ${why}`);
  };
  // The lower layer is consulted only while its path is made of plain directories: below a
  // lower symlink or non-directory, what overlayfs shows comes from upper alone.
  let lowerValid = request.lower !== undefined;
  // For messages: each component as a cell path (rel is relative to the mount it lies under).
  const cellParts = request.cellPath.split('/');
  for (let i = 0; i < parts.length; i++) {
    rel = rel ? `${rel}/${parts[i]}` : parts[i]!;
    const last = i === parts.length - 1;
    const at = cellParts.slice(0, cellParts.length - (parts.length - 1 - i)).join('/') || '/';
    const upperPath = join(request.upper, rel);
    const inUpper = lstatOrUndefined(upperPath, request.cellPath);
    const lowerEntry = lowerValid ? lowerLstat(request.lower!, rel, request.cellPath) : undefined;
    if (!lowerEntry?.isDirectory() || lowerEntry.isSymbolicLink()) lowerValid = false;
    const inLower = inUpper ? undefined : lowerEntry;
    const found = inUpper ?? inLower;
    if (found?.isSymbolicLink()) {
      if (last && request.replaceSymlink && request.kind === 'file') {
        // Shadow the image's symlink with a regular file in the upper layer: strictly inside the cell,
        // never writing through the link.
        if (inUpper) rmSync(upperPath, { force: true });
        writeFileSync(upperPath, '', { mode: 0o644, flag: 'wx' });
        created.push(rel);
        return created;
      }
      fail(`traverses a symlink at ${at}`);
    }
    if (!found) {
      if (last && request.kind === 'file') writeFileSync(upperPath, '', { mode: 0o644, flag: 'wx' });
      else mkdirSync(upperPath, { mode: 0o755 });
      created.push(rel);
      continue;
    }
    if (last) {
      if (request.kind === 'dir' && !found.isDirectory()) fail(`already exists as a non-directory at ${at}`);
      if (request.kind === 'file' && found.isDirectory()) fail(`already exists as a directory at ${at}`);
      return created;
    }
    if (!found.isDirectory()) fail(`traverses a non-directory at ${at}`);
    if (!inUpper) {
      // Copy the directory up so that children can be created in the upper layer.
      mkdirSync(upperPath);
      chmodSync(upperPath, found.mode & 0o7777);
      if (process.getuid?.() === 0) chownSync(upperPath, found.uid, found.gid);
      created.push(rel);
    }
  }
  return created;
}
