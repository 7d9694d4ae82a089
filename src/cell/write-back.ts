/**
 * Write-back: the changes the cell made to its workspace, applied to the host workspace
 * directory after the command (whatever its exit code), owned by the invoking user. The
 * workspace is an overlay of the host directory, so only its upper layer is walked: the cost
 * is what changed, not the workspace's size. The same applier as the cache sync-back
 * (apply-upper.ts): never through a host symlink, whole files only (temp name + rename),
 * setuid and setgid bits stripped, fifos and device nodes never written (each reported).
 * Mount points build-cell made for imports and caches inside the workspace are its own, not
 * the cell's changes: a cache there persists through its own host dir, never through write-back.
 */
import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { BuildCellSpec } from '../cellspec/types.js';
import { UserError } from '../util/errors.js';
import type { Owner } from '../util/fs.js';
import { applyUpper } from './apply-upper.js';
import type { CellPlan } from './plan.js';

export interface WriteBackResult {
  written: number;
  deleted: number;
  /** Paths (relative to the workspace) of fifos, sockets and device nodes that were not written back. */
  skipped: string[];
}

/** The warning for an entry write-back leaves out (the CLI and the action word it the same). */
export function skippedWarning(path: string): string {
  return `write-back: ${path} is a fifo, socket or device node: not written back`;
}

/** Write-back needs a directory workspace: checked with the request, before anything runs. */
export function checkWriteBack(spec: Pick<BuildCellSpec, 'workspaceSeed'>, field = 'writeBack'): void {
  if (spec.workspaceSeed.kind !== 'snapshot') throw noDirectory(spec.workspaceSeed.kind, field);
}

function noDirectory(kind: 'empty' | 'archive', field: string): UserError {
  return new UserError(
    field,
    `needs a directory workspace to write back to, and this cell has ${kind === 'archive' ? 'an archive' : 'no workspace'}`,
  );
}

/**
 * Which entries of `upper` are only staging's: created by it (mount points of nested imports
 * and caches, their parents) and holding nothing but such entries. Memoized; sync calls on
 * the handful of paths staging made.
 */
export function stagingOnly(upper: string, created: string[]): (rel: string) => boolean {
  const mine = new Set(created);
  const memo = new Map<string, boolean>();
  const check = (rel: string): boolean => {
    if (!mine.has(rel)) return false;
    let known = memo.get(rel);
    if (known === undefined) {
      const info = lstatSync(join(upper, rel), { throwIfNoEntry: false });
      known = !info?.isDirectory() || readdirSync(join(upper, rel)).every((name) => check(`${rel}/${name}`));
      memo.set(rel, known);
    }
    return known;
  };
  return check;
}

export async function writeBack(
  spec: BuildCellSpec,
  plan: CellPlan,
  created: string[],
  cellRoot: string,
  owner?: Owner,
): Promise<WriteBackResult> {
  const seed = spec.workspaceSeed;
  if (seed.kind !== 'snapshot') throw noDirectory(seed.kind, 'writeBack');
  // A workspace staged by copy (a path overlayfs cannot carry) is applied whole: correct, not cheap.
  const upper = plan.staging.workspace === 'overlay' ? plan.layout.workspaceUpper : plan.layout.workspace;
  const skipped: string[] = [];
  const counts = await applyUpper(upper, join(cellRoot, spec.workspacePath), seed.path, {
    owner,
    what: 'write back',
    skip: stagingOnly(upper, created),
    onSkipped: (rel) => skipped.push(rel),
  });
  return { written: counts.written, deleted: counts.deleted, skipped };
}
