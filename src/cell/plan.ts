/**
 * The cell plan: spec + run context -> the scratch layout, the mount targets to create, and
 * the ordered setup operations the inner helper applies. A pure function: the plan is data,
 * so every ordering and safety property here is unit-tested without root. The layout and the
 * staging modes are in scratch-layout.ts; the plan's encoding as the helper's argv is in
 * helper-argv.ts, its mount batching in mount-batch.ts.
 */
import { join } from 'node:path';
import type { Emulation } from '../emulation/setup.js';
import { covers } from '../cellspec/paths.js';
import { SCRIPT_PATH, type BuildCellSpec, type TmpfsMount } from '../cellspec/types.js';
import {
  cacheMode,
  overlayCanUse,
  scratchLayout,
  workspaceMode,
  type InputStaging,
  type ScratchLayout,
  type StagingMode,
} from './scratch-layout.js';

/** Host programs the helper runs, by absolute path (resolved by the engine, never looked up in the cell). */
export interface HelperTools {
  unshare: string;
  env: string;
  prlimit: string;
  /** The shell that runs the helper (dash; it tells a signal from an exit). */
  shell: string;
}

/** The helper's fd holding the engine's own mount namespace (/proc/self/ns/mnt): it refuses to run there. */
export const HOST_MNT_NS_FD = 5;

export interface RunContext {
  /** Canonical runtime prefix (the state dir); root and scratch live below it. */
  prefix: string;
  tools: HelperTools;
  emulation?: Emulation;
  /** A cgroup (pids controller) the cell joins to enforce maxProcesses, also for root. */
  cgroupDir?: string;
  /** Host resolv.conf bound into the cell when the network is enabled (absent: none). */
  hostResolvConf?: string;
  hostname: string;
  /** Whether each import source is a directory or a file (its mount target must match). */
  importKinds?: Array<'dir' | 'file'>;
  /** Rootless: the invoking user is mapped to root in the cell's user namespace. */
  rootless?: boolean;
  /** Rootless: other uids and gids are mapped too (subordinate ranges); without it only root is. */
  subIds?: boolean;
  /**
   * Root cells: after the mounts (made by real root), the command runs in a user namespace of
   * its own with every uid mapped to itself, so the cell's root has no capability over the host.
   */
  nestedUserns?: boolean;
  /** The import sources (host paths), to decide how each is staged. */
  importSources?: string[];
  /**
   * A session's root layer: the overlay upper dir that outlives the cell, so the next cell of
   * the session starts where this one left its root filesystem. (The work dir stays the
   * scratch's: a fresh, empty one costs the kernel nothing to clean at mount.)
   */
  persistentUpper?: string;
}

/** A file the engine writes into the cell's private layer before it starts. */
export interface CellFile {
  cellPath: string;
  content: string;
  mode: number;
  /** Write it only if this directory exists in the image. */
  onlyIfDir?: string;
}

/** A mount point the engine creates before the cell starts, without following symlinks. */
export interface MountTarget {
  cellPath: string;
  kind: 'dir' | 'file';
  /** An image symlink at the final component is replaced (shadowed in the overlay) instead of refused. */
  replaceSymlink?: boolean;
}

export type SetupOp =
  | { op: 'ns-check'; fd: number }
  | { op: 'root-check'; prefix: string; root: string }
  | { op: 'wait-go' }
  /** `options`: see overlayOptions. */
  | { op: 'overlay'; lower: string; upper: string; work: string; target: string; options: string }
  | { op: 'overlay-ro'; lowers: string[]; target: string; options: string }
  /** A read-only image file (EROFS) on the rootfs mount point, before the overlay that uses it. */
  | { op: 'image'; file: string; target: string; options: string }
  | { op: 'bind' | 'bind-ro'; source: string; target: string }
  /** `options`: see tmpfsOptions. */
  | { op: 'tmpfs'; target: string; options: string }
  | { op: 'proc'; target: string }
  | { op: 'devpts'; target: string }
  | { op: 'binfmt-mount'; target: string }
  | { op: 'binfmt-register'; dir: string; name: string; rule: string; scope: 'private' | 'global' }
  | { op: 'cgroup'; dir: string }
  | { op: 'enter-userns'; proc: string; unshare: string; shell: string }
  /** Several mounts in one `mount --all --fstab FILE` (see batchMounts). */
  | { op: 'mounts'; file: string; entries: FstabEntry[] }
  | { op: 'wait-map' }
  | { op: 'loopback' }
  /**
   * Rootless with subordinate ids: once the command has ended, every entry under `dir` (the
   * scratch, not crossing into the cell's mounts) owned by another uid or gid of the cell is
   * recorded in `list` ("UID GID MODE PATH\0", as the cell saw them) and given to the cell's
   * root, i.e. the invoking user: the engine then reads it back as that user, and removes it.
   */
  | { op: 'flatten-owners'; dir: string; list: string }
  | { op: 'hostname'; name: string };

