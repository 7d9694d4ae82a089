/**
 * The engine: one cell run, from a validated request to a result; shared by the CLI, the
 * action and session steps (through engine-entry.ts). What it does, in order:
 *   validate  the request, the host inputs, the emulation and the export destinations,
 *             before anything touches the host
 *   image     the image from the store, the cache dir or the registry; with an install step,
 *             its derived image, found or made (install/derive.ts, through install/port.ts)
 *   cell      the cell's lifecycle on that image (engine-cell.ts: open, stage, run,
 *             finalize, release, clean up), unless only the image was asked for
 * Whatever fails, the cell's processes are killed, its namespaces (and so its mounts and
 * private binfmt rule) vanish, cgroups and global binfmt rules are removed, and the scratch
 * is kept only as the cleanup policy says.
 */
import { checkEmulation } from './emulation/setup.js';
import { prepareImage, type PreparedImage, type PrepareRequest } from './image/prepare.js';
import { Store } from './image/store.js';
import { ImageHolds } from './image/usage.js';
import { dirname } from 'node:path';
import { checkExportDestinations } from './cell/finalize.js';
import { checkHostInputs, checkOutsideStateDir } from './cell/host-inputs.js';
import { checkWriteBack } from './write-back/workspace.js';
import { canonicalPrefix, prepareDirUnder } from './cell/runtime-root.js';
import { prepareDerived } from './install/derive.js';
import type { InstallResult } from './install/port.js';
import { normalizeSpec, validateSpec } from './cellspec/validate.js';
import type { BuildCellSpec } from './cellspec/types.js';
import { phaseTimer } from './util/timing.js';
import { UserError, errorMessage, show } from './util/errors.js';
import type { CellRequest, CellRunResult, Phase } from './engine-types.js';
import { runCellOn } from './engine-cell.js';
import { emulationOptions, emulationReport, rootlessIds } from './engine-parts.js';

export { CancelledError } from './engine-cell.js';
export { newCellId } from './engine-parts.js';
export type {
  CellHooks,
  CellRequest,
  CellRunResult,
  CellSpecInput,
  ImageRequest,
  Phase,
  QemuSelection,
} from './engine-types.js';

/** Validate a request fully, touching nothing on the host. */
export function validateRequest(request: CellRequest): BuildCellSpec {
  if (request.cellId !== undefined && !/^[a-z0-9][a-z0-9-]{0,63}$/.test(request.cellId))
    throw new UserError('cellId', `must be lowercase letters, digits and dashes, got ${show(request.cellId)}`);
  const pending = `${request.stateDir}/images/rootfs/pending`;
  const spec: BuildCellSpec = { ...request.spec, root: pending, scratch: `${request.stateDir}/cells/pending` };
  validateSpec(spec);
  if (request.writeBack) checkWriteBack(spec);
  if (request.storeMaxSize !== undefined && !(Number.isSafeInteger(request.storeMaxSize) && request.storeMaxSize > 0))
    throw new UserError('storeMaxSize', `must be a positive number of bytes, got ${show(request.storeMaxSize)}`);
  return normalizeSpec(spec);
}

export async function runBuildCell(request: CellRequest, signal?: AbortSignal): Promise<CellRunResult> {
  const importKinds = await checkHostInputs(validateRequest(request));
  // Every cell needs its emulation, now or (a session's) later; only a bare prepare runs none.
  if (!request.prepareOnly || request.install || request.rootLayer)
    await checkEmulation(request.image.arch, emulationOptions(request));
  await checkExportDestinations(request.spec);
  const prefix = await canonicalPrefix(request.stateDir);
  await checkOutsideStateDir(request.spec, prefix);
  // Every image this run uses is held until it ends (a prune keeps it), and its use marked.
  const holds = new ImageHolds(request.rootLayer ? dirname(request.rootLayer) : undefined);
  const store = new Store(prefix, holds);
  try {
    const result = await runOnStore(store, request, { importKinds, signal });
    if (request.storeMaxSize === undefined) return result;
    return { ...result, store: await applyCap(store, request.storeMaxSize, holds.entries()) };
  } finally {
    holds.release();
  }
}

/** The image (and install step), then the cell on it, unless only the image was asked for. */
async function runOnStore(
  store: Store,
  request: CellRequest,
  options: { importKinds: Array<'dir' | 'file'>; signal?: AbortSignal },
): Promise<CellRunResult> {
  const { importKinds, signal } = options;
  const prefix = store.stateDir;
  const timer = phaseTimer<Phase>();
  const { image, install } = await timer.timed('image', () => imageWithInstall(store, request, signal));
  Object.assign(timer.timings, image.timings);
  if (install?.ran && install.seconds !== undefined) {
    // The install cell's own run is a phase of its own, not part of preparing the image.
    timer.timings.install = Math.round(install.seconds * 10000) / 10;
    timer.timings.image = Math.round((timer.timings.image! - timer.timings.install) * 10) / 10;
  }
  // A derived image pulled from the install registry: its pull is the run's pull.
  if (install?.pullMs !== undefined) timer.timings.pull = (timer.timings.pull ?? 0) + install.pullMs;
  if (request.prepareOnly) {
    // A session started without a command: its root layer is there from the start, and holds its image.
    if (request.rootLayer) await prepareDirUnder(prefix, request.rootLayer, 'rootLayer');
    return {
      exitCode: 0,
      image,
      arch: request.image.arch.name,
      ...emulationReport(request),
      scratch: '',
      scratchPreserved: false,
      exports: [],
      timings: timer.timings,
      ...(install ? { install } : {}),
    };
  }
  const result = await runCellOn(prefix, image, request, { importKinds, signal, timer });
  return install ? { ...result, install } : result;
}

/** The image a request's cell runs on: the image itself, or the derived image of its install step. */
async function imageWithInstall(
  store: Store,
  request: CellRequest,
  signal?: AbortSignal,
): Promise<{ image: PreparedImage; install?: InstallResult }> {
  const prefix = store.stateDir;
  const base: PrepareRequest = {
    ...request.image,
    rootless: process.getuid?.() !== 0,
    cacheOwner: request.owner,
    // A bare prepare prints the rootfs for the user: a directory, never a mount point.
    needRootfs: !!request.prepareOnly,
  };
  if (!request.install) return { image: await prepareImage(store, base) };
  return prepareDerived({
    store,
    base,
    install: request.install,
    spec: request.spec,
    // The install cell is a cell of its own: none of the command's extras (write-back, a session's root layer).
    runCell: (base, spec, hooks) =>
      runCellOn(
        prefix,
        base,
        {
          stateDir: request.stateDir,
          image: request.image,
          owner: request.owner,
          inheritImageEnv: request.inheritImageEnv,
          qemuCpu: request.qemuCpu,
          emulation: request.emulation,
          qemu: request.qemu,
          stderrToStdout: request.stderrToStdout,
          spec,
        },
        { importKinds: [], signal, timer: phaseTimer<Phase>(), hooks },
      ),
  });
}

/** The size cap after a run, never the images it used; a failure is a warning, never the build's. */
async function applyCap(store: Store, maxBytes: number, used: string[]): Promise<NonNullable<CellRunResult['store']>> {
  try {
    // Loaded only for a run with a cap: the store's upkeep is no part of a warm cell's start-up.
    const { capStore } = await import('./store/cap.js');
    return await capStore(store, maxBytes, used, rootlessIds());
  } catch (error) {
    return { maxBytes, warning: `the store's size cap was not applied: ${errorMessage(error)}` };
  }
}
