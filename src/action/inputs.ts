/**
 * The action's inputs: read once, validated up front, as one typed object. This is the only
 * module that calls core.getInput. Every error names the input and says what is accepted,
 * and nothing runs before validation passes.
 */
import * as core from '@actions/core';
import { hostArch, resolveArch, type ArchInfo } from '../emulation/arch.js';
import { parseEmulationMode, type EmulationMode } from '../emulation/native.js';
import { DEFAULT_TOOLS_SOURCE, checkToolsSource, parseQemuVersion, type QemuVersion } from '../tools/pinned.js';
import { parseQemuCpu } from '../emulation/cpu.js';
import { parseRepository } from '../install/registry.js';
import { parseReference, type ImageReference } from '../image/reference.js';
import { isWorkspaceArchive } from '../cellspec/validate.js';
import { bool, oneOf, optionalInt, optionalSize, tmpfsMount } from '../cellspec/text.js';
import { checkEnv } from '../cellspec/validate.js';
import {
  CLEANUP_POLICIES,
  NETWORK_POLICIES,
  type CleanupPolicy,
  type NetworkPolicy,
  type TmpfsMount,
} from '../cellspec/types.js';
import { UserError, show } from '../util/errors.js';
import { PRIVILEGES } from '../privilege/mode.js';
import { checkSessionName, DEFAULT_SESSION } from '../session/state.js';
import { parseForwardEnv } from '../github/env-policy.js';

export const SHELLS = ['sh', 'bash'] as const;
export const TOOLS_MODES = ['auto', 'pinned'] as const;

export interface ActionInputs {
  image: ImageReference;
  arch: ArchInfo;
  /** The script (`run`) with its shell, or the argv (`command`); none: a session started without a first command. */
  command:
    | { kind: 'script'; script: string; shell: (typeof SHELLS)[number] }
    | { kind: 'argv'; argv: string[] }
    | { kind: 'none' };
  /** The shell of `run` and of a session's steps. */
  shell: (typeof SHELLS)[number];
  /** Later steps run in this cell's state with `shell: build-cell {0}` (see src/session/). */
  session?: string;
  /**
   * The cached install step (see src/install/derive.ts): its script and extra key part; its
   * registry tier (install-registry as host/path, install-push as given: see install-push.ts).
   */
  install?: {
    script: string;
    key: string;
    shell: (typeof SHELLS)[number];
    registry?: { repository: string; push: (typeof INSTALL_PUSH)[number] };
  };
  /** Host directory or archive; undefined: empty workspace. */
  workspace?: string;
  /** Apply the cell's workspace changes to the host workspace directory (see cell/write-back.ts). */
  writeBack: boolean;
  /** Write-back may write under `.git` directories too (write-back-git; see cell/write-back.ts). */
  writeBackGit: boolean;
  /** GITHUB_ENV names and globs the cell may set for later steps (forward-env; see github/env-policy.ts). */
  forwardEnv: string[];
  /** Whether GITHUB_PATH entries the cell writes reach later steps (forward-path). */
  forwardPath: boolean;
  workspacePath: string;
  /** Absolute cell path. */
  workingDirectory: string;
  env: Array<[string, string]>;
  imports: Array<{ host: string; cell: string }>;
  /** Host path undefined: a directory under RUNNER_TEMP that the Actions cache restores and saves. */
  caches: Array<{ host?: string; cell: string }>;
  cacheKey: string;
  exports: Array<{ cell: string; host: string }>;
  /** Cell paths mounted as empty tmpfs (see TmpfsMount). */
  tmpfs: TmpfsMount[];
  network: NetworkPolicy;
  limits: { cpuTimeSeconds?: number; memoryBytes?: number; maxProcesses?: number };
  cleanup: CleanupPolicy;
  artifactName?: string;
  imageCache: boolean;
  registry: { username?: string; password?: string; tlsVerify: boolean };
  privilege: (typeof PRIVILEGES)[number];
  toolsSource: string;
  /** auto: PATH, tool cache, then the pinned download; pinned: never qemu/umoci from PATH. */
  tools: (typeof TOOLS_MODES)[number];
  stateDir: string;
  /** The CPU model qemu emulates for a foreign arch (syntax checked here, the name against qemu once it is resolved). */
  qemuCpu?: string;
  /** auto: native where this host runs the arch (probed), else qemu; qemu: always qemu. */
  emulation: EmulationMode;
  /** Which qemu build (7.2, 10.0, path); undefined: as `tools` says (PATH, then the 7.2 pin). */
  qemu?: QemuVersion;
  /** store-max-size (bytes): after the run, the least recently used images go until the store fits. */
  storeMaxSize?: number;
}

