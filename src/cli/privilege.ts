/**
 * Root is needed for the namespaces, mounts and ownership-preserving unpack. The CLI runs
 * directly as root, or re-runs itself through `sudo -n` (never prompting) with the state dir
 * pinned and the invoking user recorded, so the files it leaves belong to that user.
 */
import { spawn, spawnSync } from 'node:child_process';
import { CellSetupError } from '../util/errors.js';
import type { Privilege } from './args.js';

export type Mode = 'root' | 'sudo';

export interface ProbeResult {
  ok: boolean;
  why?: string;
}

let sudoProbe: ProbeResult | undefined;

/** `sudo -n true`, once per process. */
export function probeSudo(): ProbeResult {
  if (!sudoProbe) {
    const result = spawnSync('sudo', ['-n', 'true'], { encoding: 'utf8', timeout: 10_000 });
    if (result.error) sudoProbe = { ok: false, why: `sudo is not available (${result.error.message})` };
    else if (result.status !== 0) sudoProbe = { ok: false, why: `sudo -n refused: ${(result.stderr || '').trim() || `exit ${result.status}`} (sudo needs a password, or this user may not use it)` };
    else sudoProbe = { ok: true };
  }
  return sudoProbe;
}

export function chooseMode(privilege: Privilege, uid: number): Mode {
  if (uid === 0) return 'root';
  if (privilege === 'root') throw new CellSetupError('--privilege root: build-cell is not running as root (uid ' + uid + ')');
  const sudo = probeSudo();
  if (sudo.ok) return 'sudo';
  throw new CellSetupError(
    `build-cell needs root for its namespaces and mounts: run it as root, or allow this user passwordless sudo. ${sudo.why}`,
  );
}

/** Environment variables the root process needs and sudo would drop. */
const CARRIED_ENV = ['BUILD_CELL_REGISTRY_PASSWORD', 'BUILD_CELL_DEBUG', 'BUILD_CELL_BINFMT', 'RUNNER_DEBUG'];

/**
 * Re-run this CLI as root: `sudo -n --preserve-env=... -- env PATH=$PATH node SCRIPT ARGS`.
 * PATH is carried in argv (sudo's secure_path would replace it); secrets only in the environment.
 */
export function runUnderSudo(args: string[], extraEnv: Record<string, string> = {}, script: string = process.argv[1]!): Promise<number> {
  const env = { ...process.env, ...extraEnv };
  const carried = CARRIED_ENV.filter((name) => env[name] !== undefined);
  const sudoArgs = ['-n', ...(carried.length ? [`--preserve-env=${carried.join(',')}`] : []), '--', 'env', `PATH=${process.env.PATH ?? ''}`, process.execPath, script, ...args];
  return new Promise((resolve, reject) => {
    const child = spawn('sudo', sudoArgs, { stdio: 'inherit', env });
    const forward = (signal: NodeJS.Signals) => child.kill(signal);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    child.on('error', (error) => reject(new CellSetupError(`cannot run sudo: ${error.message}`)));
    child.on('close', (code, signal) => {
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
      resolve(code ?? 128 + (signal === 'SIGKILL' ? 9 : signal === 'SIGINT' ? 2 : 15));
    });
  });
}
