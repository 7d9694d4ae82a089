/**
 * The engine: one cell run, from a validated request to a result. Shared by the CLI and the
 * action. Phases: validate -> image -> stage -> run -> exports -> caches -> cleanup.
 * Whatever fails, the cell's processes are killed, its namespaces (and so its mounts and
 * private binfmt rule) vanish, cgroups and global binfmt rules are removed, and the scratch
 * is kept only as the cleanup policy says.
 */
import { join } from 'node:path';
import { binfmtRule } from './emulation/arch.js';
import { removeGlobalRule } from './emulation/binfmt.js';
import { decideEmulation, describeDecision, nativePersonality } from './emulation/native.js';
import {
  checkEmulation,
  describeEmulation,
  emulationFor,
  unmatchedQemuCopy,
  type Emulation,
  type EmulationOptions,
} from './emulation/setup.js';
import { prepareImage, type PreparedImage } from './image/prepare.js';
import { Store } from './image/store.js';
import { createPidsCgroup, pidsCgroupRoot, removeCgroup } from './cell/cgroup.js';
import { cellOwnerFile, removeAbandonedCells } from './cell/cell-owner.js';
import {
  checkExportDestinations,
  copyExports,
  resolveExportDestinations,
  syncCaches,
  type Owner,
} from './cell/finalize.js';
import { checkHostInputs, checkOutsideStateDir } from './cell/host-inputs.js';
import { checkWriteBack, writeBack, type WriteBackResult } from './cell/write-back.js';
import { planCell, type RunContext } from './cell/plan.js';
import { batchMounts } from './cell/mount-batch.js';
import { helperTools, hostResolvConf, installHelper, startCell, type RunningCell } from './cell/run.js';
import { canonicalPrefix, checkRuntimeRoot, prepareDirUnder } from './cell/runtime-root.js';
import { emptyScratch, removeScratch, stageCell, writeScratchRecords, type Staged } from './cell/stage.js';
import { prepareDerived } from './install/derive.js';
import type { InstallResult } from './install/port.js';
import { normalizeSpec, validateSpec } from './cellspec/validate.js';
import { DEFAULT_ENV, mergeEnv, parseEnvStrings } from './cellspec/env.js';
import { scratchPreserved, type BuildCellSpec } from './cellspec/types.js';
import { now, phaseTimer } from './util/timing.js';
import { probeUserns } from './privilege/mode.js';
import { randomHex } from './util/random.js';
import { BuildCellError, UserError, show } from './util/errors.js';
import type { CellHooks, CellRequest, CellRunResult, ImageRequest, Phase } from './engine-types.js';

export type {
  CellHooks,
  CellRequest,
  CellRunResult,
  CellSpecInput,
  ImageRequest,
  Phase,
  QemuSelection,
} from './engine-types.js';

export class CancelledError extends BuildCellError {
  override name = 'CancelledError';
}

export function newCellId(): string {
  return `${Date.now().toString(36)}-${randomHex(4)}`;
}

/** Validate a request fully, touching nothing on the host. */
export function validateRequest(request: CellRequest): BuildCellSpec {
  if (request.cellId !== undefined && !/^[a-z0-9][a-z0-9-]{0,63}$/.test(request.cellId))
    throw new UserError('cellId', `must be lowercase letters, digits and dashes, got ${show(request.cellId)}`);
  const pending = `${request.stateDir}/images/rootfs/pending`;
  const spec: BuildCellSpec = { ...request.spec, root: pending, scratch: `${request.stateDir}/cells/pending` };
  validateSpec(spec);
  if (request.writeBack) checkWriteBack(spec);
  return normalizeSpec(spec);
}

export async function prepare(stateDir: string, image: ImageRequest, owner?: Owner): Promise<PreparedImage> {
  const prefix = await canonicalPrefix(stateDir);
  return prepareImage(new Store(prefix), { ...image, rootless: process.getuid?.() !== 0, cacheOwner: owner });
}

function emulationOptions(request: CellRequest): EmulationOptions {
  return { mode: request.emulation, qemuPath: request.qemu?.path, qemuCpu: request.qemuCpu };
}

/** What the result says of emulation: native or qemu and why, the mode, the qemu build chosen. */
function emulationReport(
  request: CellRequest,
): Pick<CellRunResult, 'emulated' | 'emulationDecision' | 'emulationMode' | 'qemu'> {
  const decision = decideEmulation(request.image.arch, request.emulation);
  return {
    emulated: decision.emulated,
    emulationDecision: describeDecision(request.image.arch, decision),
    emulationMode: request.emulation ?? 'auto',
    ...(decision.emulated && request.qemu ? { qemu: request.qemu.choice } : {}),
  };
}

