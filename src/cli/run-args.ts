/**
 * run's flags -> a run command, and the flags run shares with prepare and session start: the
 * image, the state directory, the privilege mode, --install, --env.
 */
import { homedir } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { hostArch, resolveArch } from '../emulation/arch.js';
import { parseQemuCpu } from '../emulation/cpu.js';
import { parseEmulationMode } from '../emulation/native.js';
import { checkToolsSource, parseQemuVersion } from '../tools/pinned.js';
import { PULL_POLICIES } from '../image/prepare.js';
import { parseReference } from '../image/reference.js';
import { CLEANUP_POLICIES, NETWORK_POLICIES, SCRIPT_PATH, type WorkspaceSeed } from '../cellspec/types.js';
import { isWorkspaceArchive } from '../cellspec/validate.js';
import { checkWriteBack } from '../write-back/workspace.js';
import type { CellSpecInput } from '../engine.js';
import { PRIVILEGES, type Privilege } from '../privilege/mode.js';
import { UserError, show } from '../util/errors.js';
import { bool, cellToHost, hostToCell, oneOf, optionalInt, optionalSize, tmpfsMount } from '../cellspec/text.js';
import type { CliCommand, CliEnvironment, CommonOptions, InstallOption } from './command.js';
import type { InstallRequest } from '../install/port.js';
import { parseRepository, sourceRepository } from '../install/registry.js';
import { RUN_OPTIONS, USAGE, parse, type OptionsConfig } from './usage.js';

export function parseRun(
  flags: string[],
  trailing: string[],
  environment: CliEnvironment,
  options: { commandOptional?: boolean; extra?: OptionsConfig } = {},
): Extract<CliCommand, { kind: 'run' | 'help' }> {
  const v = parse(flags, { ...RUN_OPTIONS, ...options.extra });
  if (v.help) return { kind: 'help', text: USAGE };
  const base = common(v, environment);
  const str = (name: string) => v[name] as string | undefined;
  const list = (name: string) => (v[name] as string[] | undefined) ?? [];

  const workspacePath = cellPath(str('workspace-path') ?? '/workspace', '--workspace-path');
  const script = str('run');
  if (script !== undefined && trailing.length)
    throw new UserError('--run', 'give either --run SCRIPT or -- EXECUTABLE [ARG...], not both');
  if (script === undefined && !trailing.length && !options.commandOptional)
    throw new UserError('command', 'missing: give --run SCRIPT or -- EXECUTABLE [ARG...]');
  if (script !== undefined && script.includes('\0')) throw new UserError('--run', 'must not contain a NUL byte');
  const command =
    script !== undefined
      ? { executable: '/bin/sh', argv: ['-e', SCRIPT_PATH] }
      : trailing.length
        ? { executable: trailing[0]!, argv: trailing.slice(1) }
        : { executable: 'true', argv: [] };

  const spec: CellSpecInput = {
    workspacePath,
    workspaceSeed: workspaceSeed(str('workspace'), environment.cwd),
    imports: list('import').map((m, i) => hostToCell(m, `--import #${i + 1}`, environment.cwd)),
    caches: list('cache').map((m, i) => hostToCell(m, `--cache #${i + 1}`, environment.cwd)),
    exports: list('export').map((m, i) => cellToHost(m, `--export #${i + 1}`, environment.cwd)),
    ...tmpfsList(list('tmpfs')),
    command: { cwd: cellPath(str('cwd') ?? workspacePath, '--cwd'), ...command },
    env: list('env').map((e) => envEntry(e, environment.env)),
    network: oneOf(str('network') ?? 'enabled', NETWORK_POLICIES, '--network'),
    limits: {
      cpuTimeSeconds: optionalInt(str('cpu-time'), '--cpu-time', 'a whole number of seconds, at least 1'),
      memoryBytes: optionalSize(str('memory'), '--memory'),
      maxProcesses: optionalInt(str('max-processes'), '--max-processes', 'a whole number of processes, at least 1'),
    },
    cleanup: oneOf(str('cleanup') ?? 'always', CLEANUP_POLICIES, '--cleanup'),
    ...(script !== undefined ? { script } : {}),
  };
  const resultFile = str('result-file');
  const install = installOption(v, environment);
  if (v['write-back']) checkWriteBack(spec, '--write-back');
  // A session writes back every step: there the flag stands alone.
  if (v['write-back-git'] && !v['write-back'] && !options.commandOptional)
    throw new UserError('--write-back-git', 'needs --write-back: it lets write-back write under .git');
  return {
    kind: 'run',
    ...base,
    spec,
    ...(install ? { install } : {}),
    ...(v['write-back'] ? { writeBack: true } : {}),
    ...(v['write-back-git'] ? { writeBackGit: true } : {}),
    ...(resultFile ? { resultFile: resolve(environment.cwd, resultFile) } : {}),
  };
}

function tmpfsList(values: string[]): { tmpfs?: CellSpecInput['tmpfs'] } {
  return values.length ? { tmpfs: values.map((m, i) => tmpfsMount(m, `--tmpfs #${i + 1}`)) } : {};
}

/** The CLI's install step (`--install`, `--install-key`): run with sh -e, keyed by the names of its --env. */
export function cliInstallRequest(option: InstallOption, env: Array<[string, string]>): InstallRequest {
  return {
    script: option.script,
    key: option.key,
    shell: 'sh',
    keyEnvNames: env.map(([name]) => name),
    ...(option.registry ? { registry: option.registry } : {}),
    ...(option.source ? { source: option.source } : {}),
  };
}

