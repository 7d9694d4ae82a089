/**
 * The sudo mode: the CLI runs its hidden internal-run command through `sudo -n` (never
 * prompting) on a request file that names the state dir and the invoking user, so the files
 * it leaves belong to that user (see engine-entry.ts). Choosing the mode is ./mode.ts.
 */
import { lazyChildProcess } from '../util/builtins.js';
import { CellSetupError } from '../util/errors.js';
import type { ProbeResult } from './userns.js';

/** Environment variables the root process needs and sudo would drop. */
const CARRIED_ENV = ['BUILD_CELL_DEBUG', 'BUILD_CELL_BINFMT', 'RUNNER_DEBUG'];

/**
 * Run this CLI as root: `sudo -n --preserve-env=... -- env PATH=$PATH node SCRIPT ARGS`.
 * PATH is carried in argv (sudo's secure_path would replace it); never a secret (argv is public).
 */
export function runUnderSudo(
  args: string[],
  extraEnv: Record<string, string> = {},
  script: string = process.argv[1]!,
): Promise<number> {
  const env = { ...process.env, ...extraEnv };
  const carried = CARRIED_ENV.filter((name) => env[name] !== undefined);
  const sudoArgs = [
    '-n',
    ...(carried.length ? [`--preserve-env=${carried.join(',')}`] : []),
    '--',
    'env',
    `PATH=${process.env.PATH ?? ''}`,
    process.execPath,
    script,
    ...args,
  ];
  return new Promise((resolve, reject) => {
    const child = lazyChildProcess().spawn('sudo', sudoArgs, { stdio: 'inherit', env });
    // A cancelled job or a closed terminal: the root side stops the cell and cleans up.
    const forward = (signal: NodeJS.Signals) => child.kill(signal);
    const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
    for (const signal of signals) process.on(signal, forward);
    child.on('error', (error) => reject(new CellSetupError(`cannot run sudo: ${error.message}`)));
    child.on('close', (code, signal) => {
      for (const signal of signals) process.off(signal, forward);
      resolve(code ?? 128 + (signal === 'SIGKILL' ? 9 : signal === 'SIGINT' ? 2 : 15));
    });
  });
}

let sudoProbe: ProbeResult | undefined;

/** `sudo -n true`, once per process. */
export function probeSudo(): ProbeResult {
  if (!sudoProbe) {
    const result = lazyChildProcess().spawnSync('sudo', ['-n', 'true'], { encoding: 'utf8', timeout: 10_000 });
    if (result.error) sudoProbe = { ok: false, why: `sudo is not available (${result.error.message})` };
    else if (result.status !== 0)
      sudoProbe = {
        ok: false,
        why: `sudo -n refused: ${(result.stderr || '').trim() || `exit ${result.status}`} (sudo needs a password, or this user may not use it)`,
      };
    else sudoProbe = { ok: true };
  }
  return sudoProbe;
}
