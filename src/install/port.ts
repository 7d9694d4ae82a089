/**
 * The install step's port: what the engine hands the install step (a request, a way to run
 * one cell) and what it gets back. The engine implements the runner; install/ never imports
 * the engine, so the layers keep one direction.
 */
import type { CellSpecInput } from '../cellspec/types.js';
import type { CellPlan } from '../cell/plan.js';
import type { Staged } from '../cell/stage.js';
import type { PreparedImage } from '../image/prepare.js';
import type { InstallIdentity } from './key.js';
import type { InstallRegistry } from './registry.js';

export interface InstallRequest extends InstallIdentity {
  /** The install cell's environment; undefined: the command's. */
  env?: Array<[string, string]>;
  /** The install cell's caches; undefined: the command's, less those inside its workspace path. */
  caches?: CellSpecInput['caches'];
  /** The names that key the derived image (the user's --env names; never their values). */
  keyEnvNames: string[];
  /** Where the Actions cache restores derived layouts to and saves them from (as for images). */
  cacheDir?: string;
  /** The registry tier (--install-registry, --install-push): pulled from after a miss, pushed to after a run. */
  registry?: InstallRegistry;
  /** The repository the derived image is built for, as a label (the action: its GitHub repository's URL). */
  source?: string;
}

export interface InstallResult {
  /** The install ran in this run (false: the derived image was reused). */
  ran: boolean;
  /** ran, or where the derived image came from: the store, the Actions cache dir, or the registry. */
  source: 'ran' | 'store' | 'cache' | 'registry';
  /** The derived image's manifest digest. */
  digest: string;
  baseDigest: string;
  /** The key's hash (the Actions cache key is made from it). */
  hash: string;
  /** The install cell's run, when it ran. */
  seconds?: number;
  /** The pull from the registry, when the image came from there (ms). */
  pullMs?: number;
  /** The registry tier, when one was given: its tag for this key, what happened there, whether this run pushed. */
  registry?: { reference: string; pushed: boolean; notes: string[] };
  /** What the front end should say as a warning (a registry that failed: the build went on). */
  warnings?: string[];
}

/** What a caller may do with a cell beyond running it (the install step keeps its root changes). */
export interface CellHooks {
  /** After the command succeeded, while the cell's view (`root`) exists; its processes are gone. */
  whileAlive?: (cell: { root: string; plan: CellPlan; staged: Staged }) => Promise<void>;
  /** After the command succeeded and the cell was released, before its scratch is removed. */
  afterRelease?: (cell: { plan: CellPlan; staged: Staged }) => Promise<void>;
}

/** What the install step needs of its cell's run. */
export interface InstallCellOutcome {
  exitCode: number;
  signal?: number;
  scratch: string;
  scratchPreserved: boolean;
}

/** Runs the install cell on the base image (the engine, without the install). */
export type InstallCellRunner = (
  base: PreparedImage,
  spec: CellSpecInput,
  hooks: CellHooks,
) => Promise<InstallCellOutcome>;