export const INPUT_NAMES = [
  'image',
  'arch',
  'run',
  'shell',
  'command',
  'workspace',
  'workspace-path',
  'working-directory',
  'env',
  'imports',
  'caches',
  'cache-key',
  'exports',
  'tmpfs',
  'network',
  'cpu-time',
  'memory',
  'max-processes',
  'cleanup',
  'artifact-name',
  'image-cache',
  'registry-username',
  'registry-password',
  'tls-verify',
  'privilege',
  'tools-source',
  'tools',
  'state-dir',
  'store-max-size',
  'install',
  'install-key',
  'install-registry',
  'install-push',
  'write-back',
  'write-back-git',
  'forward-env',
  'forward-path',
  'session',
  'qemu-cpu',
  'emulation',
  'qemu',
] as const;

export type InputReader = (name: (typeof INPUT_NAMES)[number]) => string;

/** Read and validate all inputs through @actions/core; also masks the secrets. */
export function getInputs(env: NodeJS.ProcessEnv = process.env): ActionInputs {
  const read: InputReader = (name) => core.getInput(name);
  const inputs = parseInputs(read, env);
  if (inputs.registry.password) core.setSecret(inputs.registry.password);
  for (const [, value] of inputs.env)
    if (value.length >= 3) for (const line of value.split('\n')) if (line.trim()) core.setSecret(line);
  return inputs;
}

/** Names of INPUT_* variables that this action does not know (the runner only warns for those in a workflow file). */
export function unknownInputs(env: NodeJS.ProcessEnv = process.env): string[] {
  const known = new Set<string>(INPUT_NAMES.map((n) => n.toUpperCase()));
  return Object.keys(env)
    .filter((k) => k.startsWith('INPUT_') && !known.has(k.slice(6)))
    .map((k) => k.slice(6).toLowerCase());
}

/** Pure: input text -> ActionInputs. `env` supplies GITHUB_WORKSPACE and RUNNER_TEMP. */
export function parseInputs(read: InputReader, env: NodeJS.ProcessEnv): ActionInputs {
  const githubWorkspace = env.GITHUB_WORKSPACE || process.cwd();
  const fromWorkspace = (p: string) =>
    p.startsWith('/') ? p : `${githubWorkspace.replace(/\/$/, '')}/${p.replace(/^\.\//, '')}`;
  const image = read('image').trim();
  if (!image)
    throw new UserError(
      'image',
      'is required: an image reference such as debian:bookworm, ghcr.io/owner/image@sha256:..., oci:/path:tag',
    );
  const paths = cellPathInputs(read);
  const command = commandInputs(read);
  const workspace = workspaceInputs(read, githubWorkspace, fromWorkspace, command.session);
  const cellEnv = parseEnvLines(read('env'));
  checkEnv(cellEnv, 'env');
  const mounts = mountInputs(read, fromWorkspace);
  const access = accessInputs(read);
  return {
    image: parseReference(image, 'image'),
    arch: read('arch').trim() ? resolveArch(read('arch'), 'arch') : hostArch(),
    ...(access.qemuCpu ? { qemuCpu: access.qemuCpu } : {}),
    emulation: parseEmulationMode(read('emulation'), 'emulation'),
    ...(access.qemu ? { qemu: access.qemu } : {}),
    command: command.command,
    shell: command.shell,
    ...(command.session ? { session: command.session } : {}),
    ...(command.install ? { install: command.install } : {}),
    ...workspace,
    forwardEnv: parseForwardEnv(read('forward-env'), 'forward-env'),
    forwardPath: bool(read('forward-path') || 'false', 'forward-path'),
    ...paths,
    env: cellEnv,
    ...mounts,
    cacheKey: read('cache-key').trim(),
    network: oneOf(read('network') || 'enabled', NETWORK_POLICIES, 'network'),
    limits: limitInputs(read),
    cleanup: oneOf(read('cleanup') || 'always', CLEANUP_POLICIES, 'cleanup'),
    artifactName: access.artifactName,
    imageCache: bool(read('image-cache') || 'true', 'image-cache'),
    registry: access.registry,
    privilege: oneOf(read('privilege') || 'auto', PRIVILEGES, 'privilege'),
    toolsSource: access.toolsSource,
    tools: oneOf(read('tools') || 'auto', TOOLS_MODES, 'tools'),
    stateDir: access.stateDir,
    ...(access.storeMaxSize !== undefined ? { storeMaxSize: access.storeMaxSize } : {}),
  };
}

