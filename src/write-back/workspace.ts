/**
 * Write-back: the changes the cell made to its workspace, applied to the host workspace
 * directory after the command (whatever its exit code), owned by the invoking user. The
 * workspace is an overlay of the host directory, so only its upper layer is walked: the cost
 * is what changed, not the workspace's size. The same applier as the cache sync-back
 * (apply-upper.ts): never through a host symlink, whole files only (temp name + rename),
 * setuid and setgid bits stripped, fifos and device nodes never written (each reported).
 * Mount points build-cell made for imports and caches inside the workspace are its own, not
 * the cell's changes: a cache there persists through its own host dir, never through write-back.
 *
 * `.git` (the workspace's own, and any nested repository's) is left as the host has it unless
 * the workflow author opts in: its config and hooks are programs that every later git command
 * on the host runs (core.fsmonitor, core.hooksPath, post-checkout). What the cell changed there
 * is named in one warning.
 */
import { lstatSync, readdirSync } from 'node:fs';
import { isWhiteout } from './apply-upper.js';
import { join } from 'node:path';
import type { BuildCellSpec } from '../cellspec/types.js';
import { UserError } from '../util/errors.js';
import type { Owner } from '../util/fs.js';
import { applyUpper } from './apply-upper.js';
import type { CellPlan } from '../cell/plan.js';

export interface WriteBackResult {
  written: number;
  deleted: number;
  /** Paths (relative to the workspace) of fifos, sockets and device nodes that were not written back. */
  skipped: string[];
  /** What the cell changed under `.git` directories, not written back (relative to the workspace). */
  git: string[];
}

export interface WriteBackOptions {
  /** Owner of what is written (the user behind sudo). */
  owner?: Owner;
  /** Write under `.git` directories too (write-back-git / --write-back-git). */
  git?: boolean;
}

/** The warning for an entry write-back leaves out (the CLI and the action word it the same). */
export function skippedWarning(path: string): string {
  return `write-back: ${path} is a fifo, socket or device node: not written back`;
}

/** The warning for what the cell changed under `.git` (one per step); `optIn` names the input or flag that allows it. */
export function gitWarning(paths: string[], optIn: string): string {
  const shown = paths.slice(0, 20).join(', ') + (paths.length > 20 ? ` and ${paths.length - 20} more` : '');
  return `write-back: the cell's changes under .git were not written back (git on the host would run what a repository's config and hooks name): ${shown}; ${optIn} writes them back`;
}

/**
 * A repository's git directory, in the workspace or nested anywhere in it; without regard to
 * case, since a case-folding directory opens `.GIT` as `.git`.
 */
export const isGitDir = (rel: string) => /(^|\/)\.git$/i.test(rel);

/** What the cell changed at `rel` in the upper layer: its files, links, deletions and empty directories (at most 200). */
export function changedUnder(upper: string, rel: string, found: string[] = []): string[] {
  const info = lstatSync(join(upper, rel), { throwIfNoEntry: false });
  if (!info || isWhiteout(info)) found.push(`${rel} (deleted)`);
  else if (!info.isDirectory()) found.push(rel);
  else {
    const names = readdirSync(join(upper, rel));
    if (!names.length) found.push(`${rel}/`);
    for (const name of names) {
      if (found.length >= 200) break;
      changedUnder(upper, `${rel}/${name}`, found);
    }
  }
  return found;
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
  options: WriteBackOptions = {},
): Promise<WriteBackResult> {
  const seed = spec.workspaceSeed;
  if (seed.kind !== 'snapshot') throw noDirectory(seed.kind, 'writeBack');
  // A workspace staged by copy (a path overlayfs cannot carry) is applied whole: correct, not cheap.
  const upper = plan.staging.workspace === 'overlay' ? plan.layout.workspaceUpper : plan.layout.workspace;
  const skipped: string[] = [];
  const git: string[] = [];
  const staging = stagingOnly(upper, created);
  const counts = await applyUpper(upper, join(cellRoot, spec.workspacePath), seed.path, {
    owner: options.owner,
    what: 'write back',
    skip: (rel) => {
      if (staging(rel)) return true;
      if (options.git || !isGitDir(rel)) return false;
      changedUnder(upper, rel, git);
      return true;
    },
    onSkipped: (rel) => skipped.push(rel),
  });
  return { written: counts.written, deleted: counts.deleted, skipped, git: [...new Set(git)] };
}
