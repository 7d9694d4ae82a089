/**
 * What the CLI accepts: the usage text, the flag tables of run and prepare, and the strict
 * parse of flags against a table.
 */
import { parseArgs } from 'node:util';
import { UserError } from '../util/errors.js';

export const USAGE = `Usage:
  build-cell run --image REF [--arch ARCH] [--workspace HOSTDIR|ARCHIVE] [--workspace-path /workspace]
     [--cwd CELLPATH] [--env K=V]... [--import HOST:CELL]... [--cache HOST:CELL]... [--export CELL:HOST]...
     [--network enabled|disabled] [--cpu-time SECONDS] [--memory SIZE(K|M|G)] [--max-processes N]
     [--cleanup always|preserve-on-failure|never] [--tls-verify true|false] [--pull missing|always|never]
     [--state-dir DIR] [--registry-username USER --registry-password-stdin | --authfile FILE]
     [--privilege auto|root|sudo|rootless] [--emulation auto|qemu] [--qemu 7.2|10.0|path] [--qemu-cpu MODEL]
     [--tools-source URL] [--result-file FILE] [--store-max-size SIZE] [--verbose]
     [--install 'SHELL SCRIPT' [--install-key STRING] [--install-registry REPO [--install-push]]]
     [--write-back [--write-back-git]] [--tmpfs CELLPATH[:size=SIZE]]...
     ( --run 'SHELL SCRIPT' | -- EXECUTABLE [ARG...] )
  build-cell prepare --image REF [--arch ARCH] [--emulation auto|qemu] [--qemu 7.2|10.0|path] [--qemu-cpu MODEL]
     [--tools-source URL] [--tls-verify true|false] [--pull ...] [--state-dir DIR]
     [--registry-username USER --registry-password-stdin | --authfile FILE]
     [--install 'SHELL SCRIPT' [--install-key STRING] [--install-registry REPO [--install-push]] [--env K=V]...
      [--cache HOST:CELL]...]
  build-cell demo [--state-dir DIR]
  build-cell session start [--name NAME] --image REF [run's flags] [( --run 'SHELL SCRIPT' | -- EXECUTABLE [ARG...] )]
  build-cell session exec [--name NAME] [--state-dir DIR] [--env K=V]... ( --run 'SHELL SCRIPT' | -- EXECUTABLE [ARG...] )
  build-cell session end [--name NAME] [--state-dir DIR] [--export CELL:HOST]...
  build-cell store list [--state-dir DIR] [--json]
  build-cell store prune [--older-than DURATION] [--max-size SIZE] [--all] [--dry-run] [--state-dir DIR] [--json]
  build-cell store verify [--state-dir DIR] [--json]
  build-cell --help | --version

run, prepare and session start take --store-max-size SIZE: after the run, the least recently used images
are removed until the store fits (never one in use). DURATION: 30m, 12h, 7d, 2w; SIZE: 512M, 20G.

Exit code: the command's own; 128+N when it was killed by signal N; 125 when build-cell itself failed.`;

export const IMAGE_OPTIONS = {
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
  'install-registry': { type: 'string' },
  'install-push': { type: 'boolean' },
  'qemu-cpu': { type: 'string' },
  emulation: { type: 'string' },
  qemu: { type: 'string' },
  'tools-source': { type: 'string' },
  env: { type: 'string', multiple: true },
  cache: { type: 'string', multiple: true },
  'store-max-size': { type: 'string' },
} as const;

export const RUN_OPTIONS = {
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
  tmpfs: { type: 'string', multiple: true },
  'write-back-git': { type: 'boolean' },
} as const;

export type OptionsConfig = NonNullable<NonNullable<Parameters<typeof parseArgs>[0]>['options']>;

export function parse(args: string[], options: OptionsConfig): Record<string, string | boolean | string[] | undefined> {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values as Record<
      string,
      string | boolean | string[] | undefined
    >;
  } catch (error) {
    const message = (error as Error).message.replace(/\. To specify a positional argument starting with a '-'.*$/s, '');
    throw new UserError('arguments', `${message} (put the command after --, see build-cell --help)`);
  }
}