/** workspace-path and working-directory (relative to the workspace path). */
function cellPathInputs(read: InputReader): Pick<ActionInputs, 'workspacePath' | 'workingDirectory'> {
  const workspacePath = cellPathInput(read('workspace-path') || '/workspace', 'workspace-path');
  const wd = read('working-directory').trim();
  const workingDirectory = !wd
    ? workspacePath
    : wd.startsWith('/')
      ? cellPathInput(wd, 'working-directory')
      : cellPathInput(`${workspacePath}/${wd}`, 'working-directory');
  return { workspacePath, workingDirectory };
}

/** session, run or command, shell, and the install step (run with the same shell). */
function commandInputs(read: InputReader): Pick<ActionInputs, 'command' | 'shell' | 'session' | 'install'> {
  const sessionInput = read('session').trim();
  const session =
    !sessionInput || sessionInput === 'false'
      ? undefined
      : sessionInput === 'true'
        ? DEFAULT_SESSION
        : checkSessionName(sessionInput, 'session');
  const run = read('run');
  const commandLines = lines(read('command'));
  if (run.trim() && commandLines.length)
    throw new UserError('run', 'give either run (a script) or command (one argument per line), not both');
  if (!run.trim() && !commandLines.length && !session)
    throw new UserError('run', 'is required (or command, or session): the script to run in the cell');
  if (run.includes('\0')) throw new UserError('run', 'must not contain a NUL byte');
  const shell = oneOf(read('shell') || 'sh', SHELLS, 'shell');
  const command: ActionInputs['command'] = run.trim()
    ? { kind: 'script', script: run, shell }
    : commandLines.length
      ? { kind: 'argv', argv: commandLines }
      : { kind: 'none' };
  const installScript = read('install');
  const installKey = read('install-key').trim();
  if (installScript.includes('\0')) throw new UserError('install', 'must not contain a NUL byte');
  if (!installScript.trim() && installKey)
    throw new UserError('install-key', "needs install (a script): it is a part of the install step's key");
  const registry = installRegistryInputs(read, !!installScript.trim());
  const install = installScript.trim()
    ? { script: installScript, key: installKey, shell, ...(registry ? { registry } : {}) }
    : undefined;
  return { command, shell, session, install };
}

export const INSTALL_PUSH = ['auto', 'true', 'false'] as const;

/** install-registry (a repository, no tag) and install-push: only with install. */
function installRegistryInputs(
  read: InputReader,
  hasInstall: boolean,
): NonNullable<ActionInputs['install']>['registry'] | undefined {
  const value = read('install-registry').trim();
  const push = oneOf(read('install-push').trim() || 'auto', INSTALL_PUSH, 'install-push');
  if (!value) {
    if (push === 'true') throw new UserError('install-push', 'needs install-registry (the repository to push to)');
    return undefined;
  }
  if (!hasInstall)
    throw new UserError('install-registry', "needs install (a script): it holds the install step's derived images");
  return { repository: parseRepository(value, 'install-registry'), push };
}

