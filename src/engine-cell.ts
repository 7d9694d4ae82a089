/**
 * One cell on a prepared image, as a fixed lifecycle of named phases (as nsjail's contain):
 *
 *   describe  the spec, the emulation, the checks: nothing on the host changes yet
 *   open      the scratch, the pids cgroup, the plan, the helper             (timing: setup)
 *   stage     the helper starts and waits while the scratch is staged        (timing: stage)
 *   run       the command runs; the scratch records are written meanwhile     (timing: run)
 *   finalize  exports and write-back, then the caches, then the release       (export, write-back, cache, release)
 *   clean up  on every path: processes killed, cgroup and global binfmt rule removed,
 *             the scratch removed unless the cleanup policy keeps it          (timing: cleanup)
 *
 * The phases share one CellLife: what `describe` decided, and what the later phases made.
 */
import { join } from 'node:path';
import { binfmtRule } from './emulation/arch.js';
import { removeGlobalRule } from './emulation/binfmt.js';
import { nativePersonality } from './emulation/native.js';
import { describeEmulation, emulationFor, unmatchedQemuCopy, type EmulationSetup } from './emulation/setup.js';
import type { PreparedImage } from './image/prepare.js';
import { createPidsCgroup, pidsCgroupRoot, removeCgroup } from './cell/cgroup.js';
import { cellOwnerFile, removeAbandonedCells } from './cell/cell-owner.js';
import { copyExports, resolveExportDestinations } from './cell/finalize.js';
import { syncCaches } from './write-back/caches.js';
import { writeBack, type WriteBackResult } from './write-back/workspace.js';
import { planCell, type CellPlan, type RunContext } from './cell/plan.js';
import { batchMounts } from './cell/mount-batch.js';
import { helperTools, hostResolvConf, installHelper, startCell, type RunningCell } from './cell/run.js';
import { checkRuntimeImage, checkRuntimeRoot, prepareDirUnder } from './cell/runtime-root.js';
import { emptyScratch, removeScratch, rootLookups, stageCell, writeScratchRecords, type Staged } from './cell/stage.js';
import { erofsLowerView } from './image/lower-view.js';
import { normalizeSpec, validateSpec } from './cellspec/validate.js';
import { DEFAULT_ENV, mergeEnv, parseEnvStrings } from './cellspec/env.js';
import { scratchPreserved, type BuildCellSpec } from './cellspec/types.js';
import type { RootlessIds } from './privilege/userns.js';
import { now, type phaseTimer } from './util/timing.js';
import { BuildCellError } from './util/errors.js';
import { emulationOptions, emulationReport, newCellId, rootlessIds } from './engine-parts.js';
import type { CellHooks, CellRequest, CellRunResult, Phase } from './engine-types.js';

export class CancelledError extends BuildCellError {
  override name = 'CancelledError';
}

export interface CellOnOptions {
  importKinds: Array<'dir' | 'file'>;
  signal?: AbortSignal;
  timer: ReturnType<typeof phaseTimer<Phase>>;
  hooks?: CellHooks;
}

/** What one cell's phases share. */
interface CellLife {
  prefix: string;
  image: PreparedImage;
  request: CellRequest;
  options: CellOnOptions;
  id: string;
  scratch: string;
  spec: BuildCellSpec;
  emulated?: EmulationSetup;
  /** Rootless: the ids the cell maps; undefined as root. */
  ids?: RootlessIds;
  destinations: Awaited<ReturnType<typeof resolveExportDestinations>>;
  /** qemu for the host's own arch: the copy in the scratch its own rule does not match. */
  qemuCopy?: string;
  tools: ReturnType<typeof helperTools>;
  cgroupDir?: string;
  plan?: CellPlan;
  running?: RunningCell;
  staged?: Staged;
  records?: Promise<void>;
  succeeded: boolean;
}

interface Finalized {
  exports: CellRunResult['exports'];
  writtenBack?: WriteBackResult;
}

export async function runCellOn(
  prefix: string,
  image: PreparedImage,
  request: CellRequest,
  options: CellOnOptions,
): Promise<CellRunResult> {
  const setupStart = now();
  const life = await describeCell(prefix, image, request, options);
  const { signal } = options;
  const onAbort = () => life.running?.kill();
  signal?.addEventListener('abort', onAbort);
  try {
    await openCell(life, setupStart);
    await stageInCell(life);
    const outcome = await runInCell(life);
    const finalized = await finalizeCell(life);
    if (life.succeeded && options.hooks?.afterRelease)
      await options.hooks.afterRelease({ plan: life.plan!, staged: life.staged! });
    return cellResult(life, outcome, finalized);
  } catch (error) {
    if (signal?.aborted && !(error instanceof CancelledError))
      throw new CancelledError('cancelled: every process of the cell was killed');
    throw error;
  } finally {
    signal?.removeEventListener('abort', onAbort);
    await cleanUpCell(life);
  }
}

