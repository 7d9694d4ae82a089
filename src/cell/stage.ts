/**
 * Staging: the scratch dir's overlay upper and work dirs, the cell's /dev skeleton, the mount
 * points, and copies only of what cannot be an overlay lower (archives, files, paths that
 * overlayfs' option syntax cannot carry); the (redacted) request file is written meanwhile.
 * Copies use `cp -a` (ownership, modes, times, symlinks as symlinks, reflinks where the
 * filesystem has them); archives are unpacked with node-tar, refusing unsafe entries.
 */
// The scratch's skeleton is a few dozen tiny metadata operations: synchronous calls, since a
// thread-pool round trip each would cost more than the calls themselves (the warm-cell budget).
import { chmodSync, lstatSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isWorkspaceArchive } from '../cellspec/validate.js';
import { covers } from '../cellspec/paths.js';
import { specToJson } from '../cellspec/spec-file.js';
import { SCRIPT_PATH, type BuildCellSpec } from '../cellspec/types.js';
import { CellSetupError, UserError, show } from '../util/errors.js';
import { exec } from '../util/exec.js';
import { tool } from '../util/which.js';
import { rootlessUnshareArgs, type RootlessIds } from '../privilege/userns.js';
import { mkdirOwned, type Owner } from '../util/fs.js';
import { DEV_SKELETON, type CellPlan } from './plan.js';
import { fstabText } from './mount-batch.js';
import { hostLocation } from './scratch-layout.js';
import { prepareTarget } from './mount-targets.js';
import type { LowerView } from '../image/lower-view.js';

/** What staging put into the root's upper layer (mount points, their parents, files): not the cell's own changes. */
export interface Staged {
  /** Paths relative to the root upper, parents first. */
  rootCreated: string[];
  /** Mount points (and their parents) of imports and caches inside the workspace, relative to it. */
  workspaceCreated: string[];
}

/**
 * Stage the scratch dir (which the engine created, empty). Only what this cell uses is created:
 * on some disks every directory costs a fraction of a millisecond.
 */
export async function stageCell(
  spec: BuildCellSpec,
  plan: CellPlan,
  owner?: Owner,
  rootView?: LowerView,
): Promise<Staged> {
  // The root's lower layer as staging reads it: the rootfs dir, or a view of its image file.
  const root: string | LowerView = rootView ?? spec.root;
  const rootCreated: string[] = [];
  const workspaceCreated: string[] = [];
  // A target inside the workspace that no import or cache (other than itself) covers is created in the workspace's layer.
  const inWorkspace = (cellPath: string) =>
    covers(spec.workspacePath, cellPath) &&
    ![...spec.imports, ...spec.caches].some((m) => m.destination !== cellPath && covers(m.destination, cellPath));
  const { layout, staging } = plan;
  // The engine has checked the inputs (existence, kinds) before anything was written.
  const dirs = [layout.upper, layout.work, layout.merged];
  if (staging.workspace === 'copy') dirs.push(layout.workspace);
  if (staging.imports.includes('copy')) dirs.push(layout.importsDir);
  if (staging.imports.includes('overlay')) dirs.push(layout.empty);
  if (staging.caches.includes('copy')) dirs.push(layout.cachesDir);
  for (const dir of dirs) mkdirSync(dir, { recursive: true, mode: 0o755 });
  makeDevSkeleton(layout.dev);
  for (const op of plan.ops) if (op.op === 'mounts') writeFileSync(op.file, fstabText(op.entries), { mode: 0o600 });

  const seed = spec.workspaceSeed;
  if (seed.kind === 'snapshot') {
    if (staging.workspace === 'overlay') makeOverlayDirs(layout.workspaceUpper, layout.workspaceWork);
    else await copyTree(`${seed.path}/.`, layout.workspace, 'stage the workspace');
  } else if (seed.kind === 'archive') {
    await unpackArchive(seed.path, layout.workspace);
  }
  for (const [i, m] of spec.imports.entries()) {
    if (staging.imports[i] === 'copy') await copyTree(m.source, layout.importPath(i), `stage import ${m.source}`);
  }
  for (const [i, m] of spec.caches.entries()) {
    const info = lstatSync(m.source, { throwIfNoEntry: false });
    if (staging.caches[i] === 'overlay') {
      // The host cache directory is the lower layer: it must exist, owned by the user behind sudo.
      if (!info) await mkdirOwned(m.source, owner);
      makeOverlayDirs(layout.cacheUpper(i), layout.cacheWork(i));
    } else if (info) await copyTree(m.source, layout.cachePath(i), `stage cache ${m.source}`);
    else mkdirSync(layout.cachePath(i), { mode: 0o755 });
  }
  for (const target of plan.targets) {
    const where = hostLocation(spec, layout, target.cellPath, true, staging);
    // A read-only import cannot get new directories: a missing one is reported by the cell.
    if (!where.dir) continue;
    const created = await prepareTarget({
      lower: where.base === 'rootfs' ? root : where.lower,
      upper: where.dir,
      rel: where.rel,
      kind: target.kind,
      replaceSymlink: target.replaceSymlink,
      cellPath: target.cellPath,
    });
    if (where.base === 'rootfs') rootCreated.push(...created);
    else if (target.cellPath !== spec.workspacePath && inWorkspace(target.cellPath)) workspaceCreated.push(...created);
  }
  if (spec.script !== undefined) writeFileSync(join(layout.upper, SCRIPT_PATH), spec.script, { mode: 0o755 });
  for (const file of plan.files) {
    if (file.onlyIfDir && !isPlainDir(root, file.onlyIfDir)) continue;
    rootCreated.push(
      ...(await prepareTarget({
        lower: root,
        upper: layout.upper,
        rel: file.cellPath.slice(1),
        kind: 'file',
        cellPath: file.cellPath,
      })),
    );
    writeFileSync(join(layout.upper, file.cellPath), file.content, { mode: file.mode });
  }
  return { rootCreated, workspaceCreated };
}

