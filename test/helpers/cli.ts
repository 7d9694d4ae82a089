/**
 * Drive the built CLI (dist/cli.js) exactly as users and the acceptance tests do, and check
 * that a run left the host as it was.
 */
import { execFileSync, spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, existsSync, lstatSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect } from 'vitest';
import { REPO_ROOT } from './fixtures.js';

/** The built CLI; BUILD_CELL_TEST_CLI runs the tests against another bundle (e.g. one of a work tree, built elsewhere). */
export const CLI = process.env.BUILD_CELL_TEST_CLI || join(REPO_ROOT, 'dist', 'cli.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunCliOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  input?: string;
  /** The Node binary (default: the one running the tests). */
  node?: string;
  /** A command to run the CLI through, e.g. ['runuser', '-u', 'someone', '--']. */
  wrapper?: string[];
  signalAfterMs?: { signal: NodeJS.Signals; ms: number };
}

export function runCli(args: string[], options: RunCliOptions = {}): Promise<CliResult> {
  const command = [...(options.wrapper ?? []), options.node ?? process.execPath, CLI, ...args];
  return new Promise((resolve, reject) => {
    const child = spawn(command[0]!, command.slice(1), {
      cwd: options.cwd ?? REPO_ROOT,
      env: options.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    if (options.signalAfterMs) setTimeout(() => child.kill(options.signalAfterMs!.signal), options.signalAfterMs.ms);
    child.on('close', (code, signal) =>
      resolve({ code: code ?? 128 + (signal === 'SIGKILL' ? 9 : 15), stdout, stderr }),
    );
    child.stdin.end(options.input ?? '');
  });
}

/** The run succeeded; if not, the message names it and ends with the tails of its output. */
export function expectOk(r: CliResult, what: string): void {
  expect(r.code, `${what}\n--- stdout:\n${r.stdout.slice(-3000)}\n--- stderr:\n${r.stderr.slice(-3000)}`).toBe(0);
}

export function tempDir(prefix = 'bc-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/** What a run must not change on the host. */
export interface HostSnapshot {
  mounts: string;
  binfmt: string;
  cgroups: string[];
  /** Top-level entries of a few host places that nothing in a test may write (see SENTINELS). */
  sentinels: SentinelState;
}

/**
 * Host places a cell (or the engine acting on a planted link) must never write to, checked
 * cheaply: only their top-level entries, each as its type and, where `times` is set, a
 * regular file's size and mtime (a directory's own mtime churns with its content).
 * `onlyNew`: only entries that appear count (other work on the machine rewrites and removes
 * its own files in /tmp). `ignore` names what concurrently running tests (and the tools they
 * start) legitimately create or rewrite there: the temp dirs of tempDir(), the harnesses and
 * the fixture builders (test/fixtures/*.sh, run on first use while other files test),
 * the user database that test/helpers/users.ts edits. BUILD_CELL_TEST_HOST_IGNORE (a regular
 * expression over absolute paths) silences more, for a machine shared with other work.
 */
const SENTINELS: ReadonlyArray<{ dir: string; times?: boolean; onlyNew?: boolean; ignore?: RegExp }> = [
  { dir: '/' },
  {
    dir: '/etc',
    times: true,
    ignore: /^((passwd|group|shadow|gshadow|subuid|subgid)(-|\.lock|\+|\.\d+)?|\.pwd\.lock|ld\.so\.cache)$/,
  },
  {
    dir: '/root',
    ignore: /^\.(bash_history|lesshst|viminfo|wget-hsts|python_history|node_repl_history|npm|cache|config|local)$/,
  },
  { dir: '/usr/local/bin', times: true },
  { dir: '/usr/local/sbin', times: true },
  { dir: '/etc/binfmt.d', times: true },
  { dir: '/usr/lib/binfmt.d', times: true },
  // Also the random names of tools' temp dirs: Python's tempfile (tmpXXXXXXXX), nanoid (ncc builds).
  {
    dir: '/tmp',
    onlyNew: true,
    ignore:
      /^(bc-|build-cell-|build-busybox-images\.|build-conformance-images\.|build-debian-image\.|results-service-|harness-selftest-|bash_|vitest|tsx-|node-compile-cache|v8-compile-cache|hsperfdata_|systemd-private-|\.X11-unix|\.ICE-unix|\.font-unix)|^tmp[a-z0-9_]{8}$|^[A-Za-z0-9_-]{21}$/,
  },
];

/** Names the after-check's self-test plants (suffixed with its PID); other test processes ignore them. */
export const SELF_TEST_PREFIX = 'sentinel-selftest-';

/** path -> "type[, size and mtime]"; an entry of an onlyNew place is keyed with a leading '+'. */
export type SentinelState = Map<string, string>;

function sentinelState(): SentinelState {
  const state: SentinelState = new Map();
  for (const { dir, times, onlyNew, ignore } of SENTINELS) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      // The self-test's names are never ignored: `sentinel-selftest-PID` with a 3-digit PID is
      // 21 characters, a nanoid's length.
      if (ignore?.test(name) && !name.startsWith(SELF_TEST_PREFIX)) continue;
      const path = join(dir, name);
      const info = lstatSync(path, { throwIfNoEntry: false });
      if (!info) continue;
      const kind = info.isSymbolicLink() ? 'link' : info.isDirectory() ? 'dir' : info.isFile() ? 'file' : 'other';
      state.set(
        onlyNew ? `+${path}` : path,
        times && kind === 'file' ? `${kind}, ${info.size} bytes, mtime ${info.mtimeMs}` : kind,
      );
    }
  }
  return state;
}

/** Differences in the sentinel places, as readable lines (empty: nothing changed). */
export function sentinelChanges(before: SentinelState, after: SentinelState): string[] {
  const extra = process.env.BUILD_CELL_TEST_HOST_IGNORE
    ? new RegExp(process.env.BUILD_CELL_TEST_HOST_IGNORE)
    : undefined;
  // What the after-check's own self-test (in another test process) plants for a moment.
  const foreignSelfTest = (path: string) => {
    const pid = new RegExp(`/${SELF_TEST_PREFIX}(\\d+)$`).exec(path)?.[1];
    return pid !== undefined && pid !== String(process.pid);
  };
  const out: string[] = [];
  for (const [key, now] of after) {
    const path = key.replace(/^\+/, '');
    if (extra?.test(path) || foreignSelfTest(path)) continue;
    const was = before.get(key);
    if (was === undefined) out.push(`new: ${path} (${now})`);
    else if (was !== now && !key.startsWith('+')) out.push(`changed: ${path} (${was} -> ${now})`);
  }
  for (const [key, was] of before) {
    if (!after.has(key) && !key.startsWith('+') && !extra?.test(key) && !foreignSelfTest(key))
      out.push(`removed: ${key} (${was})`);
  }
  return out.sort();
}

/**
 * Every registration of the host's (global) binfmt_misc instance, byte for byte. When the
 * host has not mounted it, it is read through a throwaway private mount namespace, so the
 * check is real everywhere and changes nothing. Like a cgroup (below), a build-cell rule is
 * left out while a process still names it: another test file's cell (a global rule exists for
 * as long as its cell runs); one that nothing names any more is a leak and is compared.
 */
function binfmtState(): string {
  const dir = '/proc/sys/fs/binfmt_misc';
  let entries: Array<[string, string]>;
  if (existsSync(join(dir, 'status'))) {
    // `register` is write-only.
    entries = readdirSync(dir)
      .filter((name) => name !== 'register')
      .map((name) => [name, readFileSync(join(dir, name), 'utf8')]);
  } else {
    // Each entry: NAME \036 CONTENT \035.
    const script = `mount -t binfmt_misc binfmt_misc ${dir} && cd ${dir} && for f in $(ls); do [ "$f" = register ] || { printf '%s\\036' "$f"; cat "$f"; printf '\\035'; }; done`;
    const out = execFileSync('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', script], {
      encoding: 'utf8',
    });
    entries = out
      .split('\x1d')
      .filter(Boolean)
      .map((entry) => entry.split('\x1e', 2) as [string, string]);
  }
  return entries
    .filter(([name]) => !(name.startsWith('build-cell-') && strayProcesses(name).length > 0))
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, content]) => `${name}:${content}`)
    .join('\n');
}

