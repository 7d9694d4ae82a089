/**
 * The engine's request and result types: what a caller asks of one cell run (see engine.ts)
 * and what it gets back.
 */
import type { ArchInfo } from './emulation/arch.js';
import type { EmulationMode } from './emulation/native.js';
import type { PreparedImage, PullPolicy } from './image/prepare.js';
import type { ImageReference } from './image/reference.js';
import type { RegistryOptions } from './image/registry-auth.js';
import type { Owner } from './cell/finalize.js';
import type { WriteBackResult } from './write-back/workspace.js';
import type { InstallRequest, InstallResult } from './install/port.js';
import type { CellSpecInput } from './cellspec/types.js';
import type { CapReport } from './store/cap-report.js';

export type { CellHooks } from './install/port.js';
export type { CellSpecInput } from './cellspec/types.js';

export interface ImageRequest {
  ref: ImageReference;
  arch: ArchInfo;
  pull: PullPolicy;
  registry: RegistryOptions;
  /** Already resolved manifest digest for `arch` (the action resolves it for its cache key). */
  digest?: string;
  /** Where the Actions cache restores layouts to and saves them from (see image/prepare.ts). */
  cacheDir?: string;
}

export interface CellRequest {
  stateDir: string;
  image: ImageRequest;
  spec: CellSpecInput;
  /** Who gets the exports and caches (the user behind sudo). */
  owner?: Owner;
  /** Start the environment from defaults (PATH, HOME) and the image's config Env, as docker does. */
  inheritImageEnv?: boolean;
  /** The cell's id (its scratch is STATE/cells/ID); the action picks it so its post step can find the scratch. */
  cellId?: string;
  /** The cached install step: the command runs on the image it derives (see install/derive.ts). */
  install?: InstallRequest;
  /** Apply the cell's workspace changes to the host workspace directory after the command (see cell/write-back.ts). */
  writeBack?: boolean;
  /** Write-back may write under `.git` directories too (see cell/write-back.ts); by default they are left as the host has them. */
  writeBackGit?: boolean;
  /**
   * The cell's stderr goes to the engine's stdout: one stream, so a runner step's log has the
   * cell's output in order with build-cell's stop-commands markers (see github/workflow-commands.ts).
   */
  stderrToStdout?: boolean;
  /** A session's root layer, under the state dir: the cell's root changes stay there for its next cell (see session/). */
  rootLayer?: string;
  /** Only prepare the image (and its install step): no command runs (`prepare`; a session started without a command). */
  prepareOnly?: boolean;
  /** The CPU model qemu emulates for a foreign guest (see emulation/cpu.ts); checked before the image. */
  qemuCpu?: string;
  /** auto: native where this host runs the guest (probed), else qemu; qemu: always qemu (see emulation/native.ts). */
  emulation?: EmulationMode;
  /** The qemu binary the caller resolved for the guest (--qemu, the action's tools), and which build it is; else PATH's. */
  qemu?: QemuSelection;
  /** Bytes: after the run, the least recently used images are removed until the store fits (see store/cap.ts). */
  storeMaxSize?: number;
}

export interface QemuSelection {
  /** Absolute path of the guest's qemu-ARCH-static. */
  path: string;
  /** Which build, for the report: "10.0 (Debian qemu-user 1:10.0.13+ds-0+deb13u1)", "path". */
  choice: string;
}

/**
 * image: the whole image preparation (on a warm run, only the store lookup); resolve, pull and
 * unpack are its parts when they ran. setup: the checks and the plan between image and stage.
 * release: the helper's exit, which takes the namespaces and their mounts with it.
 */
export type Phase =
  | 'image'
  | 'resolve'
  | 'pull'
  | 'unpack'
  | 'install'
  | 'setup'
  | 'stage'
  | 'run'
  | 'export'
  | 'write-back'
  | 'cache'
  | 'release'
  | 'cleanup';

export interface CellRunResult {
  exitCode: number;
  signal?: number;
  image: PreparedImage;
  arch: string;
  emulated: boolean;
  /** How the cell was emulated: qemu's path and the CPU model with where it came from. */
  emulation?: string;
  /** The CPU model qemu emulated (QEMU_CPU), when one was set. */
  qemuCpu?: string;
  /** Native or qemu, and why: "386: emulated (this kernel cannot run 32-bit x86 natively)". */
  emulationDecision: string;
  /** The emulation mode asked for (auto or qemu). */
  emulationMode: EmulationMode;
  /** Which qemu build ran the cell, when the caller chose one (--qemu, the action's tools). */
  qemu?: string;
  scratch: string;
  scratchPreserved: boolean;
  exports: Array<{ source: string; destination: string; bytes: number }>;
  timings: Partial<Record<Phase, number>>;
  /** The install step, when the request had one. */
  install?: InstallResult;
  /** What write-back applied, when asked for. */
  writeBack?: WriteBackResult;
  /** The size cap after the run, when one was asked for; `warning` when it could not be applied. */
  store?: Partial<CapReport> & { maxBytes: number; warning?: string };
}
