/**
 * The session commands: `build-cell session start|exec|end` for a terminal (a multi-step CI
 * job reproduced locally), and `session step`, what the runner runs for `shell: build-cell {0}`
 * (through the shim the action's main step puts on PATH). Each exits with the step's command's
 * exit code (128+N for a signal); build-cell's own errors are 125, through the CLI's main.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { reportInstall } from './report-install.js';
import { constants, tmpdir } from 'node:os';
import {
  FILE_COMMANDS,
  FILE_COMMANDS_CELL_DIR,
  forwardFileCommands,
  prepareFileCommands,
} from '../github/file-commands.js';
import { warningCommand, withCommandsStopped } from '../github/workflow-commands.js';
import type { CellRunResult } from '../engine.js';
import type { EngineOutcome } from '../engine-entry.js';
import { choosePrivilege, needsOf } from '../privilege/mode.js';
import { CellSetupError, UserError } from '../util/errors.js';
import type { CliCommand } from './args.js';
import { parseEnviron, stepEnvironment } from '../session/env.js';
import { gitWarning, skippedWarning } from '../write-back/workspace.js';
import { endSession, runStep, startSession } from '../session/run.js';
import { readSession } from '../session/state.js';

import { cellRequest } from './command-to-request.js';
import { writeResultFile } from './result-file.js';

type SessionCommand = Extract<CliCommand, { kind: `session-${string}` }>;

const START_HINT = 'start one with `build-cell session start`';
const STEP_HINT =
  'start one in an earlier step of this job: `uses: metalor/build-cell@v1` with `session: true` (or `session: NAME`, then `shell: build-cell --session NAME {0}`)';

export async function runSessionCommand(command: SessionCommand, log: (m: string) => void): Promise<number> {
  // The CLI that runs the engine as root in sudo mode: this one.
  const cli = process.argv[1]!;
  switch (command.kind) {
    case 'session-start': {
      const sessions = join(command.stateDir, 'sessions');
      const dir = join(sessions, command.name);
      const privilege = choosePrivilege(
        command.privilege,
        process.getuid?.() ?? 0,
        '--privilege',
        needsOf(command.image.arch, command.emulation),
      );
      log(`privilege ${privilege.mode} (${privilege.reason})`);
      const owner = privilege.mode === 'sudo' ? { uid: process.getuid!(), gid: process.getgid!() } : undefined;
      const { state, outcome } = await startSession(
        {
          sessions,
          name: command.name,
          mode: privilege.mode,
          shell: 'sh',
          run: command.run,
          root: { dir, upper: join(dir, 'upper') },
          request: await cellRequest(command, owner, log),
        },
        { cli },
      );
      if (outcome.ok && outcome.result.install) reportInstall(outcome.result.install, log);
      const code = finish(outcome);
      process.stderr.write(
        `build-cell: session ${state.name} started (image ${state.image.digest}); run steps with: build-cell session exec --name ${state.name} --run '...'\n`,
      );
      return code;
    }
    case 'session-exec': {
      const sessions = join(command.stateDir, 'sessions');
      const state = readSession(sessions, command.name, START_HINT);
      const outcome = await runStep(sessions, state, { command: command.command, env: command.env }, { cli });
      if (command.resultFile && outcome.ok)
        await writeResultFile(command.resultFile, outcome.result, {
          mode: state.mode,
          reason: `the mode session ${state.name} started in`,
        });
      return finish(outcome);
    }
    case 'session-end': {
      const sessions = join(command.stateDir, 'sessions');
      const state = readSession(sessions, command.name, START_HINT);
      const { outcome, kept } = await endSession(sessions, state, command.exports, { cli });
      if (outcome && !outcome.ok) throw new CellSetupError(outcome.error);
      if (kept)
        process.stderr.write(
          `build-cell: session ${state.name} ended; its root layer is kept at ${state.root.dir} (cleanup: ${state.cleanup})\n`,
        );
      return 0;
    }
    case 'session-step':
      return runnerStep(command);
  }
}

/** A runner step: its script file, its environment less the runner's, its own file commands. */
async function runnerStep(command: Extract<SessionCommand, { kind: 'session-step' }>): Promise<number> {
  const state = readSession(command.sessions, command.name, STEP_HINT);
  let script: string;
  try {
    script = readFileSync(command.script, 'utf8');
  } catch (error) {
    throw new UserError('script', `cannot read the step's script ${command.script}: ${(error as Error).message}`);
  }
  // Outside the state dir (a cache source may not lie in it), owner-only (mkdtemp), removed after the step.
  const fileCommands = mkdtempSync(join(process.env.RUNNER_TEMP || tmpdir(), 'build-cell-step-'));
  try {
    await prepareFileCommands(fileCommands);
    let machine: Record<string, string> = {};
    try {
      machine = parseEnviron(readFileSync(`/proc/${process.ppid}/environ`, 'utf8'));
    } catch {
      machine = {};
    }
    const env: Array<[string, string]> = [
      ...stepEnvironment(process.env, machine).filter(
        ([name]) => !(name in FILE_COMMANDS) && name !== 'GITHUB_WORKSPACE',
      ),
      ['GITHUB_WORKSPACE', state.workspacePath],
      ...Object.entries(FILE_COMMANDS).map(([name, file]): [string, string] => [
        name,
        `${FILE_COMMANDS_CELL_DIR}/${file}`,
      ]),
    ];
    // The step's log is the cell's output: the runner acts on no command in it.
    const outcome = await withCommandsStopped(() =>
      runStep(
        command.sessions,
        state,
        {
          command: { script },
          env,
          caches: [{ source: fileCommands, destination: FILE_COMMANDS_CELL_DIR }],
        },
        { cli: process.argv[1]!, runnerLog: true },
      ),
    );
    // What the step's script wrote to GITHUB_OUTPUT and the others reaches this step's own files, as the session allows.
    const forwarded = await forwardFileCommands(fileCommands, process.env, {
      env: state.forward?.env ?? [],
      path: state.forward?.path ?? false,
    });
    if (forwarded.warning) annotate(forwarded.warning);
    return finish(outcome, annotate, 'write-back-git: true in the step that started the session');
  } finally {
    rmSync(fileCommands, { recursive: true, force: true });
  }
}

/** A warning in a runner step's log, as an annotation (escaped: a path the cell chose is one line of data). */
const annotate = (message: string) => {
  process.stdout.write(warningCommand(message));
};
const toStderr = (message: string) => {
  process.stderr.write(`build-cell: warning: ${message}\n`);
};

/** The step's exit code; its warnings; build-cell's own failure thrown (exit 125 from main). */
function finish(outcome: EngineOutcome, warn = toStderr, gitOptIn = '--write-back-git at the session start'): number {
  if (!outcome.ok) {
    if (outcome.cancelled) {
      process.stderr.write('build-cell: cancelled: the cell was stopped and cleaned up\n');
      return 128 + constants.signals.SIGTERM;
    }
    throw new CellSetupError(outcome.error);
  }
  const result: CellRunResult = outcome.result;
  for (const path of result.writeBack?.skipped ?? []) warn(skippedWarning(path));
  if (result.writeBack?.git.length) warn(gitWarning(result.writeBack.git, gitOptIn));
  if (result.signal)
    process.stderr.write(
      `build-cell: the command was killed by signal ${result.signal} (exit code ${result.exitCode})\n`,
    );
  return result.exitCode;
}
