/**
 * The action's main step, as named phases (as actions/cache's restore and save):
 *   read      the inputs (a bad one fails the step, naming it, before anything runs)
 *   tools     the privilege mode; skopeo, umoci and the arch's qemu; the CPU model checked
 *   restore   the install step's derived image or the image, and the build caches: they
 *             download while the tools resolve, their logs held until the Tools group ends
 *   run       the cell (or a session's first), as root or through sudo, the runner's
 *             command processing stopped meanwhile
 *   publish   outputs and summary from the result, the cell's file commands passed on as
 *             forward-env and forward-path allow, the artifact
 *   save      what is new to the Actions cache (build caches after failed commands too)
 * The command's failure fails the step after caches are saved; build-cell's outputs and the
 * job summary are written last, whatever happened.
 */
import * as core from '@actions/core';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkQemuCpu } from '../emulation/cpu.js';
import { decideEmulation, describeDecision, thirtyTwoBitNote, type EmulationDecision } from '../emulation/native.js';
import { describeQemuChoice } from '../tools/pinned.js';
import { resolveDigest } from '../image/prepare.js';
import { newCellId, type CellRunResult, type QemuSelection } from '../engine.js';
import { which } from '../util/which.js';
import { runInMode, type EngineOutcome } from '../engine-entry.js';
import { choosePrivilege, needsOf, type Mode } from '../privilege/mode.js';
import { resolveMkfsErofs, resolveTools } from '../tools/resolve.js';
import { pinnedEntries, toolCacheRoot } from '../tools/pinned-entries.js';
import { EXIT_BUILD_CELL_ERROR, errorMessage } from '../util/errors.js';
import { rm } from 'node:fs/promises';
import { bestEffort } from './best-effort.js';
import { buildCaches, imageCacheKey } from './cache-keys.js';
import { toCellRequest } from './inputs-to-request.js';
import { forwardFileCommands, prepareFileCommands } from '../github/file-commands.js';
import { withCommandsStopped } from '../github/workflow-commands.js';
import { getInputs, unknownInputs, type ActionInputs } from './inputs.js';
import { holdsImage, restoreCache, saveCache } from './actions-cache.js';
import { uploadExports } from './artifact.js';
import { writeSummary, type ActionPhase, type SummaryData } from './summary.js';
import { describeCap } from '../store/cap-report.js';
import { STATE } from './state.js';
import { describeInstall, installSource, restoreInstall, saveInstall, type InstallCache } from './install-cache.js';
import { decideInstallPush } from './install-push.js';
import { describeTools, restoreTools, saveTools, type ToolsCache } from './tools-cache.js';
import { startActionSession } from './session.js';
import { gitWarning, skippedWarning } from '../write-back/workspace.js';
import { phaseTimer } from '../util/timing.js';
import { holdLog } from './held-log.js';

/**
 * The outputs build-cell sets (action.yml declares each). The cell's GITHUB_OUTPUT may not set
 * them, and build-cell writes its values after the cell's: the runner keeps the last one.
 */
export const OWN_OUTPUTS = [
  'exit-code',
  'image-digest',
  'image-cache-hit',
  'cache-hit',
  'install-digest',
  'install-cache-hit',
  'install-source',
  'artifact-id',
  'scratch-path',
] as const;
type Outputs = Map<(typeof OWN_OUTPUTS)[number], string>;

/** What the main step's phases share: its inputs, what each phase found or made, the report. */
interface MainRun {
  inputs: ActionInputs;
  timer: ReturnType<typeof phaseTimer<ActionPhase>>;
  summary: SummaryData;
  /** build-cell's outputs, set last (after the cell's GITHUB_OUTPUT). */
  outputs: Outputs;
  decision: EmulationDecision;
  runnerTemp: string;
  work: string;
  mode?: Mode;
  owner?: { uid: number; gid: number };
  qemu?: QemuSelection;
  /** The tag's digest, when the action resolved it for the cache key. */
  digest?: string;
  image?: { key: string; dir: string };
  installCache?: InstallCache;
  toolsCache?: ToolsCache;
  caches: { dirs: string[]; primary: string; restoreKeys: string[] };
  fileCommandsDir: string;
}

