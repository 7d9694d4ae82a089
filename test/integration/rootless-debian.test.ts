/**
 * apt in rootless cells, on the Debian test image with apt over the network, as an ordinary
 * user with no sudo: dpkg unpacks every directory by renaming NAME.dpkg-new into place (EXDEV
 * without overlayfs' userxattr), and postinsts create system users and chown to them (the
 * subordinate id ranges). Then the same in whatever mode auto picks, and with root alone
 * mapped (no /etc/subuid range): apt still works, and a warning says what does not.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, afterEach, describe, expect, it } from 'vitest';
import { DEBIAN_TAG, debianLayout } from '../helpers/fixtures.js';
import {
  expectHostUnchanged,
  removeDir,
  runCli,
  snapshotHost,
  tempDir,
  type HostSnapshot,
  expectOk,
} from '../helpers/cli.js';
import { createUser, layoutForUser, removeUser } from '../helpers/users.js';

const USER = 'bc-test-apt';
let home: string;
let image: string;
let before: HostSnapshot;
let state: string;

const asUser = (args: string[]) =>
  runCli(['run', '--state-dir', state, '--image', image, ...args], {
    wrapper: ['runuser', '-u', USER, '--'],
    cwd: home,
    env: { PATH: process.env.PATH, HOME: home },
  });
const notOwned = (dir: string) => execFileSync('find', [dir, '-not', '-user', USER], { encoding: 'utf8' }).trim();
/** The user's ranges, as useradd gave them (or a fresh one): the tests take them away and back. */
const subIds = (op: '--add' | '--del') =>
  execFileSync('usermod', [`${op}-subuids`, '300000-365535', `${op}-subgids`, '300000-365535', USER]);

beforeAll(async () => {
  const layout = await debianLayout();
  home = tempDir('bc-apt-home-');
  chmodSync(home, 0o755);
  createUser(USER, home);
  execFileSync('chown', [USER, home]);
  // Whatever useradd allocated, the user has exactly this range.
  for (const file of ['/etc/subuid', '/etc/subgid']) {
    const kept = readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => !l.startsWith(`${USER}:`))
      .join('\n');
    execFileSync('sh', ['-c', 'cat > "$1"', 'sh', file], { input: kept.endsWith('\n') || !kept ? kept : `${kept}\n` });
  }
  subIds('--add');
  image = `oci:${layoutForUser(layout, home, USER)}:${DEBIAN_TAG}`;
}, 30 * 60_000);

afterAll(async () => {
  removeUser(USER);
  await removeDir(home);
});

beforeEach(() => {
  before = snapshotHost();
  state = join(home, `state-${Date.now()}`);
});

afterEach(() => {
  expectHostUnchanged(before, state);
});

const HELLO_C =
  'printf "#include <stdio.h>\\nint main(void) { puts(\\"hello from gcc\\"); return 0; }\\n" > /tmp/hello.c';

describe('apt-get in rootless cells', () => {
  it(
    'installs gcc, a package whose postinst adds a system user, and packages with dirs in /etc and /usr/share/doc; then compiles',
    async () => {
      const install = await asUser([
        '--privilege',
        'rootless',
        '--result-file',
        join(home, 'result.json'),
        '--run',
        [
          'apt-get update -qq',
          // gcc + libc6-dev; cron: /etc/cron.* dirs, /usr/share/doc, a crontab group and chgrp; uuid-runtime: adduser --system uuidd.
          'apt-get install -y --no-install-recommends gcc libc6-dev cron uuid-runtime',
          HELLO_C,
          'gcc -O2 -o /tmp/hello /tmp/hello.c && /tmp/hello',
          'echo "crontab-group=$(stat -c %G /usr/bin/crontab)"',
          'echo "uuidd=$(id -un uuidd) libuuid-owner=$(stat -c %U /var/lib/libuuid)"',
          'test -d /etc/cron.d && test -d /usr/share/doc/cron && echo dirs-ok',
          "dpkg-query -W -f '${Package}=${Status}\\n' gcc cron uuid-runtime",
        ].join('\n'),
      ]);
      expectOk(install, 'apt-get install in a rootless cell');
      const output = `${install.stdout}\n${install.stderr}`;
      expect(output).not.toMatch(/Invalid cross-device link/);
      expect(output).not.toMatch(/^(E|W): /m);
      expect(install.stdout).toContain('hello from gcc');
      expect(install.stdout).toContain('crontab-group=crontab');
      expect(install.stdout).toContain('uuidd=uuidd libuuid-owner=uuidd');
      expect(install.stdout).toContain('dirs-ok');
      for (const pkg of ['gcc', 'cron', 'uuid-runtime'])
        expect(install.stdout).toContain(`${pkg}=install ok installed`);
      const result = JSON.parse(readFileSync(join(home, 'result.json'), 'utf8'));
      expect(result.privilege.mode).toBe('rootless');
      expect(result.privilege.reason).toMatch(/uids 1-65536 and gids 1-65536 are mapped/);

      // The next cell is pristine.
      const next = await asUser([
        '--privilege',
        'rootless',
        '--network',
        'disabled',
        '--run',
        'if command -v gcc || getent passwd uuidd; then exit 3; fi; echo pristine',
      ]);
      expectOk(next, 'the next cell');
      expect(next.stdout).toBe('pristine\n');

      // Everything build-cell left is the user's, and the user removes it without sudo.
      expect(notOwned(state)).toBe('');
      execFileSync('runuser', ['-u', USER, '--', 'rm', '-rf', state]);
      expect(existsSync(state)).toBe(false);
    },
    10 * 60_000,
  );

  it(
    'works in the mode auto picks (rootless: the user has no sudo), which the result file records with the reason',
    async () => {
      const run = await asUser([
        '--result-file',
        join(home, 'auto.json'),
        '--run',
        `apt-get update -qq && apt-get install -y --no-install-recommends gcc libc6-dev cron >/dev/null\n${HELLO_C}\ngcc -o /tmp/hello /tmp/hello.c && /tmp/hello`,
      ]);
      expectOk(run, 'auto');
      expect(run.stdout).toContain('hello from gcc');
      const result = JSON.parse(readFileSync(join(home, 'auto.json'), 'utf8'));
      expect(result.privilege).toEqual({
        mode: 'rootless',
        reason: expect.stringMatching(/^auto: not root; user namespaces work with the subordinate ids mapped/),
      });
      expect(notOwned(state)).toBe('');
      execFileSync('runuser', ['-u', USER, '--', 'rm', '-rf', state]);
    },
    10 * 60_000,
  );

  it(
    'with root alone mapped (no /etc/subuid range): apt still installs, and a warning says what fails',
    async () => {
      subIds('--del');
      try {
        const run = await asUser([
          '--privilege',
          'rootless',
          '--run',
          'apt-get update -qq && apt-get install -y --no-install-recommends hello >/dev/null && hello',
        ]);
        expectOk(run, 'root alone mapped');
        expect(run.stdout).toBe('Hello, world!\n');
        expect(run.stderr).toMatch(
          /warning: rootless cell: only root is mapped, so chown to any other user or group fails.*\/etc\/subuid/,
        );
        execFileSync('runuser', ['-u', USER, '--', 'rm', '-rf', state]);
      } finally {
        subIds('--add');
      }
    },
    10 * 60_000,
  );
});
