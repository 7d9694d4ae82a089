/**
 * The cached install step, end to end with real cells: on busybox for the key, failure,
 * pristine and concurrency cases, on the Debian image with apt over the network for real
 * packages (then the command offline), as root and rootless. The derived image is a real OCI
 * image: skopeo pushes it to a local registry and build-cell runs it from there.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { busyboxLayout, DEBIAN_TAG, debianLayout } from '../helpers/fixtures.js';
import {
  expectHostUnchanged,
  removeDir,
  runCli,
  snapshotHost,
  tempDir,
  type CliResult,
  type HostSnapshot,
  expectOk,
} from '../helpers/cli.js';
import { pushLayout, startRegistry, type Registry } from '../helpers/registry.js';
import { createUser, layoutForUser, removeUser } from '../helpers/users.js';

let busybox: string;
let debian: string;
let state: string;
let work: string;
let before: HostSnapshot;

const run = (args: string[], resultFile?: string) =>
  runCli(['run', '--state-dir', state, ...(resultFile ? ['--result-file', join(work, resultFile)] : []), ...args]);
const result = (name: string) => JSON.parse(readFileSync(join(work, name), 'utf8'));
const installRefs = () => readdirSync(join(state, 'images', 'refs')).filter((n) => n.includes('build-cell-install'));
const ran = (r: CliResult) => (r.stderr.match(/install step ran in/g) ?? []).length;

beforeAll(async () => {
  [busybox, debian] = await Promise.all([busyboxLayout(), debianLayout()]);
}, 30 * 60_000);

beforeEach(() => {
  before = snapshotHost();
  state = tempDir('bc-install-state-');
  work = tempDir('bc-install-work-');
});

afterEach(async () => {
  expectHostUnchanged(before, state);
  await removeDir(state);
  await removeDir(work);
});

describe('the install step on busybox', () => {
  const image = () => ['--image', `oci:${busybox}:amd64`];
  const INSTALL =
    'echo "installed $(date +%s%N)" > /opt-marker; mkdir -p /usr/local/share/tool; echo v1 > /usr/local/share/tool/version';

  it('runs once, then is reused from the store (the command offline); a new script or key runs it again', async () => {
    const first = await run(
      [...image(), '--install', INSTALL, '--run', 'cat /usr/local/share/tool/version'],
      'r1.json',
    );
    expectOk(first, 'first run');
    expect(first.stdout).toBe('v1\n');
    expect(ran(first)).toBe(1);
    const r1 = result('r1.json');
    expect(r1.install).toMatchObject({
      ran: true,
      source: 'ran',
      digest: expect.stringMatching(/^sha256:[a-f0-9]{64}$/),
    });
    expect(r1.install.baseDigest).not.toBe(r1.install.digest);
    expect(r1.image.digest).toBe(r1.install.digest);

    const second = await run(
      [...image(), '--install', INSTALL, '--network', 'disabled', '--', 'cat', '/opt-marker'],
      'r2.json',
    );
    expectOk(second, 'second run');
    expect(ran(second)).toBe(0);
    expect(second.stdout).toBe(
      readFileSync(join(state, 'images', 'rootfs', `amd64-${r1.install.digest.slice(7)}`, 'opt-marker'), 'utf8'),
    );
    expect(result('r2.json').install).toMatchObject({ ran: false, source: 'store', digest: r1.install.digest });

    const edited = await run([...image(), '--install', `${INSTALL}\necho edited`, '--', 'true'], 'r3.json');
    expectOk(edited, 'edited script');
    expect(result('r3.json').install.ran).toBe(true);
    expect(result('r3.json').install.digest).not.toBe(r1.install.digest);

    const keyed = await run([...image(), '--install', INSTALL, '--install-key', 'deps-v2', '--', 'true'], 'r4.json');
    expectOk(keyed, 'new install-key');
    expect(result('r4.json').install.ran).toBe(true);
    const keyedAgain = await run(
      [...image(), '--install', INSTALL, '--install-key', 'deps-v2', '--', 'true'],
      'r5.json',
    );
    expect(result('r5.json').install).toMatchObject({ ran: false, digest: result('r4.json').install.digest });
    expect(installRefs()).toHaveLength(3);
    expect(keyedAgain.code).toBe(0);
  });

  it('keys env names, never their values, and writes no value to disk', async () => {
    const SECRET = 'value-that-must-never-be-on-disk-7f3a';
    const a = await run(
      [...image(), '--install', 'echo "$TOKEN" | wc -c > /len', '--env', `TOKEN=${SECRET}`, '--', 'cat', '/len'],
      'a.json',
    );
    expectOk(a, 'with TOKEN');
    const b = await run(
      [...image(), '--install', 'echo "$TOKEN" | wc -c > /len', '--env', 'TOKEN=other', '--', 'true'],
      'b.json',
    );
    expect(result('b.json').install).toMatchObject({ ran: false, digest: result('a.json').install.digest });
    const c = await run(
      [...image(), '--install', 'echo "$TOKEN" | wc -c > /len', '--env', 'TOKEN=x', '--env', 'MORE=1', '--', 'true'],
      'c.json',
    );
    expect(result('c.json').install.ran).toBe(true);
    expect(b.code + c.code).toBe(0);
    const grep = spawnSync('grep', ['-rlaF', SECRET, state, work], { encoding: 'utf8' });
    expect(grep.status, `files holding the value: ${grep.stdout}`).toBe(1);
  }, 120_000);

  it('a fresh state dir with only the derived layout (a restored cache) unpacks the same rootfs the local build made', async () => {
    const install =
      'mkdir -p /srv/d/deep && echo f > /srv/d/deep/f && ln -s /etc/passwd /srv/link && rm -rf /etc/init.d /bin/true && ln /srv/d/deep/f /srv/hard && chmod 4711 /srv/d/deep/f && chown 12:34 /srv/d';
    const first = await run([...image(), '--install', install, '--', '/bin/busybox', 'true'], 'l.json');
    expectOk(first, 'local build');
    const digest = result('l.json').install.digest as string;
    const fresh = join(work, 'fresh');
    const entry = `amd64-${digest.slice(7)}`;
    for (const d of ['layouts', 'refs']) mkdirSync(join(fresh, 'images', d), { recursive: true });
    execFileSync('cp', ['-a', join(state, 'images', 'layouts', entry), join(fresh, 'images', 'layouts')]);
    for (const ref of installRefs())
      execFileSync('cp', [join(state, 'images', 'refs', ref), join(fresh, 'images', 'refs')]);
    const restored = await runCli([
      'run',
      '--state-dir',
      fresh,
      ...image(),
      '--install',
      install,
      '--result-file',
      join(work, 'f.json'),
      '--',
      '/bin/busybox',
      'true',
    ]);
    expectOk(restored, 'restored');
    expect(result('f.json').install).toMatchObject({ ran: false, digest });
    const listing = (root: string) =>
      execFileSync(
        'sh',
        ['-c', 'cd "$1" && find . ! -name .build-cell-root -printf "%p %y %m %U %G %l\\n" | sort', 'sh', root],
        { encoding: 'utf8' },
      );
    const local = listing(join(state, 'images', 'rootfs', entry));
    expect(listing(join(fresh, 'images', 'rootfs', entry))).toBe(local);
    expect(local).toMatch(/^\.\/srv\/d d 755 12 34 /m);
    expect(local).toMatch(/^\.\/srv\/hard f 4711 0 0 /m);
    // The hard link made in the install is one in both (the local rootfs also shares inodes with the base).
    for (const root of [join(state, 'images', 'rootfs', entry), join(fresh, 'images', 'rootfs', entry)]) {
      expect(statSync(join(root, 'srv/hard')).ino).toBe(statSync(join(root, 'srv/d/deep/f')).ino);
    }
    expect(local).not.toMatch(/^\.\/etc\/init\.d /m);
    await removeDir(fresh);
  });

  it('a failing install fails the run with exit 125, naming the step and its exit code; the command does not run; nothing is cached', async () => {
    const failed = await run([...image(), '--install', 'echo partial > /half; exit 7', '--run', 'echo COMMAND-RAN']);
    expect(failed.code).toBe(125);
    expect(failed.stderr).toMatch(/^build-cell: install step failed: the install script exited with 7/m);
    expect(failed.stdout).not.toContain('COMMAND-RAN');
    expect(installRefs()).toEqual([]);
    expect(readdirSync(join(state, 'images', 'rootfs'))).toHaveLength(1);
    expect(readdirSync(join(state, 'cells'))).toEqual([]);
    // The next run tries again (nothing was kept).
    const again = await run([...image(), '--install', 'echo partial > /half; exit 7', '--', 'true']);
    expect(again.code).toBe(125);
  });

  it('each command starts from the pristine derived image', async () => {
    const one = await run([
      ...image(),
      '--install',
      INSTALL,
      '--run',
      'echo dirty > /usr/local/share/tool/version; rm /opt-marker',
    ]);
    expectOk(one, 'first command');
    const two = await run([
      ...image(),
      '--install',
      INSTALL,
      '--run',
      'cat /usr/local/share/tool/version; test -f /opt-marker && echo marker',
    ]);
    expectOk(two, 'second command');
    expect(two.stdout).toBe('v1\nmarker\n');
  });

  it('concurrent cells with the same install build it once and all reuse it', async () => {
    const slow = 'sleep 2; echo once > /built';
    const runs = await Promise.all(
      [1, 2, 3].map((i) => run([...image(), '--install', slow, '--', 'cat', '/built'], `c${i}.json`)),
    );
    for (const r of runs) expectOk(r, 'concurrent run');
    for (const r of runs) expect(r.stdout).toBe('once\n');
    expect(runs.map(ran).reduce((x, y) => x + y, 0)).toBe(1);
    expect(new Set([1, 2, 3].map((i) => result(`c${i}.json`).install.digest)).size).toBe(1);
    expect(installRefs()).toHaveLength(1);
  }, 120_000);

  it('prepare --install makes the derived image ahead of time, printed as prepare prints an image', async () => {
    const prepared = await runCli(['prepare', '--state-dir', state, ...image(), '--install', INSTALL]);
    expectOk(prepared, 'prepare --install');
    const [digest, rootfs] = prepared.stdout.trim().split(' ');
    expect(digest).toMatch(/^sha256:[a-f0-9]{64}$/);
    expect(readFileSync(join(rootfs!, 'usr/local/share/tool/version'), 'utf8')).toBe('v1\n');
    const used = await run([...image(), '--install', INSTALL, '--', 'true'], 'p.json');
    expectOk(used, 'run after prepare');
    expect(result('p.json').install).toMatchObject({ ran: false, digest });
    const again = await runCli(['prepare', '--state-dir', state, ...image(), '--install', INSTALL]);
    expect(again.stdout).toBe(prepared.stdout);
  });

  it('an install that plants links where build-cell mounts, or removes /bin/sh, cannot break out or change the host', async () => {
    // Links where later cells mount: a workspace path, a cache, an import.
    const planted = 'ln -s /etc /w2 && ln -s /root /opt-link && ln -s /etc/passwd /srcfile';
    const setup = await run([...image(), '--install', planted, '--', 'true']);
    expectOk(setup, 'the planting install');
    const cache = join(work, 'cache');
    for (const args of [
      ['--workspace-path', '/w2'],
      ['--cache', `${cache}:/opt-link/x`],
      ['--import', `${join(work, 'r1.json')}:/srcfile`],
    ]) {
      if (args[0] === '--import') execFileSync('sh', ['-c', `echo '{}' > ${join(work, 'r1.json')}`]);
      const refused = await run([...image(), '--install', planted, ...args, '--', 'true']);
      expect(refused.code, refused.stderr).toBe(125);
      expect(refused.stderr).toMatch(/mount target \/(w2|opt-link\/x|srcfile) (traverses a symlink|already exists)/);
    }
    expect(existsSync(join('/etc', 'x'))).toBe(false);
    const noShell = await run([...image(), '--install', 'rm -f /bin/sh', '--run', 'echo never']);
    expect(noShell.code).not.toBe(0);
    expect(noShell.stdout).not.toContain('never');
    const argv = await run([...image(), '--install', 'rm -f /bin/sh', '--', '/bin/busybox', 'echo', 'still runs']);
    expectOk(argv, 'argv command without /bin/sh');
    expect(argv.stdout).toBe('still runs\n');
  });
});

describe('the install step on the Debian image, apt over the network', () => {
  let registry: Registry;
  beforeAll(async () => {
    registry = await startRegistry();
  });
  afterAll(async () => {
    await registry?.stop();
  });
  const APT = 'apt-get update -qq && apt-get install -y -qq --no-install-recommends hello >/dev/null';

  it(
    'installs hello once; the command runs offline on the derived image; skopeo pushes it and it runs from a registry',
    async () => {
      const image = ['--image', `oci:${debian}:${DEBIAN_TAG}`];
      const first = await run([...image, '--install', APT, '--network', 'disabled', '--', 'hello'], 'd1.json');
      expectOk(first, 'install hello');
      expect(first.stdout).toBe('Hello, world!\n');
      const second = await run(
        [...image, '--install', APT, '--network', 'disabled', '--run', "hello; dpkg-query -W -f '${Status}\\n' hello"],
        'd2.json',
      );
      expectOk(second, 'reuse');
      expect(second.stdout).toBe('Hello, world!\ninstall ok installed\n');
      expect(result('d2.json').install.ran).toBe(false);
      // The base is untouched by the install.
      const base = await run([...image, '--network', 'disabled', '--run', 'command -v hello || echo absent']);
      expect(base.stdout).toBe('absent\n');

      const digest = result('d1.json').install.digest as string;
      const layout = join(state, 'images', 'layouts', `amd64-${digest.slice(7)}`);
      await pushLayout(layout, 'image', registry.host, 'derived', 'hello');
      const pulled = await run(
        [
          '--image',
          `docker://${registry.host}/derived:hello`,
          '--tls-verify',
          'false',
          '--network',
          'disabled',
          '--',
          'hello',
        ],
        'd3.json',
      );
      expectOk(pulled, 'the pushed derived image');
      expect(pulled.stdout).toBe('Hello, world!\n');
    },
    10 * 60_000,
  );

  it(
    'rootless: the install runs as the user, the command reuses it, and the user removes everything',
    async () => {
      const user = 'bc-test-install';
      const home = tempDir('bc-install-home-');
      chmodSync(home, 0o755);
      createUser(user, home);
      try {
        execFileSync('chown', [user, home]);
        const userState = join(home, 'state');
        const userImage = `oci:${layoutForUser(debian, home, user)}:${DEBIAN_TAG}`;
        const asUser = (args: string[]) =>
          runCli(['run', '--privilege', 'rootless', '--state-dir', userState, '--image', userImage, ...args], {
            wrapper: ['runuser', '-u', user, '--'],
            cwd: home,
            env: { PATH: process.env.PATH, HOME: home },
          });
        const install =
          'apt-get update -qq && apt-get install -y -qq --no-install-recommends hello uuid-runtime >/dev/null';
        const first = await asUser([
          '--install',
          install,
          '--network',
          'disabled',
          '--run',
          'hello; stat -c %U /var/lib/libuuid',
        ]);
        expectOk(first, 'rootless install');
        expect(first.stdout).toBe('Hello, world!\nroot\n');
        const second = await asUser(['--install', install, '--network', 'disabled', '--', 'hello']);
        expectOk(second, 'rootless reuse');
        expect(ran(second)).toBe(0);
        // The layer keeps the owners the cell saw (uuidd), as umoci --rootless records them.
        const layout = readdirSync(join(userState, 'images', 'layouts'))
          .map((n) => join(userState, 'images', 'layouts', n))
          .find((d) => readFileSync(join(d, 'build-cell.json'), 'utf8').includes('build-cell-install'))!;
        const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'));
        const manifest = JSON.parse(
          readFileSync(join(layout, 'blobs', 'sha256', index.manifests[0].digest.slice(7)), 'utf8'),
        );
        const layer = join(layout, 'blobs', 'sha256', manifest.layers.at(-1).digest.slice(7));
        expect(execFileSync('tar', ['--numeric-owner', '-tvf', layer], { encoding: 'utf8' })).toMatch(
          /^d\S+ 1\d\d\/1\d\d .* var\/lib\/libuuid\/$/m,
        );
        expect(execFileSync('find', [userState, '-not', '-user', user], { encoding: 'utf8' }).trim()).toBe('');
        execFileSync('runuser', ['-u', user, '--', 'rm', '-rf', userState]);
        expect(existsSync(userState)).toBe(false);
      } finally {
        removeUser(user);
        await removeDir(home);
      }
    },
    10 * 60_000,
  );
});
