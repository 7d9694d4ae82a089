/**
 * The CLI's flags -> a typed, validated command. Pure: no I/O beyond reading the given
 * environment and working directory, so every error is tested without root.
 */
import { parseArgs } from 'node:util';
import { homedir } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { hostArch, resolveArch, type ArchInfo } from '../emulation/arch.js';
import { parseQemuCpu } from '../emulation/cpu.js';
import { PULL_POLICIES, type PullPolicy } from '../image/prepare.js';
import { parseReference, type ImageReference } from '../image/reference.js';
import type { RegistryOptions } from '../image/registry-auth.js';
import { CLEANUP_POLICIES, NETWORK_POLICIES, SCRIPT_PATH, type CleanupPolicy, type NetworkPolicy, type WorkspaceSeed } from '../cellspec/types.js';
import { isWorkspaceArchive } from '../cellspec/validate.js';
import { checkWriteBack } from '../cell/write-back.js';
import { checkSessionName, DEFAULT_SESSION } from '../session/state.js';
import type { CellSpecInput } from '../engine.js';
import { PRIVILEGES, type Privilege } from '../privilege.js';
import { UserError, show } from '../util/errors.js';
import { bool, cellToHost, hostToCell, oneOf, optionalInt, optionalSize } from '../cellspec/text.js';

export { bool, cellToHost, hostToCell, oneOf, optionalInt, optionalSize };

export { PRIVILEGES, type Privilege };

export interface CommonOptions {
  image: { ref: ImageReference; arch: ArchInfo; pull: PullPolicy; registry: RegistryOptions };
  stateDir: string;
  privilege: Privilege;
  verbose: boolean;
  /** --qemu-cpu MODEL: the CPU qemu emulates for a foreign --arch (see emulation/cpu.ts). */
  qemuCpu?: string;
}

/** --install SCRIPT [--install-key K]: the cached install step (see src/install/derive.ts). */
export interface InstallOption {
  script: string;
  key: string;
}

export type CliCommand =
  | { kind: 'help'; text: string }
  | { kind: 'version' }
  | ({ kind: 'prepare'; install?: InstallOption; env: Array<[string, string]>; caches: CellSpecInput['caches'] } & CommonOptions)
  | ({ kind: 'run'; spec: CellSpecInput; install?: InstallOption; writeBack?: boolean; resultFile?: string } & CommonOptions)
  | { kind: 'demo'; stateDir: string; privilege: Privilege; verbose: boolean }
  /** session start: a run whose command is optional (the first step). */
  | ({ kind: 'session-start'; name: string; run: boolean; spec: CellSpecInput; install?: InstallOption } & CommonOptions)
  | { kind: 'session-exec'; name: string; stateDir: string; verbose: boolean; env: Array<[string, string]>; command: { script: string } | { argv: string[] }; resultFile?: string }
  | { kind: 'session-end'; name: string; stateDir: string; verbose: boolean; exports: CellSpecInput['exports'] }
  /** The runner's `shell: build-cell {0}` (through the shim the action puts on PATH). */
  | { kind: 'session-step'; sessions: string; name: string; script: string; verbose: boolean };

export const USAGE = `Usage:
  build-cell run --image REF [--arch ARCH] [--workspace HOSTDIR|ARCHIVE] [--workspace-path /workspace]
     [--cwd CELLPATH] [--env K=V]... [--import HOST:CELL]... [--cache HOST:CELL]... [--export CELL:HOST]...
     [--network enabled|disabled] [--cpu-time SECONDS] [--memory SIZE(K|M|G)] [--max-processes N]
     [--cleanup always|preserve-on-failure|never] [--tls-verify true|false] [--pull missing|always|never]
     [--state-dir DIR] [--registry-username USER --registry-password-stdin | --authfile FILE]
     [--privilege auto|root|sudo|rootless] [--qemu-cpu MODEL] [--result-file FILE] [--verbose]
     [--install 'SHELL SCRIPT' [--install-key STRING]] [--write-back]
     ( --run 'SHELL SCRIPT' | -- EXECUTABLE [ARG...] )
  build-cell prepare --image REF [--arch ARCH] [--qemu-cpu MODEL] [--tls-verify true|false] [--pull ...] [--state-dir DIR]
     [--install 'SHELL SCRIPT' [--install-key STRING] [--env K=V]... [--cache HOST:CELL]...]
  build-cell demo [--state-dir DIR]
  build-cell session start [--name NAME] --image REF [run's flags] [( --run 'SHELL SCRIPT' | -- EXECUTABLE [ARG...] )]
  build-cell session exec [--name NAME] [--state-dir DIR] [--env K=V]... ( --run 'SHELL SCRIPT' | -- EXECUTABLE [ARG...] )
  build-cell session end [--name NAME] [--state-dir DIR] [--export CELL:HOST]...
  build-cell --help | --version

Exit code: the command's own; 128+N when it was killed by signal N; 125 when build-cell itself failed.`;