function buildCellCgroups(): string[] {
  return ['/sys/fs/cgroup/pids', '/sys/fs/cgroup'].flatMap((d) =>
    existsSync(d) ? readdirSync(d).filter((n) => n.startsWith('build-cell-')) : [],
  );
}

export function snapshotHost(): HostSnapshot {
  return {
    mounts: readFileSync('/proc/self/mountinfo', 'utf8'),
    binfmt: binfmtState(),
    cgroups: buildCellCgroups(),
    sentinels: sentinelState(),
  };
}

/** Processes whose command line mentions the state dir (cells that outlived their run). */
export function strayProcesses(marker: string): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmd.includes(marker) && Number(pid) !== process.pid) out.push(`${pid}: ${cmd}`);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Loop devices backed by a file under `dir` (an image a cell mounted), as "loopN FILE". */
export function loopDevicesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync('/sys/block').filter((n) => n.startsWith('loop'))) {
    try {
      const file = readFileSync(`/sys/block/${name}/loop/backing_file`, 'utf8').trim();
      if (file === dir || file.startsWith(`${dir}/`)) out.push(`${name} ${file}`);
    } catch {
      // not bound
    }
  }
  return out;
}

/**
 * The after-check of every integration test: the host is as it was before the run. A loop
 * device a cell's image mount used is freed when the cell's mount namespace is torn down,
 * which the kernel finishes shortly after the cell's last process: it is given a moment.
 */
