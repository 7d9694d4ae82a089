/**
 * The typed command the CLI's flags parse into (./args.ts), and the environment parsing reads.
 */
import type { ArchInfo } from '../emulation/arch.js';
import type { EmulationMode } from '../emulation/native.js';
import type { QemuVersion } from '../tools/pinned.js';
import type { PullPolicy } from '../image/prepare.js';
import type { ImageReference } from '../image/reference.js';
import type { RegistryOptions } from '../image/registry-auth.js';
import type { CellSpecInput } from '../engine.js';
import type { Privilege } from '../privilege/mode.js';

export interface CommonOptions {
  image: { ref: ImageReference; arch: ArchInfo; pull: PullPolicy; registry: RegistryOptions };
  stateDir: string;
  privilege: Privilege;
  verbose: boolean;
  /** --qemu-cpu MODEL: the CPU qemu emulates for a foreign --arch (see emulation/cpu.ts). */
  qemuCpu?: string;
  /** --emulation auto|qemu (see emulation/native.ts). */
  emulation: EmulationMode;
  /** --qemu 7.2|10.0|path: which qemu build (tools/pinned.ts); unset: the qemu-ARCH-static on PATH. */
  qemu?: QemuVersion;
  /** --tools-source URL: the Debian archive a pinned qemu is downloaded from. */
  toolsSource?: string;
  /** --store-max-size SIZE (bytes): the size cap applied after the run (see store/cap.ts). */
  storeMaxSize?: number;
}

/** --install SCRIPT [--install-key K] [--install-registry REPO [--install-push]]: the cached install step (see src/install/derive.ts). */
export interface InstallOption {
  script: string;
  key: string;
  /** --install-registry REPO (host/path, see install/registry.ts) and whether --install-push lets this run push. */
  registry?: { repository: string; push: boolean };
  /** The repository the image is built for, as its label: $GITHUB_SERVER_URL/$GITHUB_REPOSITORY in a workflow. */
  source?: string;
}

export type CliCommand =
  | { kind: 'help'; text: string }
  | { kind: 'version' }
  | ({
      kind: 'prepare';
      install?: InstallOption;
      env: Array<[string, string]>;
      caches: CellSpecInput['caches'];
    } & CommonOptions)
  | ({
      kind: 'run';
      spec: CellSpecInput;
      install?: InstallOption;
      writeBack?: boolean;
      /** --write-back-git: write-back may write under .git directories too. */
      writeBackGit?: boolean;
      resultFile?: string;
    } & CommonOptions)
  | { kind: 'demo'; stateDir: string; privilege: Privilege; verbose: boolean }
  /** session start: a run whose command is optional (the first step). */
  | ({
      kind: 'session-start';
      name: string;
      run: boolean;
      spec: CellSpecInput;
      install?: InstallOption;
      /** --write-back-git: every step's write-back may write under .git directories too. */
      writeBackGit?: boolean;
    } & CommonOptions)
  | {
      kind: 'session-exec';
      name: string;
      stateDir: string;
      verbose: boolean;
      env: Array<[string, string]>;
      command: { script: string } | { argv: string[] };
      resultFile?: string;
    }
  | { kind: 'session-end'; name: string; stateDir: string; verbose: boolean; exports: CellSpecInput['exports'] }
  /** store list|prune|verify: the store's upkeep (see src/store/). */
  | StoreCommand
  /** The runner's `shell: build-cell {0}` (through the shim the action puts on PATH). */
  | { kind: 'session-step'; sessions: string; name: string; script: string; verbose: boolean };

export interface CliEnvironment {
  cwd: string;
  env: NodeJS.ProcessEnv;
  uid: number;
  /** Read the password for --registry-password-stdin. */
  readStdin?: () => string;
}

export type StoreCommand = {
  kind: 'store';
  action: 'list' | 'prune' | 'verify';
  stateDir: string;
  json: boolean;
  verbose: boolean;
  /** prune's conditions (see store/prune.ts). */
  olderThanMs?: number;
  maxBytes?: number;
  all?: boolean;
  dryRun?: boolean;
  /** The arguments as given, for a run through sudo. */
  argv: string[];
};