const IMAGE_OPTIONS = {
  image: { type: 'string' },
  arch: { type: 'string' },
  'tls-verify': { type: 'string' },
  pull: { type: 'string' },
  'state-dir': { type: 'string' },
  'registry-username': { type: 'string' },
  'registry-password-stdin': { type: 'boolean' },
  authfile: { type: 'string' },
  privilege: { type: 'string' },
  verbose: { type: 'boolean', short: 'v' },
  help: { type: 'boolean', short: 'h' },
  install: { type: 'string' },
  'install-key': { type: 'string' },
  'qemu-cpu': { type: 'string' },
  env: { type: 'string', multiple: true },
  cache: { type: 'string', multiple: true },
} as const;

const RUN_OPTIONS = {
  ...IMAGE_OPTIONS,
  workspace: { type: 'string' },
  'workspace-path': { type: 'string' },
  cwd: { type: 'string' },
  import: { type: 'string', multiple: true },
  export: { type: 'string', multiple: true },
  network: { type: 'string' },
  'cpu-time': { type: 'string' },
  memory: { type: 'string' },
  'max-processes': { type: 'string' },
  cleanup: { type: 'string' },
  run: { type: 'string' },
  'result-file': { type: 'string' },
  'write-back': { type: 'boolean' },
} as const;

export interface CliEnvironment {
  cwd: string;
  env: NodeJS.ProcessEnv;
  uid: number;
  /** Read the password for --registry-password-stdin. */
  readStdin?: () => string;
}

export function parseCli(argv: string[], environment: CliEnvironment): CliCommand {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') return { kind: 'help', text: USAGE };
  if (command === '--version' || command === 'version') return { kind: 'version' };
  const dashDash = rest.indexOf('--');
  const flags = dashDash >= 0 ? rest.slice(0, dashDash) : rest;
  const trailing = dashDash >= 0 ? rest.slice(dashDash + 1) : [];
  switch (command) {
    case 'run':
      return parseRun(flags, trailing, environment);
    case 'prepare': {
      if (dashDash >= 0) throw new UserError('prepare', 'takes no command');
      const values = parse(flags, IMAGE_OPTIONS);
      if (values.help) return { kind: 'help', text: USAGE };
      const install = installOption(values);
      const env = ((values.env as string[] | undefined) ?? []).map((e) => envEntry(e, environment.env));
      const caches = ((values.cache as string[] | undefined) ?? []).map((m, i) => hostToCell(m, `--cache #${i + 1}`, environment.cwd));
      if (!install && (env.length || caches.length)) throw new UserError(env.length ? '--env' : '--cache', 'prepare takes --env and --cache only with --install (they are the install step\'s)');
      return { kind: 'prepare', ...common(values, environment), env, caches, ...(install ? { install } : {}) };
    }
    case 'session':
      return parseSession(rest, environment);
    case 'demo': {
      const values = parse(flags, { 'state-dir': { type: 'string' }, privilege: { type: 'string' }, verbose: { type: 'boolean', short: 'v' } });
      return { kind: 'demo', stateDir: stateDir(values['state-dir'] as string | undefined, environment), privilege: privilege(values.privilege as string | undefined), verbose: !!values.verbose };
    }
    default:
      throw new UserError('command', `unknown command ${show(command)}: accepted are run, prepare, demo, session`);
  }
}

