/**
 * Rootless cells: an unprivileged user with no sudo runs the CLI. No sudo anywhere, the host's
 * binfmt_misc untouched, and everything left on the host owned (and removable) by that user.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { busyboxLayout } from '../helpers/fixtures.js';
import {
  expectHostUnchanged,
  removeDir,
  runCli,
  snapshotHost,
  tempDir,
  type HostSnapshot,
  type RunCliOptions,
} from '../helpers/cli.js';
import { createUser, layoutForUser, removeUser } from '../helpers/users.js';

const USER = 'bc-test-rootless';
let layout: string;
let home: string;
let state: string;
let before: HostSnapshot;

const asUser = (args: string[], options: RunCliOptions = {}) =>
  runCli(['run', '--privilege', 'rootless', '--state-dir', state, ...args], {
    wrapper: ['runuser', '-u', USER, '--'],
    cwd: home,
    env: { PATH: process.env.PATH, HOME: home },
    ...options,
  });

/** Paths under `dir` not owned by the rootless user. */
const notOwned = (dir: string) => execFileSync('find', [dir, '-not', '-user', USER], { encoding: 'utf8' }).trim();

beforeAll(async () => {
  layout = await busyboxLayout();
  home = tempDir('bc-rootless-home-');
  chmodSync(home, 0o755);
  createUser(USER, home);
  execFileSync('chown', [USER, home]);
  layout = layoutForUser(layout, home, USER);
  state = join(home, 'state');
});

afterAll(async () => {
  removeUser(USER);
  await removeDir(home);
});

beforeEach(() => {
  before = snapshotHost();
});

afterEach(() => {
  expectHostUnchanged(before, state);
});

describe('rootless cells', () => {
  it('stage a workspace, read-only import and cache, and export, with everything owned by the user', async () => {
    const ws = join(home, 'ws');
    mkdirSync(join(ws, 'src'), { recursive: true });
    writeFileSync(join(ws, 'src', 'in.txt'), 'from the host\n');
    const tools = join(home, 'tools');
    mkdirSync(tools);
    writeFileSync(join(tools, 't.sh'), 'echo tool\n');
    execFileSync('chown', ['-R', USER, ws, tools]);
    const script = [
      'id -u',
      'cat src/in.txt',
      'sh /opt/tools/t.sh',
      'if touch /opt/tools/new 2>/dev/null; then echo import-writable; else echo import-read-only; fi',
      'echo cached >> /cache/log',
      'mkdir out && cp src/in.txt out/ && mkdir -p /usr/local && echo built > /usr/local/built',
    ].join('\n');
    const result = await asUser([
      '--image',
      `oci:${layout}:amd64`,
      '--workspace',
      ws,
      '--import',
      `${tools}:/opt/tools`,
      '--cache',
      `${join(home, 'cache')}:/cache`,
      '--export',
      `/workspace/out:${join(home, 'out')}`,
      '--export',
      `/usr/local/built:${join(home, 'built')}`,
      '--run',
      script,
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe('0\nfrom the host\ntool\nimport-read-only\n');
    expect(readFileSync(join(home, 'out', 'in.txt'), 'utf8')).toBe('from the host\n');
    expect(readFileSync(join(home, 'built'), 'utf8')).toBe('built\n');
    expect(readFileSync(join(home, 'cache', 'log'), 'utf8')).toBe('cached\n');
    expect(notOwned(home)).toBe('');
  });

  it('runs arm64 through a binfmt_misc instance of its own', async () => {
    const result = await asUser([
      '--image',
      `oci:${layout}:arm64`,
      '--arch',
      'arm64',
      '--run',
      'uname -m; cat /proc/sys/fs/binfmt_misc/build-cell-* | head -1',
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe('aarch64\nenabled\n');
  });

  it('disables the network', async () => {
    const result = await asUser([
      '--image',
      `oci:${layout}:amd64`,
      '--network',
      'disabled',
      '--run',
      'ip -o link | cut -d: -f2 | tr -d " "',
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe('lo\n');
  });

  it('applies rlimits', async () => {
    const cpu = await asUser([
      '--image',
      `oci:${layout}:amd64`,
      '--cpu-time',
      '1',
      '--',
      'sh',
      '-c',
      'while :; do :; done',
    ]);
    expect([137, 152]).toContain(cpu.code);
    const mem = await asUser([
      '--image',
      `oci:${layout}:amd64`,
      '--memory',
      '32M',
      '--run',
      'x=$(head -c 67108864 /dev/zero | tr "\\0" a); echo ${#x}',
    ]);
    expect(mem.code).not.toBe(0);
    const procs = await asUser([
      '--image',
      `oci:${layout}:amd64`,
      '--max-processes',
      '4',
      '--run',
      'for i in 1 2 3 4 5 6 7 8; do sleep 2 & done; wait',
    ]);
    expect(procs.code).not.toBe(0);
    expect(procs.stderr).toMatch(/can't fork/);
  });

  it('keeps a scratch per the cleanup policy, removable by the user without sudo', async () => {
    const kept = await asUser([
      '--image',
      `oci:${layout}:amd64`,
      '--cleanup',
      'preserve-on-failure',
      '--run',
      'rm /bin/ls; echo x > /etc/new; exit 2',
    ]);
    expect(kept.code).toBe(2);
    const scratch = /scratch preserved at (\S+)/.exec(kept.stderr)?.[1];
    expect(scratch).toBeTruthy();
    expect(notOwned(scratch!)).toBe('');
    execFileSync('runuser', ['-u', USER, '--', 'rm', '-rf', scratch!]);
    expect(existsSync(scratch!)).toBe(false);
    const clean = await asUser(['--image', `oci:${layout}:amd64`, '--cleanup', 'always', '--', 'true']);
    expect(clean.code).toBe(0);
  });
});