export interface ExecStep {
  cwd: string;
  tools: Pick<HelperTools, 'env' | 'prlimit' | 'unshare'>;
  cpuTimeSeconds?: number;
  memoryBytes?: number;
  maxProcesses?: number;
  root: string;
  executable: string;
  argv: string[];
}

export interface CellPlan {
  layout: ScratchLayout;
  /** How each input is staged (see StagingMode). */
  staging: InputStaging;
  targets: MountTarget[];
  files: CellFile[];
  ops: SetupOp[];
  exec: ExecStep;
}

/** Where the qemu binary appears inside the cell. */
export const HELPER_DIR = '/.build-cell';
export const DEVICES = ['null', 'zero', 'full', 'random', 'urandom', 'tty'];

/** The cell's /dev, made in the scratch before the cell starts: mount points, directories, links. */
export const DEV_SKELETON: ReadonlyArray<
  { name: string } & ({ kind: 'file' } | { kind: 'dir'; mode: number } | { kind: 'symlink'; value: string })
> = [
  ...DEVICES.map((name) => ({ name, kind: 'file' as const })),
  { name: 'shm', kind: 'dir', mode: 0o1777 },
  { name: 'pts', kind: 'dir', mode: 0o755 },
  { name: 'ptmx', kind: 'symlink', value: 'pts/ptmx' },
  { name: 'fd', kind: 'symlink', value: '/proc/self/fd' },
  { name: 'stdin', kind: 'symlink', value: '/proc/self/fd/0' },
  { name: 'stdout', kind: 'symlink', value: '/proc/self/fd/1' },
  { name: 'stderr', kind: 'symlink', value: '/proc/self/fd/2' },
];

/**
 * Mount options of every overlay of a cell. Root: redirect_dir and metacopy off, so every
 * change is whole in the upper layer, where the engine reads it back (cache sync, write-back,
 * the install layer), whatever the kernel's defaults. Rootless: userxattr, the user.overlay.*
 * xattrs an unprivileged mounter may set: without it overlayfs cannot mark a directory opaque,
 * and renaming a new directory into an image directory fails with EXDEV (dpkg unpacks every
 * directory so: mkdir NAME.dpkg-new, rename). userxattr implies both options off.
 */
export function overlayOptions(rootless: boolean | undefined): string {
  return rootless ? 'userxattr' : 'redirect_dir=off,metacopy=off';
}

/**
 * Mount options of a --tmpfs: world-writable with the sticky bit as /tmp is (and as docker's
 * --tmpfs is), no setuid or device files; executables run (a build runs what it builds).
 */
export function tmpfsOptions(m: TmpfsMount): string {
  return `mode=1777,nosuid,nodev${m.sizeBytes === undefined ? '' : `,size=${m.sizeBytes}`}`;
}

/** The cell's plan: mount targets, setup operations in their fixed order, files, and the exec. Pure. */
export function planCell(
  spec: BuildCellSpec,
  ctx: RunContext,
  binfmtRule?: (e: Emulation, interpreter: string) => string,
): CellPlan {
  const layout: ScratchLayout = {
    ...scratchLayout(spec.scratch),
    ...(ctx.persistentUpper ? { upper: ctx.persistentUpper } : {}),
  };
  const inCell = (cellPath: string) => join(layout.merged, cellPath);
  const targets = mountTargets(spec, ctx);
  const ops = [...checkOps(spec, ctx), ...filesystemOps(spec, ctx, layout, inCell)];
  if (needsResolvConf(spec, ctx)) {
    targets.push({ cellPath: '/etc/resolv.conf', kind: 'file', replaceSymlink: true });
    ops.push({ op: 'bind-ro', source: ctx.hostResolvConf!, target: inCell('/etc/resolv.conf') });
  }
  const binfmtOps = emulationSteps(ctx, inCell, targets, ops, binfmtRule);
  ops.push(...namespaceOps(spec, ctx, inCell, binfmtOps));
  if (spec.script !== undefined) targets.push({ cellPath: SCRIPT_PATH, kind: 'file' });
  // Like a Dockerfile WORKDIR, a missing working directory is created (inside the cell only).
  if (!userMountPaths(spec).includes(spec.command.cwd) && spec.command.cwd !== '/')
    targets.push({ cellPath: spec.command.cwd, kind: 'dir' });
  if (ctx.rootless && ctx.subIds) ops.push({ op: 'flatten-owners', dir: layout.scratch, list: layout.owners });
  return {
    layout,
    staging: {
      workspace: workspaceMode(spec),
      imports: spec.imports.map((_, i) => importMode(ctx, i)),
      caches: spec.caches.map((m) => cacheMode(m.source)),
    },
    targets,
    files: rootlessFiles(ctx),
    ops,
    exec: execStep(spec, ctx, layout),
  };
}

