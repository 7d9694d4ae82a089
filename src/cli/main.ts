/**
 * The CLI: parse, choose the privilege mode, run the engine (in this process, or through sudo
 * as the action does: a request file for internal-run), map the outcome to an exit code. Errors of build-cell itself are one `build-cell: ...` line on stderr and exit 125.
 */
import { readFileSync } from 'node:fs';
import { chown, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { constants } from 'node:os';
import { ensureDemoImage } from '../demo/busybox-image.js';
import { hostArch } from '../emulation/arch.js';
import { decideEmulation, describeDecision, nativePersonality, thirtyTwoBitNote } from '../emulation/native.js';
import { cellRequest, emulationRequest } from './command-to-request.js';
import { writeResultFile } from './result-file.js';
import type { CommonOptions } from './command.js';
import { parseReference } from '../image/reference.js';
import type { CellRequest, CellRunResult, CellSpecInput } from '../engine.js';
import { reportInstall } from './report-install.js';
import { describeCap } from '../store/cap-report.js';
import { cliInstallRequest, userCacheDir } from './run-args.js';
import { SCRIPT_PATH } from '../cellspec/types.js';
import { BuildCellError, EXIT_BUILD_CELL_ERROR, UserError, errorMessage } from '../util/errors.js';
import { readEngineRequest, runInMode, runToOutcome, type EngineOutcome } from '../engine-entry.js';
import { parseCli, USAGE, type CliCommand } from './args.js';
import { gitWarning, skippedWarning } from '../write-back/workspace.js';
import { choosePrivilege, needsOf, type PrivilegeChoice } from '../privilege/mode.js';
import { rememberFactsIn } from '../util/fact-cache.js';
import type { Owner } from '../util/fs.js';

declare const BUILD_CELL_VERSION: string | undefined;

export async function main(argv: string[]): Promise<number> {
  try {
    return await dispatch(argv);
  } catch (error) {
    process.stderr.write(`build-cell: ${oneLine(errorMessage(error))}\n`);
    return EXIT_BUILD_CELL_ERROR;
  }
}

function oneLine(text: string): string {
  return text.trim().replace(/\s*\n\s*/g, ' | ');
}

async function dispatch(argv: string[]): Promise<number> {
  const uid = process.getuid?.() ?? 0;
  if (argv[0] === INTERNAL_RUN) return internalRun(argv.slice(1));
  const command = parseCli(argv, {
    cwd: process.cwd(),
    env: process.env,
    uid,
    readStdin: () => readFileSync(0, 'utf8'),
  });
  if (command.kind === 'help') {
    process.stdout.write(`${command.text}\n`);
    return 0;
  }
  if (command.kind === 'version') {
    process.stdout.write(`build-cell ${typeof BUILD_CELL_VERSION === 'string' ? BUILD_CELL_VERSION : 'dev'}\n`);
    return 0;
  }
  const log = (message: string) => {
    if (command.verbose) process.stderr.write(`build-cell: ${message}\n`);
  };
  // Host probes (user namespaces, 32-bit execution) are remembered in the state dir (when it exists).
  if ('stateDir' in command) rememberFactsIn(command.stateDir);
  if ('emulation' in command) reportEmulation(command, log);
  // Sessions run their engine through sudo themselves (the session's files are the user's).
  if (
    command.kind === 'session-start' ||
    command.kind === 'session-exec' ||
    command.kind === 'session-end' ||
    command.kind === 'session-step'
  )
    // Loaded only for sessions: their runner conventions (github/) are not a plain run's start-up.
    return (await import('./session.js')).runSessionCommand(command, log);
  // Loaded only for the store's upkeep, never on a cell's start-up.
  if (command.kind === 'store') return (await import('./store.js')).runStoreCommand(command, log);
  const privilege = privilegeFor(command, uid, log);
  switch (command.kind) {
    case 'prepare':
      return prepareCommand(command, privilege, log);
    case 'demo':
      return runCommand(await demoCommand(command, privilege), log, privilege);
    case 'run':
      return runCommand(command, log, privilege);
  }
}

/** The privilege mode of run, prepare and demo, said in the verbose log. */
function privilegeFor(
  command: Extract<CliCommand, { kind: 'run' | 'prepare' | 'demo' }>,
  uid: number,
  log: (m: string) => void,
): PrivilegeChoice {
  const guest = command.kind === 'run' ? command.image.arch : hostArch();
  const mode = 'emulation' in command ? command.emulation : undefined;
  const privilege = choosePrivilege(command.privilege, uid, '--privilege', needsOf(guest, mode));
  log(`privilege ${privilege.mode} (${privilege.reason})`);
  // A rootless cell without subordinate ids cannot chown: said once, where it runs.
  if (privilege.mode !== 'sudo' && privilege.ids && !privilege.ids.uids && command.kind !== 'prepare')
    process.stderr.write(`build-cell: warning: rootless cell: ${privilege.ids.note}\n`);
  return privilege;
}

/** prepare: the image (and with --install its derived image), printed as `DIGEST ROOTFS`. */
async function prepareCommand(
  command: Extract<CliCommand, { kind: 'prepare' }>,
  privilege: PrivilegeChoice,
  log: (m: string) => void,
): Promise<number> {
  const outcome = await enterEngine(
    {
      stateDir: command.stateDir,
      image: command.image,
      spec: { ...PREPARE_SPEC, env: command.env, caches: command.caches },
      owner: ownerFor(privilege),
      inheritImageEnv: true,
      prepareOnly: true,
      ...(command.storeMaxSize !== undefined ? { storeMaxSize: command.storeMaxSize } : {}),
      // Only an install step runs a cell here, and so needs the emulation.
      ...(command.install
        ? { install: cliInstallRequest(command.install, command.env), ...(await emulationRequest(command, log)) }
        : {}),
    },
    privilege,
  );
  if (!outcome.ok) return failed(outcome);
  const { image, install } = outcome.result;
  process.stdout.write(`${image.digest} ${image.rootfs}\n`);
  for (const warning of image.warnings ?? []) process.stderr.write(`build-cell: warning: ${warning}\n`);
  if (image.how) log(`image: ${image.how}`);
  if (install) reportInstall(install, log);
  else log(`resolved=${image.resolved} copied=${image.copied} unpacked=${image.unpacked}`);
  reportCap(outcome.result, log);
  return 0;
}

/**
 * demo: a cell on the busybox image built from the host's own busybox, saying where it runs.
 * The image is built by this process: in the state dir, or, where the engine runs through sudo
 * (and its root owns the state dir), in the user's own cache dir.
 */
async function demoCommand(
  command: Extract<CliCommand, { kind: 'demo' }>,
  privilege: PrivilegeChoice,
): Promise<Extract<CliCommand, { kind: 'run' }>> {
  const ref = await ensureDemoImage(
    privilege.mode === 'sudo' ? join(userCacheDir(process.env), 'build-cell-demo') : join(command.stateDir, 'demo'),
  );
  process.stderr.write(`build-cell: demo image ${ref}\n`);
  return {
    kind: 'run',
    verbose: command.verbose,
    privilege: command.privilege,
    stateDir: command.stateDir,
    image: { ref: parseReference(ref), arch: hostArch(), pull: 'missing', registry: { tlsVerify: true } },
    emulation: 'auto',
    spec: {
      workspacePath: '/workspace',
      workspaceSeed: { kind: 'empty' },
      imports: [],
      caches: [],
      exports: [],
      command: { cwd: '/workspace', executable: '/bin/sh', argv: ['-e', SCRIPT_PATH] },
      script:
        'echo "Hello from a build cell: $(uname -sm), hostname $(hostname), pid $$"\n. /etc/os-release && echo "image: $PRETTY_NAME"\necho "processes visible: $(ls -d /proc/[0-9]* | wc -l)"\n',
      env: [],
      network: 'disabled',
      limits: {},
      cleanup: 'always',
    },
  };
}

async function runCommand(
  command: Extract<CliCommand, { kind: 'run' }>,
  log: (m: string) => void,
  privilege: PrivilegeChoice,
): Promise<number> {
  const outcome = await enterEngine(await cellRequest(command, ownerFor(privilege), log), privilege);
  if (!outcome.ok) return failed(outcome);
  const result = outcome.result;
  if (result.install) reportInstall(result.install, log);
  for (const path of result.writeBack?.skipped ?? [])
    process.stderr.write(`build-cell: warning: ${skippedWarning(path)}\n`);
  if (result.writeBack?.git.length)
    process.stderr.write(`build-cell: warning: ${gitWarning(result.writeBack.git, '--write-back-git')}\n`);
  if (result.writeBack) log(`write-back: ${result.writeBack.written} written, ${result.writeBack.deleted} deleted`);
  report(result, log);
  if (command.resultFile) await writeResultFile(command.resultFile, result, privilege);
  return result.exitCode;
}

/**
 * The CLI's one way into the engine, as the action's and session steps': in this process (root,
 * rootless), or through sudo as a request file for internal-run (see engine-entry.ts).
 */
function enterEngine(request: CellRequest, privilege: PrivilegeChoice): Promise<EngineOutcome> {
  return runInMode(request, privilege.mode, process.argv[1]!);
}

/** A failed outcome as the CLI ends: 128+N for a signal (the cell stopped and cleaned up), else an error. */
function failed(outcome: Extract<EngineOutcome, { ok: false }>): number {
  if (!outcome.signal) throw new BuildCellError(outcome.error);
  process.stderr.write(`build-cell: received ${outcome.signal}: the cell was stopped and cleaned up\n`);
  return 128 + (constants.signals[outcome.signal] ?? 15);
}

/** Native or qemu for this run, and why: in the verbose log, with a warning for a --qemu-cpu nothing uses. */
function reportEmulation(command: CommonOptions, log: (m: string) => void): void {
  const guest = command.image.arch;
  const decision = decideEmulation(guest, command.emulation);
  const said = `emulation: ${describeDecision(guest, decision)}`;
  // The host's own 32-bit sibling under qemu is slower than users expect: said without --verbose too.
  if (decision.emulated && command.emulation === 'auto' && nativePersonality(guest))
    process.stderr.write(`build-cell: ${said}\n`);
  else log(said);
  const note = thirtyTwoBitNote(guest, decision);
  if (note) log(note);
  if (command.qemuCpu && !decision.emulated)
    process.stderr.write(
      `build-cell: warning: --qemu-cpu ${command.qemuCpu} is not used: ${command.image.arch.name} runs natively on this ${process.arch} host (--emulation qemu runs it under qemu)\n`,
    );
}

/** The spec of `prepare --install`: only what the install cell takes from it (see installSpec). */
const PREPARE_SPEC: CellSpecInput = {
  workspacePath: '/workspace',
  workspaceSeed: { kind: 'empty' },
  imports: [],
  caches: [],
  exports: [],
  command: { cwd: '/', executable: '/bin/true', argv: [] },
  env: [],
  network: 'enabled',
  limits: {},
  cleanup: 'always',
};

/** Hidden command: run the engine request served at a socket (as root, through sudo; see engine-entry.ts). */
export const INTERNAL_RUN = 'internal-run';

async function internalRun([address, resultFile]: string[]): Promise<number> {
  if (!address || !resultFile || process.getuid?.() !== 0)
    throw new UserError('internal-run', 'usage: internal-run SOCKET RESULT, as root');
  const request = await readEngineRequest(address);
  rememberFactsIn(request.stateDir);
  const outcome = await runToOutcome(request);
  await writeFile(resultFile, JSON.stringify(outcome), { mode: 0o600 });
  if (request.owner) await chown(resultFile, request.owner.uid, request.owner.gid);
  return outcome.ok ? outcome.result.exitCode : EXIT_BUILD_CELL_ERROR;
}

function report(result: CellRunResult, log: (m: string) => void): void {
  if (result.signal) {
    const name =
      Object.entries(constants.signals).find(([, n]) => n === result.signal)?.[0] ?? `signal ${result.signal}`;
    process.stderr.write(`build-cell: the command was killed by ${name} (exit code ${result.exitCode})\n`);
  }
  if (result.scratchPreserved) process.stderr.write(`build-cell: scratch preserved at ${result.scratch}\n`);
  for (const warning of result.image.warnings ?? []) process.stderr.write(`build-cell: warning: ${warning}\n`);
  if (result.image.how) log(`image: ${result.image.how}`);
  reportCap(result, log);
  log(
    `image ${result.image.digest} (${result.arch}${result.emulation ? `, emulated: ${result.emulation}` : ''}); timings ms ${JSON.stringify(result.timings)}`,
  );
}

/** The size cap's doing: said when it removed something (or could not run), else in the verbose log. */
function reportCap(result: Pick<CellRunResult, 'store'>, log: (m: string) => void): void {
  const { store } = result;
  if (!store) return;
  if (store.warning) process.stderr.write(`build-cell: warning: ${store.warning}\n`);
  else if (store.removed?.length) process.stderr.write(`build-cell: ${describeCap(store)}\n`);
  else log(describeCap(store));
}

/**
 * Who gets the exports, caches and result files: this user when the engine runs through sudo;
 * as root, the user behind `sudo build-cell` (if any); rootless, the user itself (no chown).
 */
function ownerFor(privilege: PrivilegeChoice): Owner | undefined {
  const uid = process.getuid?.() ?? 0;
  if (privilege.mode === 'sudo') return { uid, gid: process.getgid?.() ?? 0 };
  const sudoUid = Number(process.env.SUDO_UID);
  const sudoGid = Number(process.env.SUDO_GID);
  return uid === 0 && Number.isInteger(sudoUid) && sudoUid > 0 && Number.isInteger(sudoGid)
    ? { uid: sudoUid, gid: sudoGid }
    : undefined;
}

export { USAGE };