/** describe: the cell's spec (the image's env, the emulation's QEMU_CPU), checked; nothing on the host changes. */
async function describeCell(
  prefix: string,
  image: PreparedImage,
  request: CellRequest,
  options: CellOnOptions,
): Promise<CellLife> {
  const id = request.cellId ?? newCellId();
  const scratch = join(prefix, 'cells', id);
  const rootless = process.getuid?.() !== 0;
  const imageEnv = request.inheritImageEnv
    ? mergeEnv(DEFAULT_ENV, parseEnvStrings(image.config.env), request.spec.env)
    : request.spec.env;
  const emulated = emulationFor(
    request.image.arch,
    id,
    rootless,
    emulationOptions(request),
    request.spec.env,
    imageEnv,
  );
  const spec = normalizeSpec({
    ...request.spec,
    env: emulated?.env ?? imageEnv,
    root: image.rootfs,
    scratch,
    ...(image.mount ? { rootImage: image.mount } : {}),
  });
  validateSpec(spec);
  await checkRuntimeRoot(prefix, spec.root);
  if (spec.rootImage) checkRuntimeImage(prefix, spec.rootImage.file);
  // Rootless: which ids the cell maps (probed once per process; the CLI has probed already).
  const ids = rootlessIds();
  const destinations = await resolveExportDestinations(spec, request.owner);
  const tools = helperTools();
  return { prefix, image, request, options, id, scratch, spec, emulated, ids, destinations, tools, succeeded: false };
}

/** open: the scratch (and a session's root layer), the pids cgroup, the plan as data, the helper. */
async function openCell(life: CellLife, setupStart: number): Promise<void> {
  const { prefix, scratch, spec, request } = life;
  await removeAbandonedCells(join(prefix, 'cells'), life.ids);
  await prepareDirUnder(prefix, scratch, 'scratch');
  if (request.rootLayer) await prepareDirUnder(prefix, request.rootLayer, 'rootLayer');
  emptyScratch(scratch);
  const emulation = life.emulated?.emulation;
  if (emulation?.selfMatching) life.qemuCopy = unmatchedQemuCopy(emulation, scratch);
  const cgroupRoot = spec.limits.maxProcesses !== undefined && process.getuid?.() === 0 ? pidsCgroupRoot() : undefined;
  if (cgroupRoot) life.cgroupDir = await createPidsCgroup(cgroupRoot, life.id, spec.limits.maxProcesses!);
  life.plan = planFor(life);
  life.options.timer.since('setup', setupStart);
}

/** The cell's setup operations, as data (cell/plan.ts), with its mounts batched. */
function planFor(life: CellLife): CellPlan {
  const rootless = process.getuid?.() !== 0;
  const emulation = life.emulated?.emulation;
  const ctx: RunContext = {
    prefix: life.prefix,
    tools: life.tools,
    emulation: emulation && life.qemuCopy ? { ...emulation, qemuPath: life.qemuCopy } : emulation,
    cgroupDir: life.cgroupDir,
    hostResolvConf: hostResolvConf(),
    hostname: 'build-cell',
    importKinds: life.options.importKinds,
    importSources: life.spec.imports.map((m) => m.source),
    rootless,
    subIds: !!life.ids?.uids,
    // BUILD_CELL_USERNS=none: the command runs as real root (for debugging only).
    nestedUserns: !rootless && process.env.BUILD_CELL_USERNS !== 'none',
    persistentUpper: life.request.rootLayer,
  };
  const planned = planCell(life.spec, ctx, (e, interpreter) => binfmtRule(e.ruleName, e.arch, interpreter));
  return { ...planned, ops: batchMounts(planned.ops, planned.layout, { rootless }) };
}

/** stage: the helper starts first and waits (its start-up overlaps the staging), then the scratch is staged. */
async function stageInCell(life: CellLife): Promise<void> {
  const { spec, request, options } = life;
  const plan = life.plan!;
  const helper = await installHelper(life.prefix);
  if (options.signal?.aborted) throw new CancelledError('cancelled before the cell started');
  const rootless = process.getuid?.() !== 0;
  const personality = life.emulated ? undefined : nativePersonality(request.image.arch);
  life.running = startCell(plan, helper, {
    network: spec.network,
    userNamespace: rootless ? 'map-root' : 'none',
    ids: life.ids,
    tools: life.tools,
    ...(personality ? { personality } : {}),
    ...(request.stderrToStdout ? { stderrToStdout: true } : {}),
  });
  life.staged = await options.timer.timed('stage', async () =>
    stageCell(
      spec,
      plan,
      request.owner,
      // A root image is mounted only in the cell: staging reads its entries from the file.
      spec.rootImage ? await erofsLowerView(spec.rootImage.file, rootLookups(spec, plan)) : undefined,
    ),
  );
  if (options.signal?.aborted) throw new CancelledError('cancelled before the cell started');
}