/** The main step: read -> tools -> restore -> run -> publish -> save; one core.group per phase. */
export async function runMain(): Promise<void> {
  const inputs = readInputs();
  if (!inputs) return;
  const run = startRun(inputs);
  try {
    choosePrivilegeFor(run);
    await toolsAndRestores(run);
    const outcome = await runCell(run);
    const result = await publish(run, outcome);
    await core.group('Caches: save', () => run.timer.timed('cache save', () => saveCaches(run, outcome, result)));
    failOn(outcome);
  } catch (error) {
    run.summary.error = errorMessage(error);
    run.outputs.set('exit-code', String(EXIT_BUILD_CELL_ERROR));
    core.setFailed(`build-cell: ${errorMessage(error)}`);
  } finally {
    for (const [name, value] of run.outputs) core.setOutput(name, value);
    await bestEffort('writing the job summary', () => writeSummary(run.summary));
  }
}

/** The inputs, or undefined (the step failed, naming the input) when one is bad. */
function readInputs(): ActionInputs | undefined {
  try {
    const inputs = getInputs();
    for (const name of unknownInputs()) core.warning(`build-cell does not know the input '${name}'; it is ignored`);
    return inputs;
  } catch (error) {
    core.setFailed(`build-cell: ${errorMessage(error)}`);
    return undefined;
  }
}

/** The run's shared state, and what the log says before anything runs: the configuration, native or qemu. */
function startRun(inputs: ActionInputs): MainRun {
  const timer = phaseTimer<ActionPhase>();
  const decision = decideEmulation(inputs.arch, inputs.emulation);
  if (inputs.qemuCpu && !decision.emulated)
    core.warning(
      `qemu-cpu ${inputs.qemuCpu} is not used: ${inputs.arch.name} runs natively on this ${process.arch} host (emulation: qemu runs it under qemu)`,
    );
  const runnerTemp = process.env.RUNNER_TEMP || '/tmp';
  const work = join(runnerTemp, 'build-cell');
  const summary: SummaryData = {
    image: inputs.image.original,
    arch: inputs.arch.name,
    emulated: decision.emulated,
    decision: describeDecision(inputs.arch, decision),
    imageCacheHit: false,
    timings: timer.timings,
    exports: [],
  };
  printConfiguration(inputs, decision.emulated);
  core.info(`emulation: ${summary.decision}`);
  const note = thirtyTwoBitNote(inputs.arch, decision);
  if (note) core.info(note);
  return {
    inputs,
    timer,
    summary,
    outputs: new Map(),
    decision,
    runnerTemp,
    work,
    caches: buildCaches(inputs, runnerTemp),
    fileCommandsDir: join(work, `file-commands-${process.pid}`),
  };
}

function choosePrivilegeFor(run: MainRun): void {
  const { inputs } = run;
  const uid = process.getuid?.() ?? 0;
  const privilege = choosePrivilege(inputs.privilege, uid, 'privilege', needsOf(inputs.arch, inputs.emulation));
  run.mode = privilege.mode;
  run.summary.privilege = `${privilege.mode}: ${privilege.reason}`;
  core.info(`privilege: ${privilege.mode} (${privilege.reason})`);
  if (privilege.ids && !privilege.ids.uids) core.warning(`rootless cell: ${privilege.ids.note}`);
  core.saveState(STATE.mode, privilege.mode);
  // Through sudo, what the engine leaves on the host goes back to the runner user; rootless, it is the user's already.
  if (privilege.mode === 'sudo') run.owner = { uid, gid: process.getgid?.() ?? uid };
}

/** skopeo, umoci and the qemu the arch needs; the CPU model checked against that qemu before any cache or image. */
async function resolveStepTools(run: MainRun): Promise<void> {
  const { inputs } = run;
  const emulated = run.decision.emulated;
  const onPath = pathLookup(inputs);
  const qemu = emulated ? [inputs.arch] : [];
  // A fresh runner's tool cache is empty: the Actions cache carries the pinned downloads.
  // mkfs.erofs makes the images a fresh runner mounts: for the Actions cache, and for install-registry's pushes.
  const mkfsErofs = inputs.imageCache || !!inputs.install?.registry;
  const entries = pinnedEntries({ qemu, qemuVersion: inputs.qemu, mkfsErofs }, toolCacheRoot());
  run.toolsCache = await restoreTools(entries, onPath, run.work);
  if (run.toolsCache) run.summary.tools = describeTools(run.toolsCache);
  const tools = await resolveTools({
    qemu,
    qemuVersion: inputs.qemu,
    source: inputs.toolsSource,
    log: core.info,
    onPath,
  });
  for (const dir of tools.dirsToAddToPath) core.addPath(dir);
  if (mkfsErofs) await addMkfsErofs(inputs, onPath);
  if (emulated && inputs.qemu) {
    run.qemu = { path: tools.qemu[inputs.arch.qemu]!, choice: describeQemuChoice(inputs.qemu) };
    run.summary.qemu = run.qemu.choice;
  }
  if (emulated && inputs.qemuCpu)
    await checkQemuCpu(inputs.qemuCpu, tools.qemu[inputs.arch.qemu]!, inputs.arch, 'qemu-cpu');
}