/** Rootless: the ids a cell maps (subordinate ranges, or root alone); undefined as root. */
function rootlessIds() {
  return process.getuid?.() !== 0 ? probeUserns().ids : undefined;
}

export async function runBuildCell(request: CellRequest, signal?: AbortSignal): Promise<CellRunResult> {
  const importKinds = await checkHostInputs(validateRequest(request));
  await checkEmulation(request.image.arch, emulationOptions(request));
  await checkExportDestinations(request.spec);
  const prefix = await canonicalPrefix(request.stateDir);
  await checkOutsideStateDir(request.spec, prefix);
  const timer = phaseTimer<Phase>();
  const { image, install } = await timer.timed('image', () => cellImage(prefix, request, signal));
  Object.assign(timer.timings, image.timings);
  if (install?.ran && install.seconds !== undefined) {
    // The install cell's own run is a phase of its own, not part of preparing the image.
    timer.timings.install = Math.round(install.seconds * 10000) / 10;
    timer.timings.image = Math.round((timer.timings.image! - timer.timings.install) * 10) / 10;
  }
  if (request.prepareOnly) {
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

/** `prepare --install`: the derived image, found or made, without running a command. */
export async function prepareWithInstall(
  request: CellRequest,
): Promise<{ image: PreparedImage; install?: InstallResult }> {
  validateRequest(request);
  await checkEmulation(request.image.arch, emulationOptions(request));
  const prefix = await canonicalPrefix(request.stateDir);
  await checkOutsideStateDir(request.spec, prefix);
  return cellImage(prefix, request);
}

/** The image a request's cell runs on: the image itself, or the derived image of its install step. */
async function cellImage(
  prefix: string,
  request: CellRequest,
  signal?: AbortSignal,
): Promise<{ image: PreparedImage; install?: InstallResult }> {
  if (!request.install) return { image: await prepare(prefix, request.image, request.owner) };
  const store = new Store(prefix);
  return prepareDerived({
    store,
    base: { ...request.image, rootless: process.getuid?.() !== 0, cacheOwner: request.owner },
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

export interface CellOnOptions {
  importKinds: Array<'dir' | 'file'>;
  signal?: AbortSignal;
  timer: ReturnType<typeof phaseTimer<Phase>>;
  hooks?: CellHooks;
}

/** One cell on a prepared image: setup, stage, run, exports, caches, release, cleanup. */
async function runCellOn(
  prefix: string,
  image: PreparedImage,
  request: CellRequest,
  options: CellOnOptions,
): Promise<CellRunResult> {
  const { importKinds, signal, hooks } = options;
  const { timings, timed, since } = options.timer;
  const setupStart = now();
  const id = request.cellId ?? newCellId();
  const scratch = join(prefix, 'cells', id);
  const guest = request.image.arch;
  const rootless = process.getuid?.() !== 0;
  const imageEnv = request.inheritImageEnv
    ? mergeEnv(DEFAULT_ENV, parseEnvStrings(image.config.env), request.spec.env)
    : request.spec.env;
  const emulated = emulationFor(guest, id, rootless, emulationOptions(request), request.spec.env, imageEnv);
  let emulation: Emulation | undefined = emulated?.emulation;
  const spec = normalizeSpec({ ...request.spec, env: emulated?.env ?? imageEnv, root: image.rootfs, scratch });
  validateSpec(spec);
  await checkRuntimeRoot(prefix, spec.root);

  // Rootless: which ids the cell maps (probed once per process; the CLI has probed already).
  const ids = rootlessIds();
  const subIds = !!ids?.uids;
  const destinations = await resolveExportDestinations(spec, request.owner);

  let cell: RunningCell | undefined;
  let cgroupDir: string | undefined;
  let succeeded = false;
  let records: Promise<void> | undefined;
  let staged: Staged | undefined;
  const onAbort = () => cell?.kill();
  signal?.addEventListener('abort', onAbort);
  try {
    await removeAbandonedCells(join(prefix, 'cells'), ids);
    await prepareDirUnder(prefix, scratch, 'scratch');
    if (request.rootLayer) await prepareDirUnder(prefix, request.rootLayer, 'rootLayer');
    emptyScratch(scratch);
    if (emulation?.selfMatching) emulation = { ...emulation, qemuPath: unmatchedQemuCopy(emulation, scratch) };
    const cgroupRoot =
      spec.limits.maxProcesses !== undefined && process.getuid?.() === 0 ? pidsCgroupRoot() : undefined;
    if (cgroupRoot) cgroupDir = await createPidsCgroup(cgroupRoot, id, spec.limits.maxProcesses!);
    const tools = helperTools();
    const ctx: RunContext = {
      prefix,
      tools,
      emulation,
      cgroupDir,
      hostResolvConf: hostResolvConf(),
      hostname: 'build-cell',
      importKinds,
      importSources: spec.imports.map((m) => m.source),
      rootless,
      subIds,
      // BUILD_CELL_USERNS=none: the command runs as real root (for debugging only).
      nestedUserns: !rootless && process.env.BUILD_CELL_USERNS !== 'none',
      persistentUpper: request.rootLayer,
    };
    const planned = planCell(spec, ctx, (e, interpreter) => binfmtRule(e.ruleName, e.arch, interpreter));
    const plan = { ...planned, ops: batchMounts(planned.ops, planned.layout, { rootless }) };
    const ownerFile = cellOwnerFile(spec.cleanup);
    const helper = await installHelper(prefix);
    since('setup', setupStart);

    if (signal?.aborted) throw new CancelledError('cancelled before the cell started');
    // The helper starts first and waits: its process start-up overlaps the staging.
    const personality = emulation ? undefined : nativePersonality(guest);
    const running = startCell(plan, helper, {
      network: spec.network,
      userNamespace: rootless ? 'map-root' : 'none',
      ids,
      tools,
      ...(personality ? { personality } : {}),
      ...(request.stderrToStdout ? { stderrToStdout: true } : {}),
    });
    cell = running;
    staged = await timed('stage', () => stageCell(spec, plan, request.owner));
    if (signal?.aborted) throw new CancelledError('cancelled before the cell started');
    running.go(spec.env);
    // Written while the command runs (the engine only waits then); the first thread-pool call
    // also starts the thread pool, which costs a few ms.
    records = writeScratchRecords(spec, plan, ownerFile);
    const outcome = await timed('run', () => running.outcome);
    await records;
    if (signal?.aborted) throw new CancelledError('cancelled: every process of the cell was killed');
    succeeded = outcome.exitCode === 0;
    let exports: CellRunResult['exports'] = [];
    const cellRoot = join(running.viewRoot, plan.layout.merged);
    if (succeeded && hooks?.whileAlive) await hooks.whileAlive({ root: cellRoot, plan, staged: staged });
    let writtenBack: WriteBackResult | undefined;
    try {
      exports = await timed('export', () => copyExports(spec, cellRoot, destinations, succeeded, request.owner));
      // Whatever the command's exit code, like the caches.
      if (request.writeBack)
        writtenBack = await timed('write-back', () =>
          writeBack(spec, plan, staged!.workspaceCreated, cellRoot, {
            owner: request.owner,
            git: !!request.writeBackGit,
          }),
        );
    } finally {
      try {
        // Caches are synced back even when the command or an export failed (while the cell's view exists).
        await timed('cache', () => syncCaches(spec, plan, cellRoot, request.owner));
      } finally {
        // The helper exits, and the cell's namespaces and mounts go with it.
        await timed('release', () => running.release());
        cell = undefined;
        // Overlay work dirs (the kernel makes them mode 000) are only needed while mounted;
        // without them a kept scratch can be removed by its owner with a plain rm -rf.
        if (scratchPreserved(spec.cleanup, succeeded)) {
          for (const work of [
            plan.layout.work,
            plan.layout.workspaceWork,
            ...spec.caches.map((_, i) => plan.layout.cacheWork(i)),
          ]) {
            await removeScratch(work).catch(() => undefined);
          }
        }
      }
    }
    if (succeeded && hooks?.afterRelease) await hooks.afterRelease({ plan, staged: staged });
    const preserved = scratchPreserved(spec.cleanup, succeeded);
    return {
      exitCode: outcome.exitCode,
      signal: outcome.signal,
      image,
      arch: guest.name,
      ...emulationReport(request),
      ...(emulated ? { emulation: describeEmulation(emulated), qemuCpu: emulated.cpu.model } : {}),
      scratch,
      scratchPreserved: preserved,
      exports,
      timings,
      ...(writtenBack ? { writeBack: writtenBack } : {}),
    };
  } catch (error) {
    if (signal?.aborted && !(error instanceof CancelledError))
      throw new CancelledError('cancelled: every process of the cell was killed');
    throw error;
  } finally {
    signal?.removeEventListener('abort', onAbort);
    if (cell) {
      cell.kill();
      await cell.release().catch(() => undefined);
    }
    await records?.catch(() => undefined);
    await timed('cleanup', async () => {
      if (cgroupDir) await removeCgroup(cgroupDir).catch(() => undefined);
      if (emulation?.binfmt === 'global') await removeGlobalRule(emulation.ruleName);
      if (!scratchPreserved(spec.cleanup, succeeded)) await removeScratch(scratch, ids);
    });
  }
}
