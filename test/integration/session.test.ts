/**
 * Sessions from the CLI (`build-cell session start|exec|end`), as a user reproduces a
 * multi-step CI job: state across steps, two sessions side by side, the install step, bash,
 * the workspace written back, exports at the end, and root, sudo and rootless modes. After
 * each test, the host is as it was (mounts, binfmt, processes).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { busyboxLayout } from '../helpers/fixtures.js';
import { hostCheckedWork, removeDir, runCli, tempDir, type RunCliOptions, expectOk } from '../helpers/cli.js';
import { layoutForUser, sudoAndPlainUsers, uidOf } from '../helpers/users.js';

let layout: string;
let state: string;
let work: string;

beforeAll(async () => {
  layout = await busyboxLayout();
  state = tempDir('bc-session-state-');
});
afterAll(async () => {
  await removeDir(state);
});
hostCheckedWork(
  'session',
  (dir) => (work = dir),
  () => state,
);

const session = (args: string[], options?: RunCliOptions) => runCli(['session', ...args], options);

describe('build-cell session', () => {
  it('carries the root filesystem from step to step, not processes; writes the workspace back; exports at the end', async () => {
    const ws = join(work, 'ws');
    mkdirSync(ws);
    writeFileSync(join(ws, 'src.txt'), 'source\n');
    const common = ['--name', 'job', '--state-dir', state];
    expectOk(
      await session([
        'start',
        ...common,
        '--image',
        `oci:${layout}:amd64`,
        '--workspace',
        ws,
        '--install',
        'echo tool > /opt-tool',
        '--run',
        'echo configured > /root/.config-done; (sleep 300 &); echo started',
      ]),
      'start',
    );
    const step = await session([
      'exec',
      ...common,
      '--run',
      'cat /opt-tool /root/.config-done; echo "sleeping=$(ps | grep -v grep | grep -c "sleep 300")"; mkdir -p out && cp src.txt out/built.txt; echo step2 >> /root/.config-done',
    ]);
    expectOk(step, 'exec');
    expect(step.stdout).toBe('tool\nconfigured\nsleeping=0\n');
    expect(readFileSync(join(ws, 'out', 'built.txt'), 'utf8')).toBe('source\n');
    writeFileSync(join(ws, 'between.txt'), 'from the host\n');
    const third = await session([
      'exec',
      ...common,
      '--env',
      'X=42',
      '--',
      'sh',
      '-c',
      'cat between.txt /root/.config-done; echo "X=$X"; exit 4',
    ]);
    expect(third.code).toBe(4);
    expect(third.stdout).toBe('from the host\nconfigured\nstep2\nX=42\n');
    const end = await session(['end', ...common, '--export', `/root/.config-done:${join(work, 'done')}`]);
    expectOk(end, 'end');
    expect(readFileSync(join(work, 'done'), 'utf8')).toBe('configured\nstep2\n');
    expect(existsSync(join(state, 'sessions', 'job'))).toBe(false);
    const gone = await session(['exec', ...common, '--', 'true']);
    expect(gone.code).toBe(125);
    expect(gone.stderr).toMatch(
      /there is no build-cell session named "job": start one with `build-cell session start`/,
    );
  });

  it('two sessions side by side are independent', async () => {
    const a = ['--name', 'a', '--state-dir', state];
    const b = ['--name', 'b', '--state-dir', state];
    expectOk(await session(['start', ...a, '--image', `oci:${layout}:amd64`, '--run', 'echo A > /who']), 'start a');
    expectOk(
      await session(['start', ...b, '--image', `oci:${layout}:arm64`, '--arch', 'arm64', '--run', 'echo B > /who']),
      'start b',
    );
    const [ra, rb] = await Promise.all([
      session(['exec', ...a, '--run', 'cat /who; uname -m']),
      session(['exec', ...b, '--run', 'cat /who; uname -m']),
    ]);
    expect(ra.stdout).toBe('A\nx86_64\n');
    expect(rb.stdout).toBe('B\naarch64\n');
    for (const s of [a, b]) expectOk(await session(['end', ...s]), 'end');
    expect(readdirSync(join(state, 'sessions'))).toEqual([]);
  });

  it('a failing first command keeps the session; preserve-on-failure keeps its root layer after the end', async () => {
    const common = ['--name', 'keep', '--state-dir', state];
    const start = await session([
      'start',
      ...common,
      '--image',
      `oci:${layout}:amd64`,
      '--cleanup',
      'preserve-on-failure',
      '--run',
      'echo x > /kept; exit 2',
    ]);
    expect(start.code).toBe(2);
    expectOk(await session(['exec', ...common, '--', 'cat', '/kept']), 'after a failure');
    const end = await session(['end', ...common]);
    expectOk(end, 'end');
    expect(end.stderr).toMatch(/root layer is kept at .*keep/);
    expect(readFileSync(join(state, 'sessions', 'keep', 'upper', 'kept'), 'utf8')).toBe('x\n');
    await removeDir(join(state, 'sessions', 'keep'));
  });
});

describe('sessions as other users', () => {
  const users = sudoAndPlainUsers('bc-session');
  for (const [user, privilege] of [
    [users.sudoUser, 'sudo'],
    [users.plainUser, 'rootless'],
  ] as const) {
    it(`${privilege}: steps carry state, the workspace comes back as the user's, and the user is left with nothing else`, async () => {
      const dir = join(users.home(), privilege);
      mkdirSync(join(dir, 'ws'), { recursive: true });
      execFileSync('chown', ['-R', `${user}:${user}`, dir]);
      const userLayout = layoutForUser(layout, dir, user);
      const as = (args: string[]) =>
        session(args, { wrapper: ['runuser', '-u', user, '--'], cwd: dir, env: { PATH: process.env.PATH, HOME: dir } });
      const common = ['--name', 's', '--state-dir', join(dir, 'state')];
      expectOk(
        await as([
          'start',
          ...common,
          '--privilege',
          privilege,
          '--image',
          `oci:${userLayout}:amd64`,
          '--workspace',
          join(dir, 'ws'),
          '--run',
          'echo one > /root/s; adduser -D -u 1234 builder 2>/dev/null || true',
        ]),
        'start',
      );
      const step = await as(['exec', ...common, '--run', 'cat /root/s; id -u; mkdir -p out; echo made > out/f']);
      expectOk(step, 'exec');
      expect(step.stdout).toBe('one\n0\n');
      expect(execFileSync('stat', ['-c', '%u', join(dir, 'ws', 'out', 'f')], { encoding: 'utf8' }).trim()).toBe(
        String(uidOf(user)),
      );
      expectOk(await as(['end', ...common]), 'end');
      expect(readdirSync(join(dir, 'state', 'sessions'))).toEqual([]);
    });
  }
});