/**
 * Which tools the job takes from PATH: all it finds there, but with `tools: pinned` never
 * umoci, qemu or mkfs.erofs (a runner's own, possibly broken, qemu is not used). One rule for
 * the Actions cache's tools restore and the resolves alike.
 */
function pathLookup(inputs: ActionInputs): (name: string) => string | undefined {
  if (inputs.tools !== 'pinned') return (name) => which(name);
  return (name) => (name === 'umoci' || name === 'mkfs.erofs' || /^qemu-/.test(name) ? undefined : which(name));
}

/**
 * mkfs.erofs on PATH, for the engine to save images as EROFS images (a fresh runner mounts
 * them): best effort, since without it images are saved as their layouts, as before.
 */
async function addMkfsErofs(inputs: ActionInputs, onPath: (name: string) => string | undefined): Promise<void> {
  try {
    const found = await resolveMkfsErofs({ source: inputs.toolsSource, log: core.info, onPath });
    if (found.dir) core.addPath(found.dir);
  } catch (error) {
    core.info(
      `mkfs.erofs is not available (${errorMessage(error)}): images are saved to the Actions cache (and pushed to install-registry) as their layouts only`,
    );
  }
}

/**
 * The image: re-resolve a tag (one manifest request), then restore its layout by digest; with
 * an install step, first its derived image (a hit needs no base image at all).
 */
async function restoreImage(run: MainRun): Promise<void> {
  const { inputs, summary } = run;
  if (!inputs.imageCache)
    return core.info('image-cache is false: not using the Actions cache for the image or the install step');
  const keyDigest =
    inputs.image.pinnedDigest ?? (run.digest = await resolveDigest(inputs.image, inputs.arch, inputs.registry));
  run.installCache = await restoreInstall(inputs, keyDigest, run.work);
  if (run.installCache?.hit) return;
  const key = imageCacheKey(inputs.arch, keyDigest);
  const dir = join(run.work, 'image-cache', key);
  run.image = { key, dir };
  await mkdir(dir, { recursive: true });
  const hit = await bestEffort('restoring the image from the Actions cache', () => restoreCache([dir], key));
  summary.imageCacheHit = hit === key;
  core.info(summary.imageCacheHit ? `image restored from the Actions cache (${key})` : `no cached image for ${key}`);
}

/**
 * The tools, with the image's cache entry (the bulk of a fresh runner's download) and the build
 * caches downloading meanwhile: their logs are held and printed after the Tools group, in order.
 */
async function toolsAndRestores(run: MainRun): Promise<void> {
  const image = holdLog(() => restoreImage(run));
  const caches = holdLog(() => restoreBuildCaches(run));
  // One phase time for the two restores side by side: from their start until the later one ends.
  const restored = run.timer.timed('cache restore', () => Promise.allSettled([image.done, caches.done]));
  try {
    await core.group('Tools', () => run.timer.timed('tools', () => resolveStepTools(run)));
  } catch (error) {
    await Promise.allSettled([image.release(), caches.release()]);
    throw error;
  }
  await core.group('Image cache', () => image.release());
  await caches.release();
  await restored;
  run.outputs.set('image-cache-hit', String(run.summary.imageCacheHit));
}

async function restoreBuildCaches(run: MainRun): Promise<void> {
  const { dirs, primary, restoreKeys } = run.caches;
  let hit = false;
  if (dirs.length) {
    await core.group('Build caches: restore', async () => {
      for (const dir of dirs) await mkdir(dir, { recursive: true });
      const matched = await bestEffort('restoring the build caches', () => restoreCache(dirs, primary, restoreKeys));
      hit = !!matched;
      core.info(matched ? `build caches restored from ${matched}` : 'no build cache entry yet');
    });
  }
  run.outputs.set('cache-hit', String(hit));
}

