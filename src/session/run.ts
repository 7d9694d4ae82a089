/**
 * Starting a session, running a step in it, ending it. Each step is an ordinary cell over the
 * session's root layer (cell/plan.ts persistentUpper): files, installed packages and /root
 * dotfiles carry over from step to step, processes do not. The workspace is the live host
 * directory, written back after each step. The end copies the exports out of a last cell over
 * the same state, then removes the root layer as the cleanup policy says.
 */
import { rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { lazyChildProcess } from '../util/builtins.js';
import { resolveArch } from '../emulation/arch.js';
import type { CellRequest } from '../engine.js';
import { runInMode, type EngineOutcome } from '../engine-entry.js';
import { installReference } from '../install/key.js';
import { probeUserns } from '../privilege/userns.js';
import { removeScratch } from '../cell/stage.js';
import { scriptCommand, scratchPreserved, type CellToHost, type HostToCell } from '../cellspec/types.js';
import { CellSetupError } from '../util/errors.js';
import { sessionFile, writeSession, type SessionState } from './state.js';
import { join } from 'node:path';
import { covers } from '../cellspec/paths.js';

/** The CLI that runs a step's engine request as root (through sudo). */
export interface Runner {
  cli: string;
  /** The cells' output is a runner step's log: their stderr goes to stdout, one ordered stream (see github/workflow-commands.ts). */
  runnerLog?: boolean;
}

export interface StartOptions {
  sessions: string;
  name: string;
  mode: SessionState['mode'];
  root: SessionState['root'];
  shell: SessionState['shell'];
  /** The first cell: its spec is the session's; without `run`, only the image is prepared. */
  request: CellRequest;
  run: boolean;
  /** Destinations of caches that belong to the first cell only (the action's file-command directory). */
  firstCellOnly?: string[];
  /** What the runner steps' file commands may pass on to later steps (the action's forward-env and forward-path). */
  forward?: SessionState['forward'];
}

/** Start a session: prepare its image (and install step), run the first command if any, record it. */
export async function startSession(
  options: StartOptions,
  runner: Runner,
): Promise<{ state: SessionState; outcome: EngineOutcome }> {
  const { request } = options;
  const spec = request.spec;
  const state: SessionState = {
    format: 1,
    name: options.name,
    mode: options.mode,
    stateDir: request.stateDir,
    owner: request.owner,
    image: { ref: request.image.ref, arch: request.image.arch.name, digest: request.image.digest ?? '' },
    workspace: spec.workspaceSeed.kind === 'snapshot' ? spec.workspaceSeed.path : undefined,
    workspacePath: spec.workspacePath,
    cwd: spec.command.cwd,
    shell: options.shell,
    imports: spec.imports,
    caches: spec.caches.filter((c) => !options.firstCellOnly?.includes(c.destination)),
    ...(spec.tmpfs ? { tmpfs: spec.tmpfs } : {}),
    network: spec.network,
    limits: spec.limits,
    cleanup: spec.cleanup,
    root: options.root,
    failed: false,
    ...(request.qemuCpu ? { qemuCpu: request.qemuCpu } : {}),
    ...(request.emulation && request.emulation !== 'auto' ? { emulation: request.emulation } : {}),
    ...(request.qemu ? { qemu: request.qemu } : {}),
    ...(request.writeBackGit ? { writeBackGit: true } : {}),
    ...(options.forward ? { forward: options.forward } : {}),
  };
  // Written first, by the invoking user: the directory is theirs (the engine, root through sudo, only adds the root layer).
  writeSession(options.sessions, state);
  const outcome = await runInMode(
    {
      ...request,
      rootLayer: options.root.upper,
      writeBack: state.workspace !== undefined,
      prepareOnly: !options.run,
      ...(runner.runnerLog ? { stderrToStdout: true } : {}),
    },
    options.mode,
    runner.cli,
  );
  if (outcome.ok) {
    const { result } = outcome;
    state.image = {
      ref: result.install ? installReference(result.install.hash) : request.image.ref,
      arch: request.image.arch.name,
      digest: result.image.digest,
    };
    if (options.run && result.exitCode !== 0) state.failed = true;
    writeSession(options.sessions, state);
  } else {
    // No session without its image: nothing of it is left.
    await removeRootLayer(state).catch(() => undefined);
    await rm(join(options.sessions, options.name), { recursive: true, force: true });
  }
  return { state, outcome };
}

export interface Step {
  /** A script (run with the session's shell) or an argv. */
  command: { script: string } | { argv: string[] };
  env: Array<[string, string]>;
  /** More caches for this step only (the file-command directory of a runner step). */
  caches?: HostToCell[];
  exports?: CellToHost[];
}

/** The cell request of a step: the session's spec over its root layer, on its image (no pull, no install). */
export function stepRequest(state: SessionState, step: Step, runner?: Runner): CellRequest {
  const command =
    'script' in step.command
      ? { cwd: state.cwd, ...scriptCommand(state.shell) }
      : { cwd: state.cwd, executable: step.command.argv[0]!, argv: step.command.argv.slice(1) };
  return {
    stateDir: state.stateDir,
    owner: state.owner,
    inheritImageEnv: true,
    ...(state.qemuCpu ? { qemuCpu: state.qemuCpu } : {}),
    ...(state.emulation ? { emulation: state.emulation } : {}),
    ...(state.qemu ? { qemu: state.qemu } : {}),
    image: {
      ref: state.image.ref,
      arch: resolveArch(state.image.arch),
      pull: 'never',
      registry: { tlsVerify: true },
      digest: state.image.digest,
    },
    spec: {
      workspacePath: state.workspacePath,
      workspaceSeed: state.workspace ? { kind: 'snapshot', path: state.workspace } : { kind: 'empty' },
      imports: state.imports,
      caches: [...state.caches, ...(step.caches ?? [])],
      exports: step.exports ?? [],
      ...(state.tmpfs ? { tmpfs: state.tmpfs } : {}),
      command,
      env: step.env,
      network: state.network,
      limits: state.limits,
      cleanup: state.cleanup,
      ...('script' in step.command ? { script: step.command.script } : {}),
    },
    rootLayer: state.root.upper,
    writeBack: state.workspace !== undefined,
    ...(state.writeBackGit ? { writeBackGit: true } : {}),
    ...(runner?.runnerLog ? { stderrToStdout: true } : {}),
  };
}

/** Run one step; the session records a failure (the end's cleanup policy and exports use it). */
export async function runStep(
  sessions: string,
  state: SessionState,
  step: Step,
  runner: Runner,
): Promise<EngineOutcome> {
  const outcome = await runInMode(stepRequest(state, step, runner), state.mode, runner.cli);
  if (!state.failed && (!outcome.ok || outcome.result.exitCode !== 0))
    writeSession(sessions, { ...state, failed: true });
  return outcome;
}

/**
 * End a session: exports (from a last cell over its state; a missing one is an error only if
 * no step failed), then the root layer removed unless the cleanup policy keeps it.
 */
export async function endSession(
  sessions: string,
  state: SessionState,
  exports: CellToHost[],
  runner: Runner,
): Promise<{ outcome?: EngineOutcome; kept: boolean }> {
  let outcome: EngineOutcome | undefined;
  if (exports.length) {
    // `false` after a failed step: the engine then tolerates a missing export, as after a failed command.
    const request = stepRequest(
      state,
      { command: { argv: [state.failed ? 'false' : 'true'] }, env: [], exports },
      runner,
    );
    outcome = await runInMode(
      { ...request, writeBack: false, spec: { ...request.spec, cleanup: 'always' } },
      state.mode,
      runner.cli,
    );
  }
  const kept = scratchPreserved(state.cleanup, !state.failed);
  if (!kept) await removeRootLayer(state);
  const dir = join(sessions, state.name);
  // A kept root layer inside the session's own directory (the CLI's) stays; the session ends either way.
  await rm(kept && covers(dir, state.root.dir) ? sessionFile(sessions, state.name) : dir, {
    recursive: true,
    force: true,
  });
  return { outcome, kept };
}

/** The root layer belongs to root in sudo mode, and may hold subordinate ids' files rootless. */
export async function removeRootLayer(state: SessionState): Promise<void> {
  if (state.mode === 'sudo' && process.getuid?.() !== 0) {
    const result = lazyChildProcess().spawnSync('sudo', ['-n', 'rm', '-rf', '--', state.root.dir], {
      encoding: 'utf8',
    });
    if (result.status !== 0)
      throw new CellSetupError(
        `cannot remove the session's root layer ${state.root.dir}: ${(result.stderr || '').trim() || `sudo rm exited with ${result.status}`}`,
      );
    return;
  }
  if (state.mode === 'rootless') return removeScratch(state.root.dir, probeUserns().ids);
  rmSync(state.root.dir, { recursive: true, force: true });
}
