/**
 * The build-cell spec: everything one cell run needs, as plain data.
 * Host paths are absolute paths on the machine; cell paths are absolute paths inside the cell.
 * Field names follow the seed's `BuildCellSpec` (see README "The spec").
 */

export type WorkspaceSeed =
  | { kind: 'empty' }
  /** A host directory copied into the cell (the host copy is never modified). */
  | { kind: 'snapshot'; path: string }
  /** A `.tar`, `.tar.gz` or `.tgz` archive unpacked into the workspace. */
  | { kind: 'archive'; path: string };

/** Host `source` staged into the cell at `destination` (imports read-only, caches read-write and synced back). */
export interface HostToCell {
  source: string;
  destination: string;
}

/** Cell `source` copied out to host `destination` after the run. */
export interface CellToHost {
  source: string;
  destination: string;
}

/**
 * A tmpfs mounted at `destination` in the cell, empty at the start of each cell (each step of
 * a session). Its directories hand out small directory offsets, unlike an ext4 directory seen
 * through qemu-user: see the README's "32-bit guests and directory offsets".
 */
export interface TmpfsMount {
  destination: string;
  /** The size limit (`size=`); undefined: the kernel's default, half of the RAM. */
  sizeBytes?: number;
}

export interface CommandSpec {
  cwd: string;
  /** An absolute cell path, or a bare name looked up in the cell's PATH. */
  executable: string;
  argv: string[];
}

export type NetworkPolicy = 'enabled' | 'disabled';
export type CleanupPolicy = 'always' | 'preserve-on-failure' | 'never';

export interface ResourceLimits {
  cpuTimeSeconds?: number;
  memoryBytes?: number;
  maxProcesses?: number;
}

export interface BuildCellSpec {
  /** The image rootfs. It is the read-only lower layer: the cell writes to its own overlay. */
  root: string;
  /**
   * Where the rootfs is one image file (EROFS), mounted read-only on `root` in the cell's own
   * mount namespace only (`root` is then an empty mount point): the file and its mount options
   * (`ro`, or `ro,loop` where the kernel cannot mount the file itself; see image/erofs/).
   */
  rootImage?: { file: string; options: string };
  /** The cell's private scratch directory: staged inputs, overlay upper layer, request file. */
  scratch: string;
  workspacePath: string;
  workspaceSeed: WorkspaceSeed;
  imports: HostToCell[];
  caches: HostToCell[];
  exports: CellToHost[];
  /** tmpfs mounts (--tmpfs, the `tmpfs` input); absent in requests and sessions of older versions. */
  tmpfs?: TmpfsMount[];
  command: CommandSpec;
  /** Exactly the environment the command sees, in order. */
  env: Array<[string, string]>;
  network: NetworkPolicy;
  limits: ResourceLimits;
  cleanup: CleanupPolicy;
  /**
   * A shell script (the CLI's --run, the action's `run`): written to /.build-cell/run.sh in the
   * cell's private layer, for the command to execute. Not part of the seed's spec.
   */
  script?: string;
}

/** Whether the cleanup policy (a CleanupPolicy, or the string a record kept) keeps the scratch after a run that succeeded or not. */
export function scratchPreserved(policy: string, succeeded: boolean): boolean {
  return policy === 'never' || (policy === 'preserve-on-failure' && !succeeded);
}

/** Where `script` appears inside the cell. */
export const SCRIPT_PATH = '/.build-cell/run.sh';

export type ScriptShell = 'sh' | 'bash';

/** How a script runs in a cell: `sh -e`, or bash as GitHub's `shell: bash` runs it. */
export function scriptCommand(
  shell: ScriptShell,
  scriptPath: string = SCRIPT_PATH,
): { executable: string; argv: string[] } {
  return shell === 'bash'
    ? { executable: 'bash', argv: ['--noprofile', '--norc', '-eo', 'pipefail', scriptPath] }
    : { executable: '/bin/sh', argv: ['-e', scriptPath] };
}

export const NETWORK_POLICIES: readonly NetworkPolicy[] = ['enabled', 'disabled'];
export const CLEANUP_POLICIES: readonly CleanupPolicy[] = ['always', 'preserve-on-failure', 'never'];

export interface BuildCellResult {
  /** The command's exit code, or 128+N when it was killed by signal N. */
  exitCode: number;
  /** Set when the command was killed by a signal. */
  signal?: number;
  scratchPreserved: boolean;
}

/** A spec without root and scratch: the engine fills those in from the image and the state dir. */
export type CellSpecInput = Omit<BuildCellSpec, 'root' | 'scratch'>;