/** workspace (a directory, an archive or none), write-back (implied by a session) and write-back-git. */
function workspaceInputs(
  read: InputReader,
  githubWorkspace: string,
  fromWorkspace: (p: string) => string,
  session: string | undefined,
): Pick<ActionInputs, 'workspace' | 'writeBack' | 'writeBackGit'> {
  const workspaceInput = read('workspace').trim();
  const workspace = workspaceInput === 'none' ? undefined : fromWorkspace(workspaceInput || githubWorkspace);
  if (workspace && /\.(zip|tar\.bz2|tar\.xz|tar\.zst)$/.test(workspace) && !isWorkspaceArchive(workspace)) {
    throw new UserError(
      'workspace',
      `${show(workspaceInput)} is not a supported archive: accepted are a directory, .tar, .tar.gz, .tgz, or none`,
    );
  }
  // A session writes each step's workspace changes back: the input is implied.
  const writeBack =
    bool(read('write-back') || 'false', 'write-back') || (!!session && !!workspace && !isWorkspaceArchive(workspace));
  if (writeBack && (!workspace || isWorkspaceArchive(workspace))) {
    throw new UserError(
      'write-back',
      `needs a directory workspace to write back to, and workspace is ${workspace ? `the archive ${show(workspaceInput)}` : 'none'}`,
    );
  }
  const writeBackGit = bool(read('write-back-git') || 'false', 'write-back-git');
  if (writeBackGit && !writeBack)
    throw new UserError('write-back-git', 'needs write-back: true (or a session): it lets write-back write under .git');
  return { workspace, writeBack, writeBackGit };
}

/** imports, caches, exports and tmpfs mounts, one per line; host paths relative to the workspace. */
function mountInputs(
  read: InputReader,
  fromWorkspace: (p: string) => string,
): Pick<ActionInputs, 'imports' | 'caches' | 'exports' | 'tmpfs'> {
  const imports = lines(read('imports')).map((line, i) => {
    const m = splitHostCell(line, `imports line ${i + 1}`);
    return { host: fromWorkspace(m.host), cell: cellPathInput(m.cell, `imports line ${i + 1}`) };
  });
  const caches = lines(read('caches')).map((line, i) => {
    if (line.startsWith('/') && !line.slice(1).includes(':/'))
      return { cell: cellPathInput(line, `caches line ${i + 1}`) };
    const m = splitHostCell(line, `caches line ${i + 1}`);
    return { host: fromWorkspace(m.host), cell: cellPathInput(m.cell, `caches line ${i + 1}`) };
  });
  const exports = lines(read('exports')).map((line, i) => {
    const at = line.indexOf(':');
    const field = `exports line ${i + 1}`;
    if (at <= 0 || at === line.length - 1)
      throw new UserError(field, `must be CELL:HOST (e.g. /workspace/out:out), got ${show(line)}`);
    return { cell: cellPathInput(line.slice(0, at), field), host: fromWorkspace(line.slice(at + 1)) };
  });
  const tmpfs = lines(read('tmpfs')).map((line, i) => tmpfsMount(line, `tmpfs line ${i + 1}`));
  return { imports, caches, exports, tmpfs };
}