/** Where the user's mounts go in the cell: the workspace, tmpfs mounts, imports, caches. */
function userMountPaths(spec: BuildCellSpec): string[] {
  return [
    spec.workspacePath,
    ...(spec.tmpfs ?? []).map((m) => m.destination),
    ...spec.imports.map((m) => m.destination),
    ...spec.caches.map((m) => m.destination),
  ];
}

function mountTargets(spec: BuildCellSpec, ctx: RunContext): MountTarget[] {
  return [
    { cellPath: '/proc', kind: 'dir' },
    { cellPath: '/dev', kind: 'dir' },
    { cellPath: spec.workspacePath, kind: 'dir' },
    ...(spec.tmpfs ?? []).map((m): MountTarget => ({ cellPath: m.destination, kind: 'dir' })),
    ...spec.imports.map((m, i): MountTarget => ({ cellPath: m.destination, kind: ctx.importKinds?.[i] ?? 'dir' })),
    ...spec.caches.map((m): MountTarget => ({ cellPath: m.destination, kind: 'dir' })),
  ];
}

/** Before anything: a private mount namespace, the right root, and the engine's go. */
function checkOps(spec: BuildCellSpec, ctx: RunContext): SetupOp[] {
  return [
    { op: 'ns-check', fd: HOST_MNT_NS_FD },
    { op: 'root-check', prefix: ctx.prefix, root: spec.root },
    { op: 'wait-go' },
  ];
}

/** The root overlay, /proc, a fresh /dev, then the workspace, tmpfs mounts, imports and caches. */
function filesystemOps(
  spec: BuildCellSpec,
  ctx: RunContext,
  layout: ScratchLayout,
  inCell: (cellPath: string) => string,
): SetupOp[] {
  const options = overlayOptions(ctx.rootless);
  return [
    // Every mount below is private already: unshare --propagation private (see cell/run.ts).
    // An image file is mounted here only: the namespace's end unmounts it (and frees its loop device).
    ...(spec.rootImage
      ? [{ op: 'image', file: spec.rootImage.file, target: spec.root, options: spec.rootImage.options } as const]
      : []),
    { op: 'overlay', lower: spec.root, upper: layout.upper, work: layout.work, target: layout.merged, options },
    { op: 'proc', target: inCell('/proc') },
    // A fresh /dev built by the engine in the scratch (DEV_SKELETON): nothing the image planted there is used.
    { op: 'bind', source: layout.dev, target: inCell('/dev') },
    ...DEVICES.map((d): SetupOp => ({ op: 'bind', source: `/dev/${d}`, target: inCell(`/dev/${d}`) })),
    { op: 'devpts', target: inCell('/dev/pts') },
    workspaceOp(spec, layout, inCell(spec.workspacePath), options),
    // After the workspace, which may hold one; no import or cache lies in a tmpfs (validate.ts).
    ...(spec.tmpfs ?? []).map((m): SetupOp => ({
      op: 'tmpfs',
      target: inCell(m.destination),
      options: tmpfsOptions(m),
    })),
    ...spec.imports.map((m, i): SetupOp =>
      importMode(ctx, i) === 'overlay'
        ? // Two lower layers and no upper: read-only, and no remount can make it writable.
          { op: 'overlay-ro', lowers: [m.source, layout.empty], target: inCell(m.destination), options }
        : { op: 'bind-ro', source: layout.importPath(i), target: inCell(m.destination) },
    ),
    ...spec.caches.map((m, i): SetupOp =>
      cacheMode(m.source) === 'overlay'
        ? {
            op: 'overlay',
            lower: m.source,
            upper: layout.cacheUpper(i),
            work: layout.cacheWork(i),
            target: inCell(m.destination),
            options,
          }
        : { op: 'bind', source: layout.cachePath(i), target: inCell(m.destination) },
    ),
  ];
}