type OptionsConfig = NonNullable<NonNullable<Parameters<typeof parseArgs>[0]>['options']>;

function parse(args: string[], options: OptionsConfig): Record<string, string | boolean | string[] | undefined> {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values as Record<string, string | boolean | string[] | undefined>;
  } catch (error) {
    const message = (error as Error).message.replace(/\. To specify a positional argument starting with a '-'.*$/s, '');
    throw new UserError('arguments', `${message} (put the command after --, see build-cell --help)`);
  }
}

function parseRun(flags: string[], trailing: string[], environment: CliEnvironment, options: { commandOptional?: boolean; extra?: OptionsConfig } = {}): Extract<CliCommand, { kind: 'run' | 'help' }> {
  const v = parse(flags, { ...RUN_OPTIONS, ...options.extra });
  if (v.help) return { kind: 'help', text: USAGE };
  const base = common(v, environment);
  const str = (name: string) => v[name] as string | undefined;
  const list = (name: string) => (v[name] as string[] | undefined) ?? [];

  const workspacePath = cellPath(str('workspace-path') ?? '/workspace', '--workspace-path');
  const script = str('run');
  if (script !== undefined && trailing.length) throw new UserError('--run', 'give either --run SCRIPT or -- EXECUTABLE [ARG...], not both');
  if (script === undefined && !trailing.length && !options.commandOptional) throw new UserError('command', 'missing: give --run SCRIPT or -- EXECUTABLE [ARG...]');
  if (script !== undefined && script.includes('\0')) throw new UserError('--run', 'must not contain a NUL byte');
  const command = script !== undefined
    ? { executable: '/bin/sh', argv: ['-e', SCRIPT_PATH] }
    : trailing.length ? { executable: trailing[0]!, argv: trailing.slice(1) } : { executable: 'true', argv: [] };

  const spec: CellSpecInput = {
    workspacePath,
    workspaceSeed: workspaceSeed(str('workspace'), environment.cwd),
    imports: list('import').map((m, i) => hostToCell(m, `--import #${i + 1}`, environment.cwd)),
    caches: list('cache').map((m, i) => hostToCell(m, `--cache #${i + 1}`, environment.cwd)),
    exports: list('export').map((m, i) => cellToHost(m, `--export #${i + 1}`, environment.cwd)),
    command: { cwd: cellPath(str('cwd') ?? workspacePath, '--cwd'), ...command },
    env: list('env').map((e) => envEntry(e, environment.env)),
    network: oneOf(str('network') ?? 'enabled', NETWORK_POLICIES, '--network') as NetworkPolicy,
    limits: {
      cpuTimeSeconds: optionalInt(str('cpu-time'), '--cpu-time', 'a whole number of seconds, at least 1'),
      memoryBytes: optionalSize(str('memory'), '--memory'),
      maxProcesses: optionalInt(str('max-processes'), '--max-processes', 'a whole number of processes, at least 1'),
    },
    cleanup: oneOf(str('cleanup') ?? 'always', CLEANUP_POLICIES, '--cleanup') as CleanupPolicy,
    ...(script !== undefined ? { script } : {}),
  };
  const resultFile = str('result-file');
  const install = installOption(v);
  if (v['write-back']) checkWriteBack(spec, '--write-back');
  return {
    kind: 'run', ...base, spec, ...(install ? { install } : {}), ...(v['write-back'] ? { writeBack: true } : {}),
    ...(resultFile ? { resultFile: resolve(environment.cwd, resultFile) } : {}),
  };
}

function installOption(v: Record<string, unknown>): InstallOption | undefined {
  const script = v.install as string | undefined;
  const key = v['install-key'] as string | undefined;
  if (script === undefined) {
    if (key !== undefined) throw new UserError('--install-key', 'needs --install SCRIPT (it is a part of the install step\'s key)');
    return undefined;
  }
  if (!script.trim()) throw new UserError('--install', 'must not be empty: a shell script, run with sh -e before the command');
  if (script.includes('\0')) throw new UserError('--install', 'must not contain a NUL byte');
  if (key?.includes('\0')) throw new UserError('--install-key', 'must not contain a NUL byte');
  return { script, key: key ?? '' };
}

