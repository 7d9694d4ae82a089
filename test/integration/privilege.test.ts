/**
 * Running as a non-root user: through `sudo -n` when it is allowed (files left on the host
 * belong to that user), a clear message when it is not. Also: the bundle under Node 24, as
 * `runs.using: node24` runs it on GitHub.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { busyboxLayout, node24Binary } from '../helpers/fixtures.js';
import { createUser, removeUser, uidOf } from '../helpers/users.js';
import { removeDir, runCli, snapshotHost, strayProcesses, tempDir } from '../helpers/cli.js';

const SUDO_USER = 'bc-test-sudo';
const PLAIN_USER = 'bc-test-plain';

let layout: string;
let state: string;
let home: string;

beforeAll(async () => {
  layout = await busyboxLayout();
  state = tempDir('bc-priv-state-');
  home = tempDir('bc-priv-home-');
  chmodSync(home, 0o777);
  createUser(SUDO_USER, home, { sudo: true });
  createUser(PLAIN_USER, home);
});

afterAll(async () => {
  for (const user of [SUDO_USER, PLAIN_USER]) removeUser(user);
  await removeDir(state);
  await removeDir(home);
});

describe('as a user with passwordless sudo', () => {
  it('runs the cell as root and leaves exports and caches owned by the user', async () => {
    const before = snapshotHost();
    const work = join(home, 'work');
    mkdirSync(work);
    chmodSync(work, 0o777);
    execFileSync('chown', [String(uidOf(SUDO_USER)), work]);
    // runuser -u USER -- node CLI run ...: the CLI finds it is not root and re-runs itself through sudo -n.
    const result = await runCli(
      [
        'run',
        '--privilege',
        'sudo',
        '--state-dir',
        state,
        '--image',
        `oci:${layout}:amd64`,
        '--cache',
        'cache:/cache',
        '--export',
        '/workspace/out:out',
        '--run',
        'id -u; mkdir out; echo built > out/file; echo c > /cache/c',
      ],
      {
        wrapper: ['runuser', '-u', SUDO_USER, '--'],
        cwd: work,
        env: { PATH: process.env.PATH, HOME: home },
      },
    );
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.trim()).toBe('0');
    const uid = uidOf(SUDO_USER);
    for (const path of [join(work, 'out'), join(work, 'out', 'file'), join(work, 'cache'), join(work, 'cache', 'c')]) {
      expect(statSync(path).uid, path).toBe(uid);
    }
    expect(readFileSync(join(work, 'out', 'file'), 'utf8')).toBe('built\n');
    // The user can remove everything the cell left, without sudo.
    execFileSync('runuser', ['-u', SUDO_USER, '--', 'rm', '-rf', join(work, 'out'), join(work, 'cache')]);
    expect(existsSync(join(work, 'out'))).toBe(false);
    const after = snapshotHost();
    expect(after.mounts).toBe(before.mounts);
    expect(after.binfmt).toBe(before.binfmt);
    expect(strayProcesses(state)).toEqual([]);
  });
  it('carries stdin, prepare, --result-file and a signal across sudo as the action does (one request, internal-run)', async () => {
    const before = snapshotHost();
    const work = join(home, 'work-2');
    mkdirSync(work);
    execFileSync('chown', [String(uidOf(SUDO_USER)), work]);
    // setpriv execs the CLI itself (runuser would stand between it and the signal).
    const asUser = {
      wrapper: ['setpriv', `--reuid=${SUDO_USER}`, `--regid=${SUDO_USER}`, '--init-groups', '--'],
      cwd: work,
      env: { PATH: process.env.PATH, HOME: home },
    };
    const image = ['--privilege', 'sudo', '--state-dir', state, '--image', `oci:${layout}:amd64`];
    const piped = await runCli(['run', ...image, '--result-file', 'result.json', '--', 'cat'], {
      ...asUser,
      input: 'through sudo\n',
    });
    expect(piped.code, piped.stderr).toBe(0);
    expect(piped.stdout).toBe('through sudo\n');
    // The result file is written by the user's own process: the user's, with the mode and why.
    expect(statSync(join(work, 'result.json')).uid).toBe(uidOf(SUDO_USER));
    const record = JSON.parse(readFileSync(join(work, 'result.json'), 'utf8'));
    expect(record).toMatchObject({ exitCode: 0, privilege: { mode: 'sudo', reason: '--privilege sudo' } });

    const prepared = await runCli(['prepare', ...image], asUser);
    expect(prepared.code, prepared.stderr).toBe(0);
    expect(prepared.stdout).toMatch(new RegExp(`^sha256:[0-9a-f]{64} ${state}/images/rootfs/\\S+\\n$`));

    const stopped = await runCli(['run', ...image, '--', 'sleep', '60'], {
      ...asUser,
      signalAfterMs: { ms: 1500, signal: 'SIGTERM' },
    });
    expect(stopped.code).toBe(143);
    expect(stopped.stderr).toMatch(/received SIGTERM: the cell was stopped and cleaned up/);

    // The demo builds its image in the user's own cache (the state dir is root's).
    const demo = await runCli(['demo', '--privilege', 'sudo', '--state-dir', state], asUser);
    expect(demo.code, demo.stderr).toBe(0);
    expect(demo.stdout).toMatch(/^Hello from a build cell: Linux /);
    expect(statSync(join(home, '.cache', 'build-cell-demo', 'layout', 'index.json')).uid).toBe(uidOf(SUDO_USER));

    // No request socket or result file is left behind, and nothing of the cells runs on.
    expect(strayProcesses(state)).toEqual([]);
    const after = snapshotHost();
    expect(after.mounts).toBe(before.mounts);
    expect(after.binfmt).toBe(before.binfmt);
    const left = readdirSync(tmpdir()).filter(
      (name) => name.startsWith('bc-request-') && statSync(join(tmpdir(), name)).uid === uidOf(SUDO_USER),
    );
    expect(left).toEqual([]);
  });
});

describe('as a user without sudo', () => {
  it('fails with exit 125 for --privilege sudo, and says why', async () => {
    const result = await runCli(
      ['run', '--privilege', 'sudo', '--state-dir', state, '--image', `oci:${layout}:amd64`, '--', 'true'],
      {
        wrapper: ['runuser', '-u', PLAIN_USER, '--'],
        cwd: home,
        env: { PATH: process.env.PATH, HOME: home },
      },
    );
    expect(result.code).toBe(125);
    expect(result.stderr).toMatch(/^build-cell: --privilege sudo: sudo -n refused: .*password/m);
  });

  it('refuses --privilege root with the reason', async () => {
    const result = await runCli(
      ['run', '--privilege', 'root', '--state-dir', state, '--image', `oci:${layout}:amd64`, '--', 'true'],
      {
        wrapper: ['runuser', '-u', PLAIN_USER, '--'],
        cwd: home,
        env: { PATH: process.env.PATH, HOME: home },
      },
    );
    expect(result.code).toBe(125);
    expect(result.stderr).toMatch(/--privilege root: build-cell is not running as root/);
  });
});

describe('the bundle under Node 24', () => {
  it('runs a cell', async () => {
    const node24 = await node24Binary();
    expect(execFileSync(node24, ['--version'], { encoding: 'utf8' })).toMatch(/^v24\./);
    const result = await runCli(['run', '--state-dir', state, '--image', `oci:${layout}:amd64`, '--', 'uname', '-m'], {
      node: node24,
    });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe('x86_64\n');
  });
});
