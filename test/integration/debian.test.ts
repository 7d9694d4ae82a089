/**
 * The slow end-to-end test: a real Debian bookworm image (debootstrap'd, see
 * test/fixtures/build-debian-image.sh) runs apt-get update + install from deb.debian.org in a
 * cell with the network enabled and apt's archive dir as a host cache, as one would in
 * `docker run debian:bookworm`. Then a new cell on the same image shows the base is pristine,
 * and a third, offline cell installs from the cache the first one filled.
 *
 * Ends with the after-check: host mounts, binfmt state and build-cell cgroups are as before,
 * and no process mentions the state dir.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  removeDir,
  runCli,
  snapshotHost,
  strayProcesses,
  tempDir,
  type CliResult,
  type HostSnapshot,
} from '../helpers/cli.js';
import { DEBIAN_TAG, debianLayout } from '../helpers/fixtures.js';

function expectOk(result: CliResult, what: string): void {
  expect(
    result.code,
    `${what}: exit code\n--- stdout (tail):\n${result.stdout.slice(-3000)}\n--- stderr (tail):\n${result.stderr.slice(-3000)}`,
  ).toBe(0);
}

describe('Debian bookworm end to end', () => {
  let image: string;
  let stateDir: string;
  let work: string;
  let before: HostSnapshot;

  beforeAll(async () => {
    image = `oci:${await debianLayout()}:${DEBIAN_TAG}`;
    before = snapshotHost();
    stateDir = tempDir('bc-debian-');
    work = tempDir('bc-debian-work-');
  }, 30 * 60_000);

  afterAll(async () => {
    if (stateDir) await removeDir(stateDir);
    if (work) await removeDir(work);
  });

  it(
    'apt-get update + install hello over the network with a host apt cache; the next cell is pristine',
    async () => {
      const cache = join(work, 'apt-archives');
      const common = ['--image', image, '--state-dir', stateDir];

      // 1. Install and run hello, as in `docker run debian:bookworm`.
      const install = await runCli([
        'run',
        ...common,
        '--network',
        'enabled',
        '--cache',
        `${cache}:/var/cache/apt/archives`,
        '--run',
        [
          // As Docker's docs say for a cache of apt's archives: the image's apt deletes the .debs.
          'rm -f /etc/apt/apt.conf.d/docker-clean',
          'apt-get update',
          'apt-get install -y --no-install-recommends hello',
          'hello',
          // apt's download sandbox: it dropped to _apt for its partial dirs, as it does in docker.
          'echo "archives-partial-owner=$(stat -c %U /var/cache/apt/archives/partial)"',
          'echo "lists-partial-owner=$(stat -c %U /var/lib/apt/lists/partial)"',
          'echo "uid=$(id -u)"',
          "dpkg-query -W -f 'status=${Status}\\n' hello",
        ].join('\n'),
      ]);
      expectOk(install, 'apt-get install hello');
      expect(install.stdout).toContain('Hello, world!');
      expect(install.stdout).toContain('archives-partial-owner=_apt');
      expect(install.stdout).toContain('lists-partial-owner=_apt');
      expect(install.stdout).toContain('uid=0');
      expect(install.stdout).toContain('status=install ok installed');
      const aptOutput = `${install.stdout}\n${install.stderr}`;
      // No sandbox fallback ("Download is performed unsandboxed as root ...") and no apt errors.
      expect(aptOutput).not.toMatch(/unsandboxed/i);
      expect(aptOutput).not.toMatch(/^(E|W): /m);

      // The cache came back to the host with the downloaded package.
      expect(existsSync(cache)).toBe(true);
      const debs = readdirSync(cache).filter((n) => /^hello_.*\.deb$/.test(n));
      expect(debs, `cache contents: ${readdirSync(cache).join(', ')}`).toHaveLength(1);
      expect(statSync(join(cache, debs[0]!)).size).toBeGreaterThan(10_000);

      // 2. A new cell on the same image: hello is not installed there (pristine base).
      const check = await runCli(['run', ...common, '--network', 'disabled', '--', 'dpkg', '-s', 'hello']);
      expect(check.code, `dpkg -s hello in a new cell: ${check.stdout}${check.stderr}`).toBe(1);
      expect(check.stderr).toMatch(/package 'hello' is not installed/);
      expect(check.stdout).not.toMatch(/Status: install ok installed/);
      const which = await runCli([
        'run',
        ...common,
        '--network',
        'disabled',
        '--run',
        'if command -v hello; then exit 3; fi; test ! -e /usr/bin/hello && echo absent',
      ]);
      expectOk(which, 'hello absent');
      expect(which.stdout).toBe('absent\n');

      // 3. Offline, from the cache the first cell filled: dpkg installs the cached .deb.
      const offline = await runCli([
        'run',
        ...common,
        '--network',
        'disabled',
        '--cache',
        `${cache}:/var/cache/apt/archives`,
        '--run',
        'dpkg -i /var/cache/apt/archives/hello_*.deb >/dev/null && hello',
      ]);
      expectOk(offline, 'offline install from the cache');
      expect(offline.stdout).toBe('Hello, world!\n');

      // Nothing of the cells is left in the state dir.
      expect(readdirSync(join(stateDir, 'cells'))).toEqual([]);
      expect(readdirSync(join(stateDir, 'tmp'))).toEqual([]);
      expect(readdirSync(join(stateDir, 'images', 'rootfs'))).toHaveLength(1);

      // After-check.
      expect(strayProcesses(stateDir), 'processes that outlived their run').toEqual([]);
      await removeDir(stateDir);
      const after = snapshotHost();
      expect(after.mounts, 'host mount table').toBe(before.mounts);
      expect(after.binfmt, 'host binfmt_misc state').toBe(before.binfmt);
      expect(after.cgroups, 'build-cell cgroups').toEqual(before.cgroups);
    },
    15 * 60_000,
  );
});