export function expectHostUnchanged(before: HostSnapshot, stateDir?: string): void {
  const after = snapshotHost();
  if (stateDir) expect(strayProcesses(stateDir), 'processes that outlived their run').toEqual([]);
  if (stateDir) {
    const until = Date.now() + 5000;
    while (loopDevicesUnder(stateDir).length && Date.now() < until) spawnSync('sleep', ['0.1']);
    expect(loopDevicesUnder(stateDir), 'loop devices left on images of the state dir').toEqual([]);
  }
  expect(after.mounts, 'host mount table').toBe(before.mounts);
  expect(after.binfmt, 'host binfmt_misc state').toBe(before.binfmt);
  // Another test file's cell may be running meanwhile: a cgroup is leaked when its creator is gone.
  const leaked = after.cgroups.filter(
    (name) => !before.cgroups.includes(name) && !existsSync(`/proc/${/^build-cell-(\d+)-/.exec(name)?.[1] ?? 0}`),
  );
  expect(leaked, 'build-cell cgroups left behind').toEqual([]);
  expect(
    sentinelChanges(before.sentinels, after.sentinels),
    'host sentinel places (/, /etc, /root, /usr/local, binfmt.d, /tmp)',
  ).toEqual([]);
}

/**
 * Run `fn` with a fresh state dir, then remove it and check that the host is as it was.
 * A failure of `fn` itself is reported first.
 */
export async function withStateDir<T>(fn: (stateDir: string) => Promise<T>, prefix = 'bc-state-'): Promise<T> {
  const before = snapshotHost();
  const stateDir = tempDir(prefix);
  let result: T;
  try {
    result = await fn(stateDir);
  } catch (error) {
    await removeDir(stateDir);
    throw error;
  }
  const strays = strayProcesses(stateDir);
  await removeDir(stateDir);
  expect(strays, 'processes that outlived their run').toEqual([]);
  expectHostUnchanged(before);
  return result;
}

/** A build-cell failure: exit 125 and one `build-cell: ...` line on stderr matching `pattern`. */
export function expectRefused(result: CliResult, pattern: RegExp): void {
  expect(result.code, result.stderr).toBe(125);
  const lines = result.stderr.split('\n').filter((l) => l.trim());
  expect(lines, result.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^build-cell: /);
  expect(lines[0]).toMatch(pattern);
}

/**
 * Hooks for a file of cell tests: each test gets a fresh work dir (`bc-NAME-work-*`, given to
 * `setWork`), and afterwards the host after-check runs (with the file's state dir, for stray
 * processes), then the work dir is removed.
 */
export function hostCheckedWork(name: string, setWork: (dir: string) => void, stateDir: () => string): void {
  let before: HostSnapshot | undefined;
  let work = '';
  beforeEach(() => {
    work = tempDir(`bc-${name}-work-`);
    setWork(work);
    before = snapshotHost();
  });
  afterEach(async () => {
    try {
      expectHostUnchanged(before!, stateDir());
    } finally {
      await removeDir(work);
    }
  });
}

/**
 * A full disk without touching the host's: a fresh dir `at` gets a tmpfs of `size` (e.g. '1m')
 * in a mount namespace of its own, where the shell `lines` run with $1 = `at`, $2 = this Node,
 * $3 = the CLI and $4... = `args`. What they print of the tmpfs is all that is left of it: it
 * goes away with the namespace, and `at` is an empty dir again.
 */
export function onSmallDisk(at: string, size: string, lines: string[], args: string[]): SpawnSyncReturns<string> {
  mkdirSync(at);
  const script = [`mount -t tmpfs -o size=${size} tmpfs "$1" || exit 99`, ...lines].join('\n');
  return spawnSync(
    'unshare',
    ['--mount', '--propagation', 'private', '--', 'sh', '-c', script, 'sh', at, process.execPath, CLI, ...args],
    { encoding: 'utf8' },
  );
}
