/**
 * Hostile images and faults: symlinks planted where build-cell mounts, a CLI killed by
 * SIGKILL mid-run, and a full disk during an export. The host stays as it was.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { busyboxLayout } from '../helpers/fixtures.js';
import { CLI, hostCheckedWork, onSmallDisk, removeDir, runCli, strayProcesses, tempDir } from '../helpers/cli.js';

let layout: string;
let hostile: string;
let state: string;
let work: string;

/** An image whose rootfs plants symlinks at the places build-cell mounts on. */
function buildHostileImage(dir: string): string {
  const out = join(dir, 'layout');
  execFileSync('cp', ['-a', layout, out]);
  const bundle = join(dir, 'bundle');
  execFileSync('umoci', ['unpack', '--image', `${out}:amd64`, bundle]);
  const rootfs = join(bundle, 'rootfs');
  const plant = (tag: string, setup: string) => {
    execFileSync('sh', ['-c', setup], { cwd: rootfs });
    execFileSync('umoci', ['repack', '--image', `${out}:${tag}`, bundle]);
  };
  // Each tag adds one more planted link on top of the previous ones.
  plant('resolv', 'mkdir -p etc && rm -f etc/resolv.conf && ln -s /etc/passwd etc/resolv.conf');
  plant('workspace', 'ln -s /etc workspace');
  plant('dev', 'rm -rf dev && ln -s /tmp dev');
  return out;
}

beforeAll(async () => {
  layout = await busyboxLayout();
  const dir = tempDir('bc-hostile-');
  hostile = buildHostileImage(dir);
  state = tempDir('bc-hard-state-');
});

afterAll(async () => {
  await removeDir(join(hostile, '..'));
  await removeDir(state);
});

hostCheckedWork(
  'hard',
  (dir) => (work = dir),
  () => state,
);