export function installOption(v: Record<string, unknown>, environment: CliEnvironment): InstallOption | undefined {
  const script = v.install as string | undefined;
  const key = v['install-key'] as string | undefined;
  const repository = v['install-registry'] as string | undefined;
  if (v['install-push'] && repository === undefined)
    throw new UserError(
      '--install-push',
      'needs --install-registry REPO (the repository to push the derived image to)',
    );
  if (script === undefined) {
    if (key !== undefined)
      throw new UserError('--install-key', "needs --install SCRIPT (it is a part of the install step's key)");
    if (repository !== undefined)
      throw new UserError('--install-registry', "needs --install SCRIPT (it holds the install step's derived images)");
    return undefined;
  }
  if (!script.trim())
    throw new UserError('--install', 'must not be empty: a shell script, run with sh -e before the command');
  if (script.includes('\0')) throw new UserError('--install', 'must not contain a NUL byte');
  if (key?.includes('\0')) throw new UserError('--install-key', 'must not contain a NUL byte');
  const registry =
    repository !== undefined
      ? { repository: parseRepository(repository, '--install-registry'), push: !!v['install-push'] }
      : undefined;
  const source = sourceRepository(environment.env);
  return { script, key: key ?? '', ...(registry ? { registry } : {}), ...(source ? { source } : {}) };
}

function qemuCpuOption(value: string | undefined): { qemuCpu?: string } {
  if (value !== undefined && !value.trim())
    throw new UserError(
      '--qemu-cpu',
      'must not be empty: a qemu CPU model such as cortex-a53 (see qemu-ARCH-static -cpu help)',
    );
  const qemuCpu = parseQemuCpu(value, '--qemu-cpu');
  return qemuCpu ? { qemuCpu } : {};
}

function emulationOptions(v: Record<string, unknown>): Pick<CommonOptions, 'emulation' | 'qemu' | 'toolsSource'> {
  const qemu = parseQemuVersion(v.qemu as string | undefined, '--qemu');
  const value = v['tools-source'] as string | undefined;
  const toolsSource = value === undefined ? undefined : checkToolsSource(value, '--tools-source');
  return {
    emulation: parseEmulationMode(v.emulation as string | undefined, '--emulation'),
    ...(qemu ? { qemu } : {}),
    ...(toolsSource !== undefined ? { toolsSource } : {}),
  };
}

export function common(v: Record<string, unknown>, environment: CliEnvironment): CommonOptions {
  const imageValue = v.image as string | undefined;
  if (imageValue === undefined)
    throw new UserError(
      '--image',
      'is required: an image reference such as debian:bookworm, docker://host/repo@sha256:..., oci:/path:tag',
    );
  const ref = parseReference(imageValue, '--image');
  const arch = v.arch === undefined ? hostArch() : resolveArch(v.arch as string, '--arch');
  const username = v['registry-username'] as string | undefined;
  let password: string | undefined;
  if (v['registry-password-stdin']) {
    if (!username) throw new UserError('--registry-password-stdin', 'needs --registry-username');
    password = (environment.readStdin?.() ?? '').replace(/\r?\n$/, '');
  } else if (username) {
    password = environment.env.BUILD_CELL_REGISTRY_PASSWORD;
    if (password === undefined)
      throw new UserError(
        '--registry-username',
        'needs a password: --registry-password-stdin, or BUILD_CELL_REGISTRY_PASSWORD in the environment',
      );
  }
  const authFile = v.authfile === undefined ? undefined : resolve(environment.cwd, v.authfile as string);
  return {
    image: {
      ref,
      arch,
      pull: oneOf((v.pull as string | undefined) ?? 'missing', PULL_POLICIES, '--pull'),
      registry: {
        tlsVerify: bool((v['tls-verify'] as string | undefined) ?? 'true', '--tls-verify'),
        username,
        password,
        authFile,
      },
    },
    stateDir: stateDir(v['state-dir'] as string | undefined, environment),
    privilege: privilege(v.privilege as string | undefined),
    verbose: !!v.verbose,
    ...qemuCpuOption(v['qemu-cpu'] as string | undefined),
    ...emulationOptions(v),
    ...storeMaxSizeOption(v['store-max-size'] as string | undefined),
  };
}

/** --store-max-size SIZE: the size cap applied after the run (store/cap.ts). */
function storeMaxSizeOption(value: string | undefined): { storeMaxSize?: number } {
  const bytes = optionalSize(value, '--store-max-size');
  return bytes === undefined ? {} : { storeMaxSize: bytes };
}

export function stateDir(value: string | undefined, environment: CliEnvironment): string {
  if (value !== undefined) {
    if (!value.trim()) throw new UserError('--state-dir', 'must not be empty');
    return resolve(environment.cwd, value);
  }
  if (environment.uid === 0) return '/var/lib/build-cell';
  return resolve(userCacheDir(environment.env), 'build-cell');
}

/** The user's cache directory: $XDG_CACHE_HOME, else ~/.cache (the XDG spec ignores a relative XDG_CACHE_HOME). */
export function userCacheDir(env: NodeJS.ProcessEnv): string {
  const xdg = env.XDG_CACHE_HOME;
  return xdg && isAbsolute(xdg) ? xdg : resolve(env.HOME || homedir(), '.cache');
}

export function privilege(value: string | undefined): Privilege {
  return oneOf(value ?? 'auto', PRIVILEGES, '--privilege');
}

function cellPath(value: string, field: string): string {
  if (!value.startsWith('/'))
    throw new UserError(field, `must be an absolute path inside the cell, got ${show(value)}`);
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
    if (inherited === undefined)
      throw new UserError('--env', `${show(value)} has no =VALUE and is not set in this environment`);
    return [value, inherited];
  }
  return [value.slice(0, eq), value.slice(eq + 1)];
}
