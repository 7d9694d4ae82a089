/**
 * The session subcommands' flags -> session-start, session-exec, session-end and (for the
 * runner's `shell:`) session-step commands.
 */
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { checkSessionName, DEFAULT_SESSION } from '../session/state.js';
import { UserError, show } from '../util/errors.js';
import { cellToHost } from '../cellspec/text.js';
import type { CliCommand, CliEnvironment } from './command.js';
import { envEntry, parseRun, stateDir } from './run-args.js';
import { RUN_OPTIONS, parse } from './usage.js';

const SESSION_NAME = { name: { type: 'string' } } as const;

function sessionName(value: unknown): string {
  return checkSessionName(typeof value === 'string' ? value : DEFAULT_SESSION, '--name');
}

type Args = { flags: string[]; trailing: string[]; dashDash: boolean };

export function parseSession([sub, ...rest]: string[], environment: CliEnvironment): CliCommand {
  const dashDash = rest.indexOf('--');
  const args: Args = {
    flags: dashDash >= 0 ? rest.slice(0, dashDash) : rest,
    trailing: dashDash >= 0 ? rest.slice(dashDash + 1) : [],
    dashDash: dashDash >= 0,
  };
  switch (sub) {
    case 'start':
      return parseStart(args, environment);
    case 'exec':
      return parseExec(args, environment);
    case 'end':
      return parseEnd(args, environment);
    case 'step':
      return parseStep(args, environment);
    default:
      throw new UserError(
        'session',
        `unknown session command ${show(sub ?? '')}: accepted are start, exec, end (and step, for the runner)`,
      );
  }
}

/** session start: run's flags (write-back is implied), a command optional. */
function parseStart({ flags, trailing }: Args, environment: CliEnvironment): CliCommand {
  const run = parseRun(flags, trailing, environment, { commandOptional: true, extra: SESSION_NAME });
  if (run.kind === 'help') return run;
  if (run.writeBack)
    throw new UserError('--write-back', 'is implied in a session: each step writes its workspace changes back');
  const v = parse(flags, { ...RUN_OPTIONS, ...SESSION_NAME });
  const { kind: _, resultFile: _r, writeBack: _w, ...rest2 } = run;
  return {
    ...rest2,
    kind: 'session-start',
    name: sessionName(v.name),
    run: v.run !== undefined || trailing.length > 0,
  };
}

/** session exec: a step in the session's cell (a script or an argv), with its own env. */
function parseExec({ flags, trailing }: Args, environment: CliEnvironment): CliCommand {
  const v = parse(flags, {
    ...SESSION_NAME,
    'state-dir': { type: 'string' },
    env: { type: 'string', multiple: true },
    run: { type: 'string' },
    'result-file': { type: 'string' },
    verbose: { type: 'boolean', short: 'v' },
  });
  const script = v.run as string | undefined;
  if (script !== undefined && trailing.length)
    throw new UserError('--run', 'give either --run SCRIPT or -- EXECUTABLE [ARG...], not both');
  if (script === undefined && !trailing.length)
    throw new UserError('command', 'missing: give --run SCRIPT or -- EXECUTABLE [ARG...]');
  if (script?.includes('\0')) throw new UserError('--run', 'must not contain a NUL byte');
  const resultFile = v['result-file'] as string | undefined;
  return {
    kind: 'session-exec',
    name: sessionName(v.name),
    stateDir: stateDir(v['state-dir'] as string | undefined, environment),
    verbose: !!v.verbose,
    env: ((v.env as string[] | undefined) ?? []).map((e) => envEntry(e, environment.env)),
    command: script !== undefined ? { script } : { argv: trailing },
    ...(resultFile ? { resultFile: resolve(environment.cwd, resultFile) } : {}),
  };
}

/** session end: the exports from a last cell over the session's state, then the session removed. */
function parseEnd({ flags, dashDash }: Args, environment: CliEnvironment): CliCommand {
  if (dashDash) throw new UserError('session end', 'takes no command');
  const v = parse(flags, {
    ...SESSION_NAME,
    'state-dir': { type: 'string' },
    export: { type: 'string', multiple: true },
    verbose: { type: 'boolean', short: 'v' },
  });
  return {
    kind: 'session-end',
    name: sessionName(v.name),
    stateDir: stateDir(v['state-dir'] as string | undefined, environment),
    verbose: !!v.verbose,
    exports: ((v.export as string[] | undefined) ?? []).map((m, i) =>
      cellToHost(m, `--export #${i + 1}`, environment.cwd),
    ),
  };
}

/** session step: what the runner calls for `shell: build-cell {0}` (through the shim). */
function parseStep({ flags }: Args, environment: CliEnvironment): CliCommand {
  // The runner calls `build-cell [--session NAME] SCRIPT`; the shim adds `session step --sessions DIR`.
  // --state-dir: only for the launcher, which keeps the CLI's code cache there (the session file names the real one).
  const v = parseArgs({
    args: flags,
    options: {
      sessions: { type: 'string' },
      session: { type: 'string' },
      'state-dir': { type: 'string' },
      verbose: { type: 'boolean' },
    },
    strict: true,
    allowPositionals: true,
  });
  const sessions = v.values.sessions;
  const [script, ...more] = v.positionals;
  if (!sessions)
    throw new UserError('--sessions', 'is required (the shim that `session: true` puts on PATH passes it)');
  if (!script || more.length)
    throw new UserError(
      'script',
      'give exactly one script file: `shell: build-cell {0}` (or `build-cell --session NAME {0}`)',
    );
  return {
    kind: 'session-step',
    sessions: resolve(environment.cwd, sessions),
    name: checkSessionName(v.values.session ?? DEFAULT_SESSION, '--session'),
    script: resolve(environment.cwd, script),
    verbose: !!v.values.verbose,
  };
}
