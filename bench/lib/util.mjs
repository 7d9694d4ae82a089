// Small utilities: logging, shell quoting, statistics, formatting, running commands.
import { spawnSync } from 'node:child_process';

export const log = (...a) => console.error('[bench]', ...a);
/** POSIX single-quote one word (for hyperfine's shell-words splitting and for sh -c). */
export const q = (s) => (/^[A-Za-z0-9_/.:=@%+,-]+$/.test(s) ? s : `'${String(s).replace(/'/g, `'\\''`)}'`);
export const cmdline = (args) => args.map(q).join(' ');
export const median = (xs) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
export const round = (x, d = 1) => (Number.isFinite(x) ? Math.round(x * 10 ** d) / 10 ** d : null);

/** No single timed run may take longer (a hung cell fails the bench instead of stalling it). */
export const RUN_LIMIT_S = 300;

/**
 * Run a command, throw with its stderr when it fails; returns stdout. With `limitS`, it runs under
 * coreutils `timeout`, which signals the whole process group (build-cell then stops its cell).
 */
export function run(cmd, args, { env, cwd, input, allowFail = false, inherit = false, timeout, limitS } = {}) {
  if (limitS) {
    args = ['-k', '15', String(Math.ceil(limitS)), cmd, ...args];
    cmd = 'timeout';
  }
  const r = spawnSync(cmd, args, {
    env: env ?? process.env,
    cwd,
    input,
    encoding: 'utf8',
    maxBuffer: 64 << 20,
    timeout,
    stdio: inherit ? ['ignore', 'inherit', 'inherit'] : ['pipe', 'pipe', 'pipe'],
  });
  if (r.error) {
    if (allowFail) return undefined;
    throw new Error(`${cmd} ${cmdline(args)}: ${r.error.message}`);
  }
  if (r.status !== 0 && !allowFail) {
    const how =
      cmd === 'timeout' && (r.status === 124 || r.status === 137)
        ? `timed out after ${args[2]} s`
        : `exited ${r.status ?? r.signal}`;
    throw new Error(
      `${cmd} ${cmdline(args)} ${how}\n${String(r.stderr ?? '')
        .trim()
        .slice(-3000)}`,
    );
  }
  return r.status === 0 ? (r.stdout ?? '') : undefined;
}
/** One untimed run of an argv, under the per-run time limit; returns stdout. */
export const once = (args, o = {}) => run(args[0], args.slice(1), { limitS: RUN_LIMIT_S, ...o });
export const have = (bin) => spawnSync('sh', ['-c', `command -v ${q(bin)}`], { encoding: 'utf8' }).status === 0;
export const version = (cmd, args = ['--version']) =>
  (run(cmd, args, { allowFail: true }) ?? '').split('\n')[0].trim() || undefined;

export function fmtMs(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return 'n/a';
  if (ms < 10) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}
export const fmtRatio = (r) =>
  Number.isFinite(r) ? (r >= 10 ? `${r.toFixed(0)}×` : r >= 0.01 ? `${r.toFixed(2)}×` : `${r.toPrecision(1)}×`) : 'n/a';
export const fmtPct = (r) => (Number.isFinite(r) ? `${(r * 100).toFixed(r < 0.1 ? 2 : 1)} %` : 'n/a');
