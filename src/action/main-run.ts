/**
 * The action's main step: inputs -> tools -> image cache -> build caches -> cell (directly as
 * root, or through sudo) -> exports, artifact, file commands -> caches saved -> outputs and
 * summary. One core.group per phase; the command's failure fails the step after caches and
 * outputs are saved.
 */
import * as core from '@actions/core';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkQemuCpu } from '../emulation/cpu.js';
import { decideEmulation, describeDecision, thirtyTwoBitNote } from '../emulation/native.js';
import { describeQemuChoice } from '../tools/pinned.js';
import { resolveDigest } from '../image/prepare.js';
import { newCellId, type CellRunResult, type QemuSelection } from '../engine.js';
import { which } from '../util/which.js';
import { runInMode } from '../engine-request.js';
import { choosePrivilege, needsOf, type Mode } from '../privilege/mode.js';
import { resolveTools } from '../tools/resolve.js';
import { EXIT_BUILD_CELL_ERROR, errorMessage } from '../util/errors.js';
import { rm } from 'node:fs/promises';
import { bestEffort } from './best-effort.js';
import { buildCacheKeys, imageCacheKey } from './cache-keys.js';
import { managedCacheDir, toCellRequest } from './cell-request.js';
import { forwardFileCommands, prepareFileCommands } from '../github/file-commands.js';
import { withCommandsStopped } from '../github/workflow-commands.js';
import { getInputs, unknownInputs, type ActionInputs } from './inputs.js';
import { restoreCache, saveCache } from './actions-cache.js';
import { uploadExports } from './artifact.js';
import { writeSummary, type ActionPhase, type SummaryData } from './summary.js';
import { STATE } from './state.js';
import { describeInstall, restoreInstall, saveInstall, type InstallCache } from './install-cache.js';
import { startActionSession } from './session.js';
import { gitWarning, skippedWarning } from '../cell/write-back.js';
import { phaseTimer } from '../util/timing.js';

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
  'artifact-id',
  'scratch-path',
] as const;
type Outputs = Map<(typeof OWN_OUTPUTS)[number], string>;

