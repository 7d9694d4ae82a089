/**
 * Drive the built CLI (dist/cli.js) exactly as users and the acceptance tests do, and check
 * that a run left the host as it was.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { REPO_ROOT } from './fixtures.js';

export const CLI = join(REPO_ROOT, 'dist', 'cli.js');

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
    child.on('close', (code, signal) => resolve({ code: code ?? 128 + (signal === 'SIGKILL' ? 9 : 15), stdout, stderr }));
    child.stdin.end(options.input ?? '');
  });
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
}

/**
 * Every registration of the host's (global) binfmt_misc instance, byte for byte. When the
 * host has not mounted it, it is read through a throwaway private mount namespace, so the
 * check is real everywhere and changes nothing.
 */
function binfmtState(): string {
  const dir = '/proc/sys/fs/binfmt_misc';
  if (existsSync(join(dir, 'status'))) {
    // `register` is write-only.
    return readdirSync(dir).filter((name) => name !== 'register').sort().map((name) => `${name}:${readFileSync(join(dir, name), 'utf8')}`).join('\n');
  }
  const script = `mount -t binfmt_misc binfmt_misc ${dir} && cd ${dir} && for f in $(ls | sort); do [ "$f" = register ] || { printf '%s:' "$f"; cat "$f"; echo; }; done`;
  return execFileSync('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', script], { encoding: 'utf8' });
}

function buildCellCgroups(): string[] {
  return ['/sys/fs/cgroup/pids', '/sys/fs/cgroup'].flatMap((d) => (existsSync(d) ? readdirSync(d).filter((n) => n.startsWith('build-cell-')) : []));
}

export function snapshotHost(): HostSnapshot {
  return { mounts: readFileSync('/proc/self/mountinfo', 'utf8'), binfmt: binfmtState(), cgroups: buildCellCgroups() };
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

/** The after-check of every integration test: the host is as it was before the run. */
export function expectHostUnchanged(before: HostSnapshot, stateDir?: string): void {
  const after = snapshotHost();
  if (stateDir) expect(strayProcesses(stateDir), 'processes that outlived their run').toEqual([]);
  expect(after.mounts, 'host mount table').toBe(before.mounts);
  expect(after.binfmt, 'host binfmt_misc state').toBe(before.binfmt);
  // Another test file's cell may be running meanwhile: a cgroup is leaked when its creator is gone.
  const leaked = after.cgroups.filter((name) => !before.cgroups.includes(name) && !existsSync(`/proc/${/^build-cell-(\d+)-/.exec(name)?.[1] ?? 0}`));
  expect(leaked, 'build-cell cgroups left behind').toEqual([]);
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