/** The cell (a session's first), directly or through sudo, with the runner's command processing stopped. */
async function runCell(run: MainRun): Promise<EngineOutcome> {
  const { inputs, work } = run;
  await prepareFileCommands(run.fileCommandsDir);
  const request = {
    ...toCellRequest(inputs, {
      env: process.env,
      runnerTemp: run.runnerTemp,
      fileCommandsDir: run.fileCommandsDir,
      cacheDirs: run.caches.dirs,
      owner: run.owner,
      digest: run.digest,
      imageCacheDir: run.image?.dir,
      installCacheDir: run.installCache?.dir,
      qemu: run.qemu,
      installPush: installPushFor(inputs),
    }),
    cellId: newCellId(),
  };
  core.saveState(STATE.scratch, join(inputs.stateDir, 'cells', request.cellId));
  core.saveState(STATE.cleanup, inputs.cleanup);
  core.saveState(STATE.work, work);
  if (inputs.session) core.saveState(STATE.session, inputs.session);
  // The cell's output (and the install cell's) is the step's log: the runner acts on no command in it.
  return core.group('Run', () =>
    withCommandsStopped(() =>
      inputs.session
        ? startActionSession(inputs, request, run.mode!, work)
        : runInMode(request, run.mode!, join(dirname(fileURLToPath(import.meta.url)), 'cli.js')),
    ),
  );
}

/** Whether this job pushes to install-registry, said in the log. */
function installPushFor(inputs: ActionInputs): boolean {
  if (!inputs.install?.registry) return false;
  const { push, why } = decideInstallPush(inputs, process.env);
  core.info(
    `install-registry ${inputs.install.registry.repository}: ${push ? 'pushes' : 'no push'} after an install that runs (${why})`,
  );
  return push;
}

/** The result into outputs and the summary, the cell's file commands passed on, the artifact uploaded. */
async function publish(run: MainRun, outcome: EngineOutcome): Promise<CellRunResult | undefined> {
  if (outcome.ok) report(run, outcome.result);
  else {
    run.summary.error = outcome.error;
    run.outputs.set('exit-code', String(EXIT_BUILD_CELL_ERROR));
  }
  await passOnFileCommands(run.fileCommandsDir, run.inputs);
  const result = outcome.ok ? outcome.result : undefined;
  // A session's exports, artifact and build caches are the post step's (when the session ends).
  if (!run.inputs.session && run.inputs.artifactName && result?.exports.length)
    await core.group('Artifact', () => run.timer.timed('upload', () => uploadArtifact(run, result)));
  return result;
}

/** What the cell's result says, as outputs, summary rows and timings. */
function report(run: MainRun, result: CellRunResult): void {
  const { summary, outputs } = run;
  const timings = run.timer.timings;
  // image-digest is the base image's; with an install step, install-digest is what ran.
  summary.digest = result.install?.baseDigest ?? result.image.digest;
  summary.install = describeInstall(result.install, run.installCache);
  if (result.install) {
    outputs.set('install-cache-hit', String(!result.install.ran));
    outputs.set('install-digest', result.install.digest);
    outputs.set('install-source', installSource(result.install));
    for (const warning of result.install.warnings ?? []) core.warning(warning);
    timings.install = result.timings.install;
  }
  // A fresh runner's image: mounted from its EROFS image, or extracted, and why.
  if (result.image.how) {
    summary.imageRestore = result.image.how;
    core.info(`image: ${result.image.how}`);
  }
  for (const warning of result.image.warnings ?? []) core.warning(warning);
  if (result.store) {
    summary.storeCap = describeCap(result.store);
    if (result.store.warning) core.warning(result.store.warning);
    else core.info(summary.storeCap);
  }
  summary.exitCode = result.exitCode;
  summary.emulation = result.emulation;
  if (result.writeBack) reportWriteBack(summary, result.writeBack);
  summary.signal = result.signal;
  summary.exports = result.exports;
  timings.pull = (result.timings.resolve ?? 0) + (result.timings.pull ?? 0);
  for (const phase of ['unpack', 'stage', 'run', 'export', 'write-back'] as const)
    timings[phase] = result.timings[phase];
  outputs.set('exit-code', String(result.exitCode));
  outputs.set('image-digest', summary.digest);
  if (result.scratchPreserved) outputs.set('scratch-path', result.scratch);
  if (result.exitCode === 0) core.saveState(STATE.outcome, 'success');
}

function reportWriteBack(summary: SummaryData, writeBack: NonNullable<CellRunResult['writeBack']>): void {
  summary.writeBack = `${writeBack.written} written, ${writeBack.deleted} deleted${writeBack.skipped.length ? `, ${writeBack.skipped.length} not written (fifos, sockets, devices)` : ''}${writeBack.git.length ? `, ${writeBack.git.length} under .git not written` : ''}`;
  for (const path of writeBack.skipped) core.warning(skippedWarning(path));
  if (writeBack.git.length) core.warning(gitWarning(writeBack.git, 'write-back-git: true'));
}