function makeDevSkeleton(dir: string): void {
  mkdirSync(dir, { mode: 0o755 });
  for (const entry of DEV_SKELETON) {
    const path = join(dir, entry.name);
    if (entry.kind === 'file') writeFileSync(path, '', { mode: 0o666 });
    else if (entry.kind === 'dir') {
      mkdirSync(path);
      chmodSync(path, entry.mode);
    } else symlinkSync(entry.value, path);
  }
}

function makeOverlayDirs(upper: string, work: string): void {
  mkdirSync(upper, { recursive: true, mode: 0o755 });
  mkdirSync(work, { recursive: true, mode: 0o700 });
}

/**
 * The scratch's bookkeeping files, written on the thread pool while the cell starts (off the
 * critical path): who runs it (a later run removes the scratch of a run killed before its
 * cleanup) and the redacted request (env names only), for a scratch that is kept.
 */
export function writeScratchRecords(
  spec: BuildCellSpec,
  plan: CellPlan,
  ownerFile: { name: string; content: string },
): Promise<void> {
  const written = Promise.all([
    writeFile(join(plan.layout.scratch, ownerFile.name), ownerFile.content),
    writeFile(plan.layout.request, specToJson(spec, { withEnvValues: false }), { mode: 0o600 }),
  ]).then(() => undefined);
  written.catch(() => undefined);
  return written;
}

/** An empty scratch dir: one left by an earlier attempt with the same cell id is emptied. */
export function emptyScratch(scratch: string): void {
  if (readdirSync(scratch).length === 0) return;
  rmSync(scratch, { recursive: true, force: true });
  mkdirSync(scratch, { mode: 0o755 });
}

/** `cellPath` is a directory in the image, reached without symlinks. */
function isPlainDir(root: string | LowerView, cellPath: string): boolean {
  let rel = '';
  for (const part of cellPath.split('/').filter(Boolean)) {
    rel = rel ? `${rel}/${part}` : part;
    const info = typeof root === 'string' ? lstatSync(join(root, rel), { throwIfNoEntry: false }) : root.lstat(rel);
    if (!info || info.isSymbolicLink() || !info.isDirectory()) return false;
  }
  return true;
}

/**
 * The paths below the rootfs that staging will look up in the root's lower layer (mount
 * points there and the files staging writes, with the directories they need), for a view
 * read ahead of staging.
 */
export function rootLookups(spec: BuildCellSpec, plan: CellPlan): string[] {
  const rels = plan.targets
    .map((target) => hostLocation(spec, plan.layout, target.cellPath, true, plan.staging))
    .filter((where) => where.base === 'rootfs')
    .map((where) => where.rel);
  for (const file of plan.files)
    rels.push(file.cellPath.slice(1), ...(file.onlyIfDir ? [file.onlyIfDir.slice(1)] : []));
  return rels;
}