function qemuCpuOption(value: string | undefined): { qemuCpu?: string } {
  if (value !== undefined && !value.trim()) throw new UserError('--qemu-cpu', 'must not be empty: a qemu CPU model such as cortex-a53 (see qemu-ARCH-static -cpu help)');
  const qemuCpu = parseQemuCpu(value, '--qemu-cpu');
  return qemuCpu ? { qemuCpu } : {};
}

function common(v: Record<string, unknown>, environment: CliEnvironment): CommonOptions {
  const imageValue = v.image as string | undefined;
  if (imageValue === undefined) throw new UserError('--image', 'is required: an image reference such as debian:bookworm, docker://host/repo@sha256:..., oci:/path:tag');
  const ref = parseReference(imageValue, '--image');
  const arch = v.arch === undefined ? hostArch() : resolveArch(v.arch as string, '--arch');
  const username = v['registry-username'] as string | undefined;
  let password: string | undefined;
  if (v['registry-password-stdin']) {
    if (!username) throw new UserError('--registry-password-stdin', 'needs --registry-username');
    password = (environment.readStdin?.() ?? '').replace(/\r?\n$/, '');
  } else if (username) {
    password = environment.env.BUILD_CELL_REGISTRY_PASSWORD;
    if (password === undefined) throw new UserError('--registry-username', 'needs a password: --registry-password-stdin, or BUILD_CELL_REGISTRY_PASSWORD in the environment');
  }
  const authFile = v.authfile === undefined ? undefined : resolve(environment.cwd, v.authfile as string);
  return {
    image: {
      ref,
      arch,
      pull: oneOf((v.pull as string | undefined) ?? 'missing', PULL_POLICIES, '--pull') as PullPolicy,
      registry: { tlsVerify: bool((v['tls-verify'] as string | undefined) ?? 'true', '--tls-verify'), username, password, authFile },
    },
    stateDir: stateDir(v['state-dir'] as string | undefined, environment),
    privilege: privilege(v.privilege as string | undefined),
    verbose: !!v.verbose,
    ...qemuCpuOption(v['qemu-cpu'] as string | undefined),
  };
}

export function stateDir(value: string | undefined, environment: CliEnvironment): string {
  if (value !== undefined) {
    if (!value.trim()) throw new UserError('--state-dir', 'must not be empty');
    return resolve(environment.cwd, value);
  }
  if (environment.uid === 0) return '/var/lib/build-cell';
  // The XDG spec says a relative XDG_CACHE_HOME is to be ignored.
  const xdg = environment.env.XDG_CACHE_HOME;
  const cache = xdg && isAbsolute(xdg) ? xdg : resolve(environment.env.HOME || homedir(), '.cache');
  return resolve(cache, 'build-cell');
}

function privilege(value: string | undefined): Privilege {
  return oneOf(value ?? 'auto', PRIVILEGES, '--privilege') as Privilege;
}

function cellPath(value: string, field: string): string {
  if (!value.startsWith('/')) throw new UserError(field, `must be an absolute path inside the cell, got ${show(value)}`);
  return value;
}

function workspaceSeed(value: string | undefined, cwd: string): WorkspaceSeed {
  if (value === undefined || value === '' || value === 'none') return { kind: 'empty' };
  const path = resolve(cwd, value);
  return isWorkspaceArchive(path) ? { kind: 'archive', path } : { kind: 'snapshot', path };
}

/** `NAME=VALUE`, or `NAME` alone to pass this process's value on (as docker run -e does). */
export function envEntry(value: string, env: NodeJS.ProcessEnv): [string, string] {
  const eq = value.indexOf('=');
  if (eq === 0) throw new UserError('--env', `the name must not be empty in ${show(value)}`);
  if (eq < 0) {
    const inherited = env[value];
    if (inherited === undefined) throw new UserError('--env', `${show(value)} has no =VALUE and is not set in this environment`);
    return [value, inherited];
  }
  return [value.slice(0, eq), value.slice(eq + 1)];
}

const SESSION_NAME = { name: { type: 'string' } } as const;