function needsResolvConf(spec: BuildCellSpec, ctx: RunContext): boolean {
  return (
    !!ctx.hostResolvConf &&
    spec.network === 'enabled' &&
    !userMountPaths(spec).some((m) => covers(m, '/etc/resolv.conf'))
  );
}

/**
 * qemu bound into the cell (its target added, its bind appended to `ops`); returns the binfmt
 * operations, whose place depends on the rule's scope (see namespaceOps).
 */
function emulationSteps(
  ctx: RunContext,
  inCell: (cellPath: string) => string,
  targets: MountTarget[],
  ops: SetupOp[],
  binfmtRule?: (e: Emulation, interpreter: string) => string,
): SetupOp[] {
  const emulation = ctx.emulation;
  if (!emulation) return [];
  const cellQemu = `${HELPER_DIR}/${emulation.arch.qemu}`;
  targets.push({ cellPath: HELPER_DIR, kind: 'dir' }, { cellPath: cellQemu, kind: 'file' });
  const binfmtDir = inCell('/proc/sys/fs/binfmt_misc');
  const interpreter = inCell(cellQemu);
  ops.push({ op: 'bind-ro', source: emulation.qemuPath, target: interpreter });
  return [
    { op: 'binfmt-mount', target: binfmtDir },
    {
      op: 'binfmt-register',
      dir: binfmtDir,
      name: emulation.ruleName,
      scope: emulation.binfmt,
      rule: binfmtRule ? binfmtRule(emulation, interpreter) : '',
    },
  ];
}

/**
 * The cgroup, the network, the hostname and the user namespace. A private binfmt_misc instance
 * belongs to the user namespace it is mounted in (the cell's): registered inside it; a global
 * rule by real root, before it.
 */
function namespaceOps(
  spec: BuildCellSpec,
  ctx: RunContext,
  inCell: (cellPath: string) => string,
  binfmtOps: SetupOp[],
): SetupOp[] {
  const global = ctx.emulation?.binfmt === 'global';
  const ops: SetupOp[] = global || !ctx.nestedUserns ? [...binfmtOps] : [];
  if (ctx.cgroupDir) ops.push({ op: 'cgroup', dir: ctx.cgroupDir });
  if (spec.network === 'disabled') ops.push({ op: 'loopback' });
  ops.push({ op: 'hostname', name: ctx.hostname });
  if (ctx.nestedUserns) {
    ops.push(
      { op: 'enter-userns', proc: inCell('/proc'), unshare: ctx.tools.unshare, shell: ctx.tools.shell },
      { op: 'wait-map' },
    );
    if (!global) ops.push(...binfmtOps);
  }
  return ops;
}

function rootlessFiles(ctx: RunContext): CellFile[] {
  if (!ctx.rootless || ctx.subIds) return [];
  // Only root is mapped in this rootless cell, so apt cannot drop to its _apt user: let it download as root.
  return [
    {
      cellPath: '/etc/apt/apt.conf.d/00build-cell-rootless',
      content: 'APT::Sandbox::User "root";\n',
      mode: 0o644,
      onlyIfDir: '/etc/apt/apt.conf.d',
    },
  ];
}

function execStep(spec: BuildCellSpec, ctx: RunContext, layout: ScratchLayout): CellPlan['exec'] {
  return {
    cwd: spec.command.cwd,
    tools: { env: ctx.tools.env, prlimit: ctx.tools.prlimit, unshare: ctx.tools.unshare },
    cpuTimeSeconds: spec.limits.cpuTimeSeconds,
    memoryBytes: spec.limits.memoryBytes,
    maxProcesses: spec.limits.maxProcesses,
    root: layout.merged,
    executable: spec.command.executable,
    argv: spec.command.argv,
  };
}

function importMode(ctx: RunContext, index: number): StagingMode {
  return (ctx.importKinds?.[index] ?? 'dir') === 'dir' &&
    ctx.importSources?.[index] !== undefined &&
    overlayCanUse(ctx.importSources[index])
    ? 'overlay'
    : 'copy';
}

function workspaceOp(spec: BuildCellSpec, layout: ScratchLayout, target: string, options: string): SetupOp {
  if (workspaceMode(spec) === 'overlay' && spec.workspaceSeed.kind === 'snapshot') {
    return {
      op: 'overlay',
      lower: spec.workspaceSeed.path,
      upper: layout.workspaceUpper,
      work: layout.workspaceWork,
      target,
      options,
    };
  }
  return { op: 'bind', source: layout.workspace, target };
}

/** One line of an fstab file. */
export interface FstabEntry {
  source: string;
  target: string;
  type: string;
  options: string;
}
