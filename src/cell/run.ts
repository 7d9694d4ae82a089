/**
 * The namespace runner: starts the inner helper as PID 1 of fresh namespaces,
 *   setpriv --pdeathsig KILL -- unshare [--user] --fork --kill-child --pid --mount
 *     --propagation private --uts --ipc [--net] -- dash HELPER OPS...
 * hands it the engine's mount namespace on fd 5 (for its ns-check), feeds it "go" and the
 * environment over fd 3 once the scratch is staged, and reads the outcome from fd 4.
 * --pdeathsig and --kill-child tie the cell's life to the engine's: if the engine dies, even by
 * SIGKILL, every process of the cell dies and its mounts vanish with its mount namespace.
 */
import type { ChildProcess } from 'node:child_process';
import { lazyChildProcess } from '../util/builtins.js';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { chmod, mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { CellSetupError } from '../util/errors.js';
import { randomHex } from '../util/random.js';
import { tool, which } from '../util/which.js';
import { HELPER_HASH, HELPER_SCRIPT } from './helper-script.js';
import { rootlessUnshareArgs, type RootlessIds } from '../privilege/userns.js';
import { HOST_MNT_NS_FD, type CellPlan, type HelperTools } from './plan.js';
import { helperArgv } from './helper-argv.js';

export interface CellOutcome {
  exitCode: number;
  signal?: number;
}

export interface NamespaceOptions {
  network: 'enabled' | 'disabled';
  /**
   * none: no user namespace around the helper (root; the command gets one of its own, see the
   * helper's enter-userns); map-root: rootless, the invoking user mapped to root (and `ids`
   * mapped to 1..N, when the user has subordinate ranges).
   */
  userNamespace: 'none' | 'map-root';
  ids?: RootlessIds;
  tools: HelperTools;
  /**
   * linux32: a 32-bit guest running natively on a 64-bit host (i386 on x86-64, armhf on
   * arm64). The cell starts under `setarch linux32`, so `uname -m` says i686 / armv8l as on
   * 32-bit hardware and builds that ask uname (config.guess) configure for the guest.
   */
  personality?: 'linux32';
  /** The cell's stderr on this process's stdout (one stream in a runner step's log; see engine-types.ts). */
  stderrToStdout?: boolean;
}

/** The host programs the helper needs, by absolute path; a clear error names a missing one. */
export function helperTools(): HelperTools {
  // dash reports how a job ended; other shells run the helper too, but cannot tell a signal from exit 128+N.
  return { unshare: tool('unshare'), env: tool('env'), prlimit: tool('prlimit'), shell: which('dash') ?? '/bin/sh' };
}

/** Write the helper once per content into STATE/helper/, root-owned and read-only. */
export async function installHelper(stateDir: string): Promise<string> {
  const dir = join(stateDir, 'helper');
  const path = join(dir, `helper-${HELPER_HASH}.sh`);
  let current: string | undefined;
  try {
    current = readFileSync(path, 'utf8');
  } catch {
    current = undefined;
  }
  if (current !== HELPER_SCRIPT) {
    await mkdir(dir, { recursive: true, mode: 0o755 });
    // A name of its own: concurrent cells may install the helper at the same time.
    const temp = `${path}.${process.pid}.${randomHex(4)}.tmp`;
    await writeFile(temp, HELPER_SCRIPT, { mode: 0o755 });
    await chmod(temp, 0o755);
    await rename(temp, path);
  }
  return path;
}

/**
 * One NAME=VALUE for the helper's control channel: "N NAME=VALUE", where N counts the entry's
 * newlines (the helper reads that many more lines with the builtin `read -r`, no decoding).
 */
export function encodeEnvEntry(name: string, value: string): string {
  const entry = `${name}=${value}`;
  return `${entry.split('\n').length - 1} ${entry}`;
}

export function unshareArgs(options: Pick<NamespaceOptions, 'network' | 'userNamespace' | 'ids'>): string[] {
  return [
    ...(options.userNamespace === 'map-root' ? rootlessUnshareArgs(options.ids) : []),
    // Private propagation before the helper's first mount: nothing it mounts reaches the host.
    '--fork',
    '--kill-child',
    '--pid',
    '--mount',
    '--propagation',
    'private',
    '--uts',
    '--ipc',
    ...(options.network === 'disabled' ? ['--net'] : []),
  ];
}

/** Parse the helper's status channel. Pure. */
export function parseStatus(text: string): CellOutcome | { error: string } | undefined {
  const lines = text.split('\n');
  const error = lines.find((l) => l.startsWith('error '));
  if (error) return { error: error.slice('error '.length) };
  const exit = lines.find((l) => /^exit \d+$/.test(l));
  if (!exit) return undefined;
  const code = Number(exit.slice('exit '.length));
  const job = lines
    .slice(lines.indexOf(exit) + 1)
    .filter((l) => l.trim() && l !== 'ready')
    .join('\n');
  // dash says "Done" or "Done(N)" for an exit; anything else (Killed, Terminated, ...) is a signal.
  if (code > 128 && job && !job.includes('Done')) return { exitCode: code, signal: code - 128 };
  return { exitCode: code };
}

export interface RunningCell {
  /**
   * Let the helper go on from wait-go (the scratch is staged) and hand it the command's
   * environment. Until then it has only checked its namespace and the runtime root.
   */
  go(env: Array<[string, string]>): void;
  /** Resolves once the command has ended and the cell is quiescent (or rejects on a setup failure). */
  outcome: Promise<CellOutcome>;
  /** The cell's filesystem as its processes saw it, reachable from the host until release(). */
  viewRoot: string;
  /** Let the helper exit: the namespaces and their mounts vanish. */
  release(): Promise<void>;
  /** Kill every process of the cell now. */
  kill(): void;
}

/**
 * Start the helper in its namespaces. It stops at wait-go, so the engine can stage the scratch
 * meanwhile (process start-up and staging overlap) and then call go().
 */
export function startCell(plan: CellPlan, helperPath: string, options: NamespaceOptions): RunningCell {
  const setpriv = tool('setpriv');
  const { unshare, shell } = options.tools;
  const personality = options.personality ? [tool('setarch'), options.personality] : [];
  const args = [
    '--pdeathsig',
    'KILL',
    '--',
    ...personality,
    unshare,
    ...unshareArgs(options),
    '--',
    shell,
    helperPath,
    ...helperArgv(plan),
  ];
  // The helper's ns-check compares its mount namespace with this one, handed over as an open fd.
  const hostMountNs = openSync('/proc/self/ns/mnt', 'r');
  let child: ChildProcess;
  try {
    child = lazyChildProcess().spawn(setpriv, args, {
      stdio: [
        'inherit',
        'inherit',
        options.stderrToStdout ? 1 : 'inherit',
        'pipe',
        'pipe',
        ...Array<'ignore'>(HOST_MNT_NS_FD - 5).fill('ignore'),
        hostMountNs,
      ],
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' },
    });
  } finally {
    closeSync(hostMountNs);
  }
  const control = child.stdio[3] as Writable;
  const status = child.stdio[4] as Readable;
  control.on('error', () => undefined);
  let statusText = '';
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal }));
  });

  const outcome = new Promise<CellOutcome>((resolve, reject) => {
    child.on('error', (error) => reject(new CellSetupError(`cannot start the cell with ${setpriv}: ${error.message}`)));
    status.on('data', (chunk: Buffer) => {
      statusText += chunk.toString();
      if (!/^ready$/m.test(statusText)) return;
      const parsed = parseStatus(statusText);
      if (parsed && !('error' in parsed)) resolve(parsed);
    });
    void closed.then(({ code, signal }) => {
      const parsed = parseStatus(statusText);
      if (parsed && 'error' in parsed) reject(new CellSetupError(`cell setup failed: ${parsed.error}`));
      else if (parsed) resolve(parsed);
      else
        reject(
          new CellSetupError(
            `the cell ended before its command ran (unshare ${signal ? `killed by ${signal}` : `exited with ${code}`}); see the messages above`,
          ),
        );
    });
  });

  // A setup failure before the engine awaits the outcome (it stages meanwhile) is not unhandled.
  outcome.catch(() => undefined);

  return {
    go: (env) => {
      control.write(['go', ...env.map(([name, value]) => encodeEnvEntry(name, value)), '', ''].join('\n'));
    },
    outcome,
    viewRoot: `/proc/${child.pid}/root`,
    release: async () => {
      control.end();
      await closed;
    },
    kill: () => child.kill('SIGKILL'),
  };
}

export function hostResolvConf(): string | undefined {
  return existsSync('/etc/resolv.conf') ? '/etc/resolv.conf' : undefined;
}