export async function runMain(): Promise<void> {
  let inputs: ActionInputs;
  try {
    inputs = getInputs();
  } catch (error) {
    core.setFailed(`build-cell: ${errorMessage(error)}`);
    return;
  }
  for (const name of unknownInputs()) core.warning(`build-cell does not know the input '${name}'; it is ignored`);

  const { timings, timed } = phaseTimer<ActionPhase>();
  const decision = decideEmulation(inputs.arch, inputs.emulation);
  const emulated = decision.emulated;
  if (inputs.qemuCpu && !emulated)
    core.warning(
      `qemu-cpu ${inputs.qemuCpu} is not used: ${inputs.arch.name} runs natively on this ${process.arch} host (emulation: qemu runs it under qemu)`,
    );
  const summary: SummaryData = {
    image: inputs.image.original,
    arch: inputs.arch.name,
    emulated,
    decision: describeDecision(inputs.arch, decision),
    imageCacheHit: false,
    timings,
    exports: [],
  };
  const runnerTemp = process.env.RUNNER_TEMP || '/tmp';
  const work = join(runnerTemp, 'build-cell');
  const uid = process.getuid?.() ?? 0;
  let mode: Mode | undefined;
  const outputs: Outputs = new Map();

  try {
    printConfiguration(inputs, emulated);
    core.info(`emulation: ${summary.decision}`);
    const note = thirtyTwoBitNote(inputs.arch, decision);
    if (note) core.info(note);
    const privilege = choosePrivilege(inputs.privilege, uid, 'privilege', needsOf(inputs.arch, inputs.emulation));
    mode = privilege.mode;
    summary.privilege = `${privilege.mode}: ${privilege.reason}`;
    core.info(`privilege: ${privilege.mode} (${privilege.reason})`);
    if (privilege.ids && !privilege.ids.uids) core.warning(`rootless cell: ${privilege.ids.note}`);
    core.saveState(STATE.mode, mode);
    let qemu: QemuSelection | undefined;
    // Through sudo, what the engine leaves on the host goes back to the runner user; rootless, it is the user's already.
    const owner = mode === 'sudo' ? { uid, gid: process.getgid?.() ?? uid } : undefined;

    await core.group('Tools', () =>
      timed('tools', async () => {
        // tools: pinned never takes qemu or umoci from PATH, so a runner's own (possibly broken) qemu is not used.
        const onPath =
          inputs.tools === 'pinned'
            ? (name: string) => (name === 'umoci' || /^qemu-/.test(name) ? undefined : which(name))
            : undefined;
        const tools = await resolveTools({
          qemu: emulated ? [inputs.arch] : [],
          qemuVersion: inputs.qemu,
          source: inputs.toolsSource,
          log: core.info,
          onPath,
        });
        for (const dir of tools.dirsToAddToPath) core.addPath(dir);
        if (emulated && inputs.qemu) {
          qemu = { path: tools.qemu[inputs.arch.qemu]!, choice: describeQemuChoice(inputs.qemu) };
          summary.qemu = qemu.choice;
        }
        // The CPU model is checked against the qemu just resolved, before any cache or image is touched.
        if (emulated && inputs.qemuCpu)
          await checkQemuCpu(inputs.qemuCpu, tools.qemu[inputs.arch.qemu]!, inputs.arch, 'qemu-cpu');
      }),
    );

    // The image: re-resolve a tag (one manifest request), then restore its layout by digest;
    // with an install step, first its derived image (a hit needs no base image at all).
    let digest: string | undefined;
    let imageKey: string | undefined;
    let imageCacheDir: string | undefined;
    let installCache: InstallCache | undefined;
    await core.group('Image cache', () =>
      timed('cache restore', async () => {
        if (!inputs.imageCache)
          return core.info('image-cache is false: not using the Actions cache for the image or the install step');
        const keyDigest =
          inputs.image.pinnedDigest ?? (digest = await resolveDigest(inputs.image, inputs.arch, inputs.registry));
        installCache = await restoreInstall(inputs, keyDigest, work);
        if (installCache?.hit) return;
        imageKey = imageCacheKey(inputs.arch, keyDigest);
        imageCacheDir = join(work, 'image-cache', imageKey);
        await mkdir(imageCacheDir, { recursive: true });
        const hit = await bestEffort('restoring the image from the Actions cache', () =>
          restoreCache([imageCacheDir!], imageKey!),
        );
        summary.imageCacheHit = hit === imageKey;
        core.info(
          summary.imageCacheHit
            ? `image layout restored from the Actions cache (${imageKey})`
            : `no cached layout for ${imageKey}`,
        );
      }),
    );

    const cacheDirs = inputs.caches.map((c, i) => c.host ?? managedCacheDir(runnerTemp, i, c.cell));
    const cacheKeys = buildCacheKeys({
      arch: inputs.arch,
      image: inputs.image.full,
      cellPaths: inputs.caches.map((c) => c.cell),
      userKey: inputs.cacheKey,
      runId: process.env.GITHUB_RUN_ID,
      runAttempt: process.env.GITHUB_RUN_ATTEMPT,
    });
    let cacheHit = false;
    if (cacheDirs.length) {
      await core.group('Build caches: restore', () =>
        timed('cache restore', async () => {
          for (const dir of cacheDirs) await mkdir(dir, { recursive: true });
          const matched = await bestEffort('restoring the build caches', () =>
            restoreCache(cacheDirs, cacheKeys.primary, cacheKeys.restoreKeys),
          );
          cacheHit = !!matched;
          core.info(matched ? `build caches restored from ${matched}` : 'no build cache entry yet');
        }),
      );
    }
    outputs.set('cache-hit', String(cacheHit));
    outputs.set('image-cache-hit', String(summary.imageCacheHit));

    const fileCommandsDir = join(work, `file-commands-${process.pid}`);
    await prepareFileCommands(fileCommandsDir);
    const request = {
      ...toCellRequest(inputs, {
        env: process.env,
        runnerTemp,
        fileCommandsDir,
        cacheDirs,
        owner,
        digest,
        imageCacheDir,
        installCacheDir: installCache?.dir,
        qemu,
      }),
      cellId: newCellId(),
    };
    core.saveState(STATE.scratch, join(inputs.stateDir, 'cells', request.cellId));
    core.saveState(STATE.cleanup, inputs.cleanup);
    core.saveState(STATE.work, work);

    if (inputs.session) core.saveState(STATE.session, inputs.session);
    // The cell's output (and the install cell's) is the step's log: the runner acts on no command in it.
    const outcome = await core.group('Run', () =>
      withCommandsStopped(() =>
        inputs.session
          ? startActionSession(inputs, request, mode!, work)
          : runInMode(request, mode!, work, join(dirname(fileURLToPath(import.meta.url)), 'cli.js')),
      ),
    );
    let result: CellRunResult | undefined;
    if (outcome.ok) {
      result = outcome.result;
      // image-digest is the base image's; with an install step, install-digest is what ran.
      summary.digest = result.install?.baseDigest ?? result.image.digest;
      summary.install = describeInstall(result.install, installCache);
      if (result.install) {
        outputs.set('install-cache-hit', String(!result.install.ran));
        outputs.set('install-digest', result.install.digest);
        timings.install = result.timings.install;
      }
      summary.exitCode = result.exitCode;
      summary.emulation = result.emulation;
      if (result.writeBack) {
        summary.writeBack = `${result.writeBack.written} written, ${result.writeBack.deleted} deleted${result.writeBack.skipped.length ? `, ${result.writeBack.skipped.length} not written (fifos, sockets, devices)` : ''}${result.writeBack.git.length ? `, ${result.writeBack.git.length} under .git not written` : ''}`;
        for (const path of result.writeBack.skipped) core.warning(skippedWarning(path));
        if (result.writeBack.git.length) core.warning(gitWarning(result.writeBack.git, 'write-back-git: true'));
      }
      summary.signal = result.signal;
      summary.exports = result.exports;
      timings.pull = (result.timings.resolve ?? 0) + (result.timings.pull ?? 0);
      timings.unpack = result.timings.unpack;
      timings.stage = result.timings.stage;
      timings.run = result.timings.run;
      timings.export = result.timings.export;
      timings['write-back'] = result.timings['write-back'];
      outputs.set('exit-code', String(result.exitCode));
      outputs.set('image-digest', summary.digest);
      if (result.scratchPreserved) outputs.set('scratch-path', result.scratch);
      if (result.exitCode === 0) core.saveState(STATE.outcome, 'success');
    } else {
      summary.error = outcome.error;
      outputs.set('exit-code', String(EXIT_BUILD_CELL_ERROR));
    }
    await passOnFileCommands(fileCommandsDir, inputs);

    // A session's exports, artifact and build caches are the post step's (when the session ends).
    if (!inputs.session && inputs.artifactName && result?.exports.length) {
      await core.group('Artifact', () =>
        timed('upload', async () => {
          const id = await uploadExports(
            inputs.artifactName!,
            result.exports.map((e) => e.destination),
            process.env.GITHUB_WORKSPACE || process.cwd(),
          );
          summary.artifact = { name: inputs.artifactName!, id };
          if (id !== undefined) outputs.set('artifact-id', String(id));
        }),
      );
    }

    await core.group('Caches: save', () =>
      timed('cache save', async () => {
        await saveInstall(installCache, result?.install);
        if (imageKey && imageCacheDir && result && !summary.imageCacheHit) {
          await bestEffort('saving the image to the Actions cache', () => saveCache([imageCacheDir!], imageKey!));
        }
        // Build caches are saved after failed commands too: the next run starts warmer.
        if (cacheDirs.length && !inputs.session && (outcome.ok || !outcome.cancelled)) {
          await bestEffort('saving the build caches', () => saveCache(cacheDirs, cacheKeys.primary));
        }
      }),
    );

    if (!outcome.ok) core.setFailed(`build-cell: ${outcome.error}`);
    else if (result && result.exitCode !== 0) {
      core.setFailed(
        result.signal
          ? `the command was killed by signal ${result.signal} (exit code ${result.exitCode})`
          : `the command exited with ${result.exitCode}`,
      );
    }
  } catch (error) {
    summary.error = errorMessage(error);
    outputs.set('exit-code', String(EXIT_BUILD_CELL_ERROR));
    core.setFailed(`build-cell: ${errorMessage(error)}`);
  } finally {
    for (const [name, value] of outputs) core.setOutput(name, value);
    await bestEffort('writing the job summary', () => writeSummary(summary));
  }
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
  core.endGroup();
}