async function uploadArtifact(run: MainRun, result: CellRunResult): Promise<void> {
  const name = run.inputs.artifactName!;
  const destinations = result.exports.map((e) => e.destination);
  const id = await uploadExports(name, destinations, process.env.GITHUB_WORKSPACE || process.cwd());
  run.summary.artifact = { name, id };
  if (id !== undefined) run.outputs.set('artifact-id', String(id));
}

/** The tools, the install step's and the image's layouts when new, and the build caches (after failed commands too). */
async function saveCaches(run: MainRun, outcome: EngineOutcome, result: CellRunResult | undefined): Promise<void> {
  await saveTools(run.toolsCache);
  await saveInstall(run.installCache, result?.install);
  const image = run.image;
  if (image && result && !run.summary.imageCacheHit && holdsImage(image.dir))
    await bestEffort('saving the image to the Actions cache', () => saveCache([image.dir], image.key));
  // Build caches are saved after failed commands too: the next run starts warmer.
  const { dirs, primary } = run.caches;
  if (dirs.length && !run.inputs.session && (outcome.ok || !outcome.cancelled))
    await bestEffort('saving the build caches', () => saveCache(dirs, primary));
}

/** A build-cell error or a failed command fails the step, after everything above is done. */
function failOn(outcome: EngineOutcome): void {
  if (!outcome.ok) return core.setFailed(`build-cell: ${outcome.error}`);
  const result = outcome.result;
  if (result.exitCode === 0) return;
  core.setFailed(
    result.signal
      ? `the command was killed by signal ${result.signal} (exit code ${result.exitCode})`
      : `the command exited with ${result.exitCode}`,
  );
}

/** What the cell wrote to its file commands, as forward-env and forward-path allow; what is dropped, in one warning. */
async function passOnFileCommands(dir: string, inputs: ActionInputs): Promise<void> {
  const forwarded = await bestEffort('forwarding GITHUB_OUTPUT/ENV/PATH/STEP_SUMMARY from the cell', () =>
    forwardFileCommands(dir, process.env, {
      env: inputs.forwardEnv,
      path: inputs.forwardPath,
      reservedOutputs: OWN_OUTPUTS,
    }),
  );
  if (forwarded?.warning) core.warning(forwarded.warning);
  await rm(dir, { recursive: true, force: true }).catch(() => undefined);
}

function printConfiguration(inputs: ActionInputs, emulated: boolean): void {
  core.startGroup('build-cell configuration');
  const show = (name: string, value: string) => core.info(`${name.padEnd(18)} ${value}`);
  show('image', inputs.image.full);
  show('arch', `${inputs.arch.name}${emulated ? ' (emulated)' : ''}`);
  if (inputs.qemuCpu)
    show(
      'qemu cpu',
      emulated ? inputs.qemuCpu : `${inputs.qemuCpu} (not used: ${inputs.arch.name} runs natively here)`,
    );
  show(
    'command',
    inputs.command.kind === 'script'
      ? `script with ${inputs.command.shell}`
      : inputs.command.kind === 'argv'
        ? JSON.stringify(inputs.command.argv)
        : '(none)',
  );
  if (inputs.session)
    show(
      'session',
      `${inputs.session} (later steps: shell: build-cell${inputs.session === 'default' ? '' : ` --session ${inputs.session}`} {0})`,
    );
  show('workspace', `${inputs.workspace ?? '(empty)'} -> ${inputs.workspacePath}`);
  show('working directory', inputs.workingDirectory);
  show('env', inputs.env.map(([k]) => k).join(' ') || '(none)');
  show('imports', inputs.imports.map((m) => `${m.host}:${m.cell}`).join(' ') || '(none)');
  show('caches', inputs.caches.map((m) => m.cell).join(' ') || '(none)');
  show('exports', inputs.exports.map((m) => `${m.cell}:${m.host}`).join(' ') || '(none)');
  show('forward-env', `${inputs.forwardEnv.join(' ') || '(none)'}; forward-path: ${inputs.forwardPath}`);
  show('network', inputs.network);
  show('limits', JSON.stringify(inputs.limits));
  show('cleanup', inputs.cleanup);
  show('state dir', inputs.stateDir);
  show('registry', inputs.registry.username ? `as ${inputs.registry.username}` : 'anonymous');
  const installRegistry = inputs.install?.registry;
  if (installRegistry)
    show('install registry', `${installRegistry.repository} (install-push: ${installRegistry.push})`);
  core.endGroup();
}