/** `cp -a SOURCE DEST`: a faithful copy; DEST must not exist (or, for `dir/.`, be a directory). */
export async function copyTree(source: string, destination: string, what: string): Promise<void> {
  await exec('cp', ['-a', '--reflink=auto', '--', source, destination], `cannot ${what}`);
}

/**
 * Unpack a workspace archive. Unlike the seed, this also refuses entries that would be written
 * through a symlink created by an earlier entry (node-tar checks every path component), and
 * hard links that point outside the archive.
 */
export async function unpackArchive(
  archive: string,
  destination: string,
  options: { stallMs?: number } = {},
): Promise<void> {
  if (!isWorkspaceArchive(archive))
    throw new UserError('workspace', `unsupported archive ${show(archive)}: accepted are .tar, .tar.gz and .tgz`);
  if (!lstatSync(archive, { throwIfNoEntry: false })?.isFile())
    throw new UserError('workspace', `archive ${show(archive)} does not exist`);
  const problems: string[] = [];
  const unsafe = (p: string) => p.startsWith('/') || p.split('/').includes('..');
  // node-tar is loaded only here: most cells have no archive workspace, and it is most of the bundle.
  const { extract } = await import('tar');
  // Some hostile archives make node-tar wait forever (e.g. a single symlink `a/b -> a`): a watchdog
  // turns a stall (no new entry for stallMs) into a refusal.
  const stallMs = options.stallMs ?? 120_000;
  let lastProgress = Date.now();
  let watchdog: NodeJS.Timeout | undefined;
  const stalled = new Promise<never>((_, reject) => {
    watchdog = setInterval(
      () => {
        if (Date.now() - lastProgress > stallMs)
          reject(new Error(`extraction stalled for ${Math.round(stallMs / 1000)} s`));
      },
      Math.min(1000, stallMs),
    );
  });
  try {
    await Promise.race([
      stalled,
      extract({
        file: archive,
        cwd: destination,
        // Not strict: a bad entry is reported (onwarn) and skipped, and extraction runs to its end, so
        // nothing is still being written once this function has refused the archive.
        strict: false,
        onReadEntry: () => {
          lastProgress = Date.now();
        },
        preservePaths: false,
        filter: (path, entry) => {
          const link = 'linkpath' in entry ? entry.linkpath : undefined;
          if (unsafe(path)) problems.push(`unsafe path ${show(path)}`);
          else if ((entry as { type?: string }).type === 'Link' && link && unsafe(link))
            problems.push(`hard link ${show(path)} points outside the archive (${show(link)})`);
          else return true;
          return false;
        },
        onwarn: (code, message, data) => {
          // Name the entry (device nodes and fifos are unsupported entries: refused, never made).
          const entry = (data as { entry?: { path?: string } } | undefined)?.entry?.path;
          problems.push(`${code}: ${message}${entry ? ` (${show(entry)})` : ''}`);
        },
      }),
    ]);
  } catch (error) {
    problems.push((error as Error).message);
  } finally {
    clearInterval(watchdog);
  }
  if (problems.length) {
    throw new CellSetupError(`workspace archive ${archive} was refused: ${problems.slice(0, 5).join('; ')}`);
  }
}

/**
 * Remove a scratch dir. Without root, the overlay's work dir (mode 000, made by the kernel)
 * must first be made writable again; and a rootless cell with subordinate ids that was killed
 * before its helper gave its files back (flatten-owners) holds files of those ids: they are
 * removed from inside a user namespace with the same mapping.
 */
export async function removeScratch(scratch: string, ids?: RootlessIds): Promise<void> {
  try {
    // Synchronous: a scratch is mostly a small skeleton (the workspace and caches are overlays).
    rmSync(scratch, { recursive: true, force: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EACCES' && (error as NodeJS.ErrnoException).code !== 'EPERM')
      throw error;
    if (ids?.uids) {
      await exec(tool('unshare'), [...rootlessUnshareArgs(ids), '--', 'rm', '-rf', '--', scratch], `remove ${scratch}`);
      return;
    }
    await exec('chmod', ['-R', 'u+rwX', '--', scratch], `make ${scratch} removable`, { allowFailure: true });
    rmSync(scratch, { recursive: true, force: true });
  }
}