/** run: the command, with the scratch records written while it runs (the engine only waits then). */
async function runInCell(life: CellLife): Promise<{ exitCode: number; signal?: number }> {
  const running = life.running!;
  running.go(life.spec.env);
  // The first thread-pool call also starts the thread pool, which costs a few ms: done meanwhile.
  life.records = writeScratchRecords(life.spec, life.plan!, cellOwnerFile(life.spec.cleanup));
  const outcome = await life.options.timer.timed('run', () => running.outcome);
  await life.records;
  if (life.options.signal?.aborted) throw new CancelledError('cancelled: every process of the cell was killed');
  life.succeeded = outcome.exitCode === 0;
  return outcome;
}

/** finalize: exports and write-back, then the caches (also after a failure), then the release. */
async function finalizeCell(life: CellLife): Promise<Finalized> {
  const { timed } = life.options.timer;
  const cellRoot = join(life.running!.viewRoot, life.plan!.layout.merged);
  if (life.succeeded && life.options.hooks?.whileAlive)
    await life.options.hooks.whileAlive({ root: cellRoot, plan: life.plan!, staged: life.staged! });
  try {
    return await copyOut(life, cellRoot);
  } finally {
    try {
      // Caches are synced back even when the command or an export failed (while the cell's view exists).
      await timed('cache', () => syncCaches(life.spec, life.plan!, cellRoot, life.request.owner));
    } finally {
      await releaseCell(life);
    }
  }
}

/** Exports, and the workspace written back whatever the command's exit code (like the caches). */
async function copyOut(life: CellLife, cellRoot: string): Promise<Finalized> {
  const { spec, request, plan } = life;
  const { timed } = life.options.timer;
  const exports = await timed('export', () =>
    copyExports(spec, cellRoot, life.destinations, life.succeeded, request.owner),
  );
  if (!request.writeBack) return { exports };
  const writtenBack = await timed('write-back', () =>
    writeBack(spec, plan!, life.staged!.workspaceCreated, cellRoot, {
      owner: request.owner,
      git: !!request.writeBackGit,
    }),
  );
  return { exports, writtenBack };
}

/** release: the helper exits, and the cell's namespaces and mounts go with it. */
async function releaseCell(life: CellLife): Promise<void> {
  const running = life.running!;
  await life.options.timer.timed('release', () => running.release());
  life.running = undefined;
  // Overlay work dirs (the kernel makes them mode 000) are only needed while mounted;
  // without them a kept scratch can be removed by its owner with a plain rm -rf.
  if (!scratchPreserved(life.spec.cleanup, life.succeeded)) return;
  const layout = life.plan!.layout;
  for (const work of [layout.work, layout.workspaceWork, ...life.spec.caches.map((_, i) => layout.cacheWork(i))])
    await removeScratch(work).catch(() => undefined);
}

/** clean up, on every path: whatever is left of the cell goes, the scratch as the policy says. */
async function cleanUpCell(life: CellLife): Promise<void> {
  if (life.running) {
    life.running.kill();
    await life.running.release().catch(() => undefined);
  }
  await life.records?.catch(() => undefined);
  await life.options.timer.timed('cleanup', async () => {
    if (life.cgroupDir) await removeCgroup(life.cgroupDir).catch(() => undefined);
    const emulation = life.emulated?.emulation;
    if (emulation?.binfmt === 'global') await removeGlobalRule(emulation.ruleName);
    if (!scratchPreserved(life.spec.cleanup, life.succeeded)) await removeScratch(life.scratch, life.ids);
  });
}

function cellResult(
  life: CellLife,
  outcome: { exitCode: number; signal?: number },
  finalized: Finalized,
): CellRunResult {
  const { emulated, request } = life;
  return {
    exitCode: outcome.exitCode,
    signal: outcome.signal,
    image: life.image,
    arch: request.image.arch.name,
    ...emulationReport(request),
    ...(emulated ? { emulation: describeEmulation(emulated), qemuCpu: emulated.cpu.model } : {}),
    scratch: life.scratch,
    scratchPreserved: scratchPreserved(life.spec.cleanup, life.succeeded),
    exports: finalized.exports,
    timings: life.options.timer.timings,
    ...(finalized.writtenBack ? { writeBack: finalized.writtenBack } : {}),
  };
}