/** The artifact's name, registry access, the tools' source, qemu and the state dir. */
function accessInputs(
  read: InputReader,
): Pick<ActionInputs, 'artifactName' | 'registry' | 'toolsSource' | 'qemuCpu' | 'qemu' | 'stateDir' | 'storeMaxSize'> {
  const artifactName = read('artifact-name').trim() || undefined;
  if (artifactName && /["<>|*?\r\n\\/:]/.test(artifactName)) {
    throw new UserError(
      'artifact-name',
      `${show(artifactName)} contains a character artifacts do not allow (" : < > | * ? \\ / or a newline)`,
    );
  }
  const username = read('registry-username').trim() || undefined;
  const password = read('registry-password') || undefined;
  if (password && !username) throw new UserError('registry-password', 'needs registry-username');
  const toolsSource = checkToolsSource(read('tools-source').trim() || DEFAULT_TOOLS_SOURCE, 'tools-source');
  const qemuCpu = parseQemuCpu(read('qemu-cpu'), 'qemu-cpu');
  const qemu = parseQemuVersion(read('qemu'), 'qemu');
  const stateDir = read('state-dir').trim() || '/var/lib/build-cell';
  if (!stateDir.startsWith('/')) throw new UserError('state-dir', `must be an absolute path, got ${show(stateDir)}`);
  const storeMaxSize = optionalSize(blank(read('store-max-size')), 'store-max-size');
  return {
    artifactName,
    registry: { username, password, tlsVerify: bool(read('tls-verify') || 'true', 'tls-verify') },
    toolsSource,
    ...(qemuCpu ? { qemuCpu } : {}),
    ...(qemu ? { qemu } : {}),
    stateDir,
    ...(storeMaxSize !== undefined ? { storeMaxSize } : {}),
  };
}

function limitInputs(read: InputReader): ActionInputs['limits'] {
  return {
    cpuTimeSeconds: optionalInt(blank(read('cpu-time')), 'cpu-time', 'a whole number of seconds, at least 1'),
    memoryBytes: optionalSize(blank(read('memory')), 'memory'),
    maxProcesses: optionalInt(blank(read('max-processes')), 'max-processes', 'a whole number of processes, at least 1'),
  };
}

function blank(value: string): string | undefined {
  return value.trim() === '' ? undefined : value.trim();
}

/** Non-empty lines, trimmed (a trailing newline of a YAML block scalar is no entry). */
export function lines(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

function cellPathInput(value: string, field: string): string {
  const v = value.trim();
  if (!v.startsWith('/')) throw new UserError(field, `must be an absolute path inside the cell, got ${show(value)}`);
  if (v.split('/').includes('..')) throw new UserError(field, `must not contain '..': ${show(value)}`);
  return v;
}

function splitHostCell(line: string, field: string): { host: string; cell: string } {
  const at = line.lastIndexOf(':/');
  if (at <= 0)
    throw new UserError(
      field,
      `must be HOST:CELL with an absolute cell path (e.g. tools:/opt/tools), got ${show(line)}`,
    );
  return { host: line.slice(0, at), cell: line.slice(at + 1) };
}

/**
 * `KEY=VALUE` lines; a multi-line value uses the GITHUB_ENV heredoc form:
 *   KEY<<EOF
 *   line 1
 *   EOF
 */
export function parseEnvLines(text: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const all = text.split(/\r?\n/);
  for (let i = 0; i < all.length; i++) {
    const line = all[i]!;
    if (!line.trim() || line.trimStart().startsWith('#')) continue;
    const heredoc = /^([^=<\s][^=<]*)<<(\S+)$/.exec(line.trim());
    if (heredoc) {
      const end = all.indexOf(heredoc[2]!, i + 1);
      if (end < 0)
        throw new UserError(
          'env',
          `the value of ${show(heredoc[1])} starts with <<${heredoc[2]} but has no closing ${heredoc[2]} line`,
        );
      out.push([heredoc[1]!, all.slice(i + 1, end).join('\n')]);
      i = end;
      continue;
    }
    const eq = line.indexOf('=');
    if (eq <= 0)
      throw new UserError(
        'env',
        `line ${i + 1} must be KEY=VALUE (or KEY<<DELIMITER for a multi-line value), got ${show(line.trim())}`,
      );
    out.push([line.slice(0, eq).trim(), line.slice(eq + 1)]);
  }
  return out;
}
