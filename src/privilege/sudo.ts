/**
 * The sudo mode: the CLI (or the action's engine) re-runs itself through `sudo -n` (never
 * prompting) with the state dir pinned and the invoking user recorded, so the files it
 * leaves belong to that user. Choosing the mode is src/privilege.ts.
 */
import { lazyChildProcess } from '../util/builtins.js';
import { CellSetupError } from '../util/errors.js';

/** Environment variables the root process needs and sudo would drop. */
const CARRIED_ENV = [
  'BUILD_CELL_REGISTRY_PASSWORD',
  'BUILD_CELL_DEBUG',
  'BUILD_CELL_BINFMT',
  'BUILD_CELL_PRIVILEGE_REASON',
  'RUNNER_DEBUG',
];

/**
 * Re-run this CLI as root: `sudo -n --preserve-env=... -- env PATH=$PATH node SCRIPT ARGS`.
 * PATH is carried in argv (sudo's secure_path would replace it); secrets only in the environment.
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