function sessionName(value: unknown): string {
  return checkSessionName(typeof value === 'string' ? value : DEFAULT_SESSION, '--name');
}

function parseSession([sub, ...rest]: string[], environment: CliEnvironment): CliCommand {
  const dashDash = rest.indexOf('--');
  const flags = dashDash >= 0 ? rest.slice(0, dashDash) : rest;
  const trailing = dashDash >= 0 ? rest.slice(dashDash + 1) : [];
  switch (sub) {
    case 'start': {
      const run = parseRun(flags, trailing, environment, { commandOptional: true, extra: SESSION_NAME });
      if (run.kind === 'help') return run;
      if (run.writeBack) throw new UserError('--write-back', 'is implied in a session: each step writes its workspace changes back');
      const v = parse(flags, { ...RUN_OPTIONS, ...SESSION_NAME });
      const { kind: _, resultFile: _r, writeBack: _w, ...rest2 } = run;
      return { ...rest2, kind: 'session-start', name: sessionName(v.name), run: v.run !== undefined || trailing.length > 0 };
    }
    case 'exec': {
      const v = parse(flags, { ...SESSION_NAME, 'state-dir': { type: 'string' }, env: { type: 'string', multiple: true }, run: { type: 'string' }, 'result-file': { type: 'string' }, verbose: { type: 'boolean', short: 'v' } });
      const script = v.run as string | undefined;
      if (script !== undefined && trailing.length) throw new UserError('--run', 'give either --run SCRIPT or -- EXECUTABLE [ARG...], not both');
      if (script === undefined && !trailing.length) throw new UserError('command', 'missing: give --run SCRIPT or -- EXECUTABLE [ARG...]');
      if (script?.includes('\0')) throw new UserError('--run', 'must not contain a NUL byte');
      const resultFile = v['result-file'] as string | undefined;
      return {
        kind: 'session-exec', name: sessionName(v.name), stateDir: stateDir(v['state-dir'] as string | undefined, environment), verbose: !!v.verbose,
        env: ((v.env as string[] | undefined) ?? []).map((e) => envEntry(e, environment.env)),
        command: script !== undefined ? { script } : { argv: trailing },
        ...(resultFile ? { resultFile: resolve(environment.cwd, resultFile) } : {}),
      };
    }
    case 'end': {
      if (dashDash >= 0) throw new UserError('session end', 'takes no command');
      const v = parse(flags, { ...SESSION_NAME, 'state-dir': { type: 'string' }, export: { type: 'string', multiple: true }, verbose: { type: 'boolean', short: 'v' } });
      return {
        kind: 'session-end', name: sessionName(v.name), stateDir: stateDir(v['state-dir'] as string | undefined, environment), verbose: !!v.verbose,
        exports: ((v.export as string[] | undefined) ?? []).map((m, i) => cellToHost(m, `--export #${i + 1}`, environment.cwd)),
      };
    }
    case 'step': {
      // The runner calls `build-cell [--session NAME] SCRIPT`; the shim adds `session step --sessions DIR`.
      // --state-dir: only for the launcher, which keeps the CLI's code cache there (the session file names the real one).
      const v = parseArgs({ args: flags, options: { sessions: { type: 'string' }, session: { type: 'string' }, 'state-dir': { type: 'string' }, verbose: { type: 'boolean' } }, strict: true, allowPositionals: true });
      const sessions = v.values.sessions;
      const [script, ...more] = v.positionals;
      if (!sessions) throw new UserError('--sessions', 'is required (the shim that `session: true` puts on PATH passes it)');
      if (!script || more.length) throw new UserError('script', 'give exactly one script file: `shell: build-cell {0}` (or `build-cell --session NAME {0}`)');
      return { kind: 'session-step', sessions: resolve(environment.cwd, sessions), name: checkSessionName(v.values.session ?? DEFAULT_SESSION, '--session'), script: resolve(environment.cwd, script), verbose: !!v.values.verbose };
    }
    default:
      throw new UserError('session', `unknown session command ${show(sub ?? '')}: accepted are start, exec, end (and step, for the runner)`);
  }
}