describe('images that plant symlinks where build-cell mounts', () => {
  it('shadows a planted /etc/resolv.conf link inside the cell, never writing through it', async () => {
    const passwdBefore = readFileSync('/etc/passwd', 'utf8');
    const result = await runCli([
      'run',
      '--state-dir',
      state,
      '--image',
      `oci:${hostile}:resolv`,
      '--run',
      'cat /etc/resolv.conf > /dev/null; head -1 /etc/passwd',
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe('root:x:0:0:root:/root:/bin/sh\n');
    expect(readFileSync('/etc/passwd', 'utf8')).toBe(passwdBefore);
  });

  it('refuses a workspace path that is a planted link, before anything is mounted', async () => {
    const ws = join(work, 'ws');
    mkdirSync(ws);
    writeFileSync(join(ws, 'marker'), 'x');
    const result = await runCli([
      'run',
      '--state-dir',
      state,
      '--image',
      `oci:${hostile}:workspace`,
      '--workspace',
      ws,
      '--',
      'true',
    ]);
    expect(result.code).toBe(125);
    expect(result.stderr).toMatch(/mount target \/workspace traverses a symlink/);
    expect(existsSync('/etc/marker')).toBe(false);
  });

  it('refuses a /dev that is a planted link', async () => {
    const result = await runCli([
      'run',
      '--state-dir',
      state,
      '--image',
      `oci:${hostile}:dev`,
      '--workspace-path',
      '/build',
      '--',
      'true',
    ]);
    expect(result.code).toBe(125);
    expect(result.stderr).toMatch(/mount target \/dev traverses a symlink/);
  });
});

describe('hostile caches', () => {
  it('syncs symlinks back as symlinks, never fifos or sockets, and never reads or writes through a planted link', async () => {
    const cache = join(work, 'cache');
    mkdirSync(cache);
    writeFileSync(join(cache, 'keep'), 'keep\n');
    const result = await runCli([
      'run',
      '--state-dir',
      state,
      '--image',
      `oci:${layout}:amd64`,
      '--cache',
      `${cache}:/cache`,
      '--run',
      [
        'ln -s /etc /cache/etc-link',
        'ln -s /etc/passwd /cache/passwd-link',
        'mkfifo /cache/pipe',
        // A unix socket: busybox syslogd binds /dev/log (it stays running; the cell kills it).
        '(syslogd -n -O - >/dev/null 2>&1 &)',
        'i=0; while [ ! -S /dev/log ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done',
        'mv /dev/log /cache/sock && [ -S /cache/sock ]',
        'mkdir /cache/dir && ln -s /etc/shadow /cache/dir/shadow',
        'rm /cache/keep && ln -s /etc/hostname /cache/keep',
      ].join('\n'),
    ]);
    expect(result.code, result.stderr).toBe(0);
    const kinds = Object.fromEntries(
      readdirSync(cache).map((name) => {
        const info = lstatSync(join(cache, name));
        return [
          name,
          info.isSymbolicLink()
            ? `link ${readlinkSync(join(cache, name))}`
            : info.isDirectory()
              ? 'dir'
              : info.isFIFO()
                ? 'fifo'
                : 'file',
        ];
      }),
    );
    expect(kinds).toEqual({
      'etc-link': 'link /etc',
      'passwd-link': 'link /etc/passwd',
      dir: 'dir',
      keep: 'link /etc/hostname',
    });
    expect(readlinkSync(join(cache, 'dir', 'shadow'))).toBe('/etc/shadow');
  });
});

describe('hostile cache names', () => {
  // Regression (fixed; src/cell/finalize.ts, replaceWithCopy): each synced file is first copied to
  // `.${basename}.build-cell-${pid}` next to it; for a name of 235 bytes or more that temporary
  // name exceeds NAME_MAX, so a build that creates such a file (legal: up to 255 bytes) makes the
  // whole cache sync fail with a raw "ENAMETOOLONG ... lstat" and exit 125 after a successful
  // command. Fix: a short temporary name independent of the basename, e.g.
  // `.build-cell-${process.pid}-${randomHex(4)}` in the same directory.
  it('syncs back a file whose name has the full 255 bytes', async () => {
    const cache = join(work, 'cache');
    const name = 'n'.repeat(255);
    const result = await runCli([
      'run',
      '--state-dir',
      state,
      '--image',
      `oci:${layout}:amd64`,
      '--cache',
      `${cache}:/cache`,
      '--run',
      `echo long > /cache/${name}`,
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(readdirSync(cache)).toEqual([name]);
    expect(readFileSync(join(cache, name), 'utf8')).toBe('long\n');
  });
});

describe('faults', () => {
  it('a CLI killed by SIGKILL takes its whole cell with it; the next run recovers the scratch and the store', async () => {
    const marker = `sleep\0${300 + Math.floor(Math.random() * 600)}\0`;
    const cellCommands = () =>
      readdirSync('/proc')
        .filter((p) => /^\d+$/.test(p))
        .filter((p) => {
          try {
            return readFileSync(`/proc/${p}/cmdline`, 'utf8') === marker;
          } catch {
            return false;
          }
        });
    const args = marker.split('\0').filter(Boolean);
    const child = spawn(
      process.execPath,
      [CLI, 'run', '--state-dir', state, '--image', `oci:${layout}:amd64`, '--', ...args],
      { stdio: 'ignore' },
    );
    // Wait until the cell's command runs, then kill the CLI without a chance to clean up.
    const deadline = Date.now() + 20_000;
    while (!cellCommands().length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(cellCommands()).toHaveLength(1);
    child.kill('SIGKILL');
    await new Promise((r) => child.on('close', r));
    for (let i = 0; i < 100 && (cellCommands().length || strayProcesses(state).length); i++)
      await new Promise((r) => setTimeout(r, 50));
    expect(cellCommands()).toEqual([]);
    expect(strayProcesses(state)).toEqual([]);
    expect(readdirSync(join(state, 'cells'))).toHaveLength(1);
    const next = await runCli(['run', '--state-dir', state, '--image', `oci:${layout}:amd64`, '--', 'true']);
    expect(next.code, next.stderr).toBe(0);
    expect(readdirSync(join(state, 'cells'))).toEqual([]);
    expect(readdirSync(join(state, 'locks'))).toEqual([]);
  });

  it('a full disk during an export is a clear error, and no truncated file is left', async () => {
    // A 1 MiB tmpfs as the export destination; what is left in it is listed before it goes away.
    const result = onSmallDisk(
      join(work, 'small'),
      '1m',
      [
        'echo old > "$1/out"',
        `"$2" "$3" run --state-dir "$4" --image "$5" --export /workspace/big:"$1/out" --run 'head -c 4000000 /dev/zero > big'`,
        'echo "rc=$?"; cat "$1/out"; ls -A "$1"',
      ],
      [state, `oci:${layout}:amd64`],
    );
    expect(result.stdout).toBe('rc=125\nold\nout\n');
    expect(result.stderr).toMatch(/^build-cell: .*export \/workspace\/big.*No space left on device/m);
  });
});
