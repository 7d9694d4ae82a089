/**
 * The scratch layout: where each staged input lives in a cell's scratch dir, how each host
 * input reaches the cell (an overlay lower layer or a copy), and where a cell path lives on the
 * host before the cell starts (for its mount points).
 */
import { join } from 'node:path';
import { covers, relativeTo } from '../cellspec/paths.js';
import type { BuildCellSpec } from '../cellspec/types.js';
import { REQUEST_FILE } from '../cellspec/spec-file.js';

/** Where each staged input lives inside the scratch dir. */
export interface ScratchLayout {
  scratch: string;
  request: string;
  /** The workspace when it is unpacked (archive) or empty; a copy when it cannot be an overlay lower. */
  workspace: string;
  /** The workspace's own overlay layers, when the seed directory is its lower layer. */
  workspaceUpper: string;
  workspaceWork: string;
  importsDir: string;
  cachesDir: string;
  upper: string;
  work: string;
  /** The overlay mount point: the cell's `/`. Exists only inside the cell's mount namespace. */
  merged: string;
  /** An empty directory: the second lower layer that makes an import overlay read-only for good. */
  empty: string;
  /** The cell's /dev (see DEV_SKELETON). */
  dev: string;
  /** The flatten-owners record (rootless with subordinate ids). */
  owners: string;
  importPath(index: number): string;
  cachePath(index: number): string;
  cacheUpper(index: number): string;
  cacheWork(index: number): string;
}

export function scratchLayout(scratch: string): ScratchLayout {
  return {
    scratch,
    request: join(scratch, REQUEST_FILE),
    workspace: join(scratch, 'workspace'),
    importsDir: join(scratch, 'imports'),
    cachesDir: join(scratch, 'caches'),
    upper: join(scratch, 'overlay', 'upper'),
    work: join(scratch, 'overlay', 'work'),
    merged: join(scratch, 'root'),
    workspaceUpper: join(scratch, 'overlay', 'workspace-upper'),
    workspaceWork: join(scratch, 'overlay', 'workspace-work'),
    empty: join(scratch, 'overlay', 'empty'),
    dev: join(scratch, 'dev'),
    owners: join(scratch, 'owners.list'),
    importPath: (i) => join(scratch, 'imports', String(i)),
    cachePath: (i) => join(scratch, 'caches', String(i)),
    cacheUpper: (i) => join(scratch, 'overlay', `cache-${i}-upper`),
    cacheWork: (i) => join(scratch, 'overlay', `cache-${i}-work`),
  };
}

/**
 * How a host input reaches the cell:
 *   overlay  the host directory is an overlay's lower layer: nothing is copied, the host copy
 *            is never modified, and only what the cell changes lands in the scratch;
 *   copy     staged into the scratch with cp -a (files, archives, and paths that overlayfs'
 *            option syntax cannot carry).
 */
export type StagingMode = 'overlay' | 'copy';

/** Overlay mount options are comma- and colon-separated: such paths are staged by copy. */
export function overlayCanUse(path: string): boolean {
  return !/[,:\\\n]/.test(path);
}

/** How each input of a cell is staged. */
export interface InputStaging {
  workspace: StagingMode;
  imports: StagingMode[];
  caches: StagingMode[];
}

export function workspaceMode(spec: BuildCellSpec): StagingMode {
  return spec.workspaceSeed.kind === 'snapshot' && overlayCanUse(spec.workspaceSeed.path) ? 'overlay' : 'copy';
}

export function cacheMode(source: string): StagingMode {
  return overlayCanUse(source) ? 'overlay' : 'copy';
}

/** Where a path below a mount is created before the cell starts: its lower (if any) and the writable layer. */
export interface HostLocation {
  base: 'rootfs' | 'staged';
  lower?: string;
  /** Where missing components are created; undefined for a read-only import. */
  dir?: string;
  rel: string;
}

/**
 * For a cell path, the host directories that hold it before the cell starts, and the path below
 * them. A mount point itself lives in whatever is mounted below it (so it is not its own mount).
 */
export function hostLocation(
  spec: BuildCellSpec,
  layout: ScratchLayout,
  cellPath: string,
  mountPoint = false,
  staging?: InputStaging,
): HostLocation {
  const ws =
    workspaceMode(spec) === 'overlay' && spec.workspaceSeed.kind === 'snapshot'
      ? { lower: spec.workspaceSeed.path, dir: layout.workspaceUpper }
      : { dir: layout.workspace };
  const mounts: Array<{ cell: string; lower?: string; dir?: string }> = [
    { cell: spec.workspacePath, ...ws },
    // A read-only overlay import has no writable layer: nothing can be created below it.
    ...spec.imports.map((m, i) => ({
      cell: m.destination,
      dir: staging?.imports[i] === 'overlay' ? undefined : layout.importPath(i),
    })),
    ...spec.caches.map((m, i) =>
      cacheMode(m.source) === 'overlay'
        ? { cell: m.destination, lower: m.source, dir: layout.cacheUpper(i) }
        : { cell: m.destination, dir: layout.cachePath(i) },
    ),
  ];
  let best: (typeof mounts)[number] | undefined;
  for (const m of mounts) {
    if (mountPoint && m.cell === cellPath) continue;
    if (covers(m.cell, cellPath) && (!best || m.cell.length > best.cell.length)) best = m;
  }
  if (best) return { base: 'staged', lower: best.lower, dir: best.dir, rel: relativeTo(best.cell, cellPath) };
  return { base: 'rootfs', lower: spec.root, dir: layout.upper, rel: relativeTo('/', cellPath) };
}
