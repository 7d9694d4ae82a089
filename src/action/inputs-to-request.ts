/**
 * Inputs -> engine request: a pure function, unit-tested without root. It decides the cell's
 * command, environment (a curated set of GitHub variables, then the user's), mounts and the
 * file-command directory through which scripts in the cell set step outputs.
 */
import { join } from 'node:path';
import { covers } from '../cellspec/paths.js';
import type { CellRequest, QemuSelection } from '../engine.js';
import { scriptCommand, type BuildCellSpec } from '../cellspec/types.js';
import { isWorkspaceArchive } from '../cellspec/validate.js';
import type { Owner } from '../util/fs.js';
import type { ActionInputs } from './inputs.js';
import type { InstallIdentity } from '../install/key.js';
import { sourceRepository } from '../install/registry.js';
import { FILE_COMMANDS, FILE_COMMANDS_CELL_DIR } from '../github/file-commands.js';
import { PASSED_GITHUB_VARS } from '../github/variables.js';

export { FILE_COMMANDS, FILE_COMMANDS_CELL_DIR } from '../github/file-commands.js';
export { PASSED_GITHUB_VARS } from '../github/variables.js';

export interface ActionContext {
  env: NodeJS.ProcessEnv;
  runnerTemp: string;
  /** Host directory holding the file-command files for this run. */
  fileCommandsDir: string;
  /** Host directories for caches given only by their cell path, in input order. */
  cacheDirs: string[];
  owner?: Owner;
  digest?: string;
  imageCacheDir?: string;
  /** Where the Actions cache restores the install step's derived layout to (and saves it from). */
  installCacheDir?: string;
  /** The qemu build the `qemu` input chose, as resolved with the other tools. */
  qemu?: QemuSelection;
  /** Whether this job may push to install-registry (install-push.ts decides). */
  installPush?: boolean;
}

/** The host directory for a cache given only by its cell path. */
export function managedCacheDir(runnerTemp: string, index: number, cellPath: string): string {
  return join(runnerTemp, 'build-cell', 'caches', `${index}${cellPath.replace(/[^A-Za-z0-9._-]+/g, '_')}`);
}

export function commandFor(inputs: ActionInputs): BuildCellSpec['command'] {
  if (inputs.command.kind === 'argv') {
    const [executable, ...argv] = inputs.command.argv;
    return { cwd: inputs.workingDirectory, executable: executable!, argv };
  }
  // A session without a first command: nothing runs (the engine only prepares the image).
  if (inputs.command.kind === 'none') return { cwd: inputs.workingDirectory, executable: 'true', argv: [] };
  return { cwd: inputs.workingDirectory, ...scriptCommand(inputs.command.shell) };
}

export function cellEnv(inputs: ActionInputs, env: NodeJS.ProcessEnv): Array<[string, string]> {
  const github: Array<[string, string]> = PASSED_GITHUB_VARS.flatMap((name): Array<[string, string]> =>
    env[name] !== undefined ? [[name, env[name]]] : [],
  );
  const fileCommands = Object.entries(FILE_COMMANDS).map(([name, file]): [string, string] => [
    name,
    `${FILE_COMMANDS_CELL_DIR}/${file}`,
  ]);
  const merged = new Map<string, string>([
    ...github,
    ['GITHUB_WORKSPACE', inputs.workspacePath],
    ...fileCommands,
    ...inputs.env,
  ]);
  return [...merged];
}

/** What names the install step (its key's parts): the request's and the Actions cache's, from here alone. */
export function installIdentity(inputs: ActionInputs): InstallIdentity | undefined {
  if (!inputs.install) return undefined;
  const { script, key, shell } = inputs.install;
  return { script, key, shell, keyEnvNames: inputs.env.map(([name]) => name) };
}

/** The install step: the cell's environment less the file commands (the install sets no step outputs), the user's caches. */
function installRequest(
  inputs: ActionInputs,
  ctx: ActionContext,
  caches: CellRequest['spec']['caches'],
): CellRequest['install'] {
  if (!inputs.install) return undefined;
  const fileCommandNames = new Set<string>(Object.keys(FILE_COMMANDS));
  const registry = inputs.install.registry;
  const source = sourceRepository(ctx.env);
  return {
    ...installIdentity(inputs)!,
    env: cellEnv(inputs, ctx.env).filter(([name]) => !fileCommandNames.has(name)),
    caches: caches.filter((c) => !covers(inputs.workspacePath, c.destination)),
    cacheDir: ctx.installCacheDir,
    ...(registry ? { registry: { repository: registry.repository, push: !!ctx.installPush } } : {}),
    ...(source ? { source } : {}),
  };
}

export function toCellRequest(inputs: ActionInputs, ctx: ActionContext): CellRequest {
  const workspace = inputs.workspace;
  const userCaches = inputs.caches.map((m, i) => ({ source: m.host ?? ctx.cacheDirs[i]!, destination: m.cell }));
  const install = installRequest(inputs, ctx, userCaches);
  return {
    ...(install ? { install } : {}),
    ...(inputs.writeBack ? { writeBack: true } : {}),
    ...(inputs.writeBackGit ? { writeBackGit: true } : {}),
    // The cell's output is the step's log: one stream, in order with the stop-commands markers.
    stderrToStdout: true,
    ...(inputs.qemuCpu ? { qemuCpu: inputs.qemuCpu } : {}),
    emulation: inputs.emulation,
    ...(ctx.qemu ? { qemu: ctx.qemu } : {}),
    stateDir: inputs.stateDir,
    ...(inputs.storeMaxSize !== undefined ? { storeMaxSize: inputs.storeMaxSize } : {}),
    owner: ctx.owner,
    inheritImageEnv: true,
    image: {
      ref: inputs.image,
      arch: inputs.arch,
      // A tag is always re-resolved (one manifest request; by the action when it keys the image
      // cache, then handed over as `digest`), so a moved tag never runs a stale image. A digest
      // pin is never re-resolved: no network when the image is in the store.
      pull: inputs.image.pinnedDigest ? 'missing' : 'always',
      registry: {
        tlsVerify: inputs.registry.tlsVerify,
        username: inputs.registry.username,
        password: inputs.registry.password,
      },
      digest: ctx.digest,
      cacheDir: ctx.imageCacheDir,
    },
    spec: {
      workspacePath: inputs.workspacePath,
      workspaceSeed: !workspace
        ? { kind: 'empty' }
        : isWorkspaceArchive(workspace)
          ? { kind: 'archive', path: workspace }
          : { kind: 'snapshot', path: workspace },
      imports: inputs.imports.map((m) => ({ source: m.host, destination: m.cell })),
      caches: [...userCaches, { source: ctx.fileCommandsDir, destination: FILE_COMMANDS_CELL_DIR }],
      exports: inputs.exports.map((m) => ({ source: m.cell, destination: m.host })),
      ...(inputs.tmpfs.length ? { tmpfs: inputs.tmpfs } : {}),
      command: commandFor(inputs),
      env: cellEnv(inputs, ctx.env),
      network: inputs.network,
      limits: inputs.limits,
      cleanup: inputs.cleanup,
      ...(inputs.command.kind === 'script' ? { script: inputs.command.script } : {}),
    },
  };
}
