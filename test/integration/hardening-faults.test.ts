/**
 * Faults with nothing lost: a disk that fills while a cache is synced back (overlay and copied
 * caches), and an image download that is cut, truncated or killed mid-blob (a proxy in front of
 * a real registry). Each is a clear error; no truncated cache content and no half-written store
 * entry is kept, and the next run through a healthy path works.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { busyboxLayout } from '../helpers/fixtures.js';
import {
  CLI,
  expectRefused,
  hostCheckedWork,
  onSmallDisk,
  removeDir,
  runCli,
  strayProcesses,
  tempDir,
} from '../helpers/cli.js';
import { pushLayout, startFaultyProxy, startRegistry, type FaultyProxy, type Registry } from '../helpers/registry.js';

let layout: string;
let state: string;
let work: string;

const entries = (dir: string) => (existsSync(dir) ? readdirSync(dir).sort() : []);

/** What the image store holds: complete entries, references, temporaries and locks. */
function store(stateDir: string) {
  return {
    layouts: entries(join(stateDir, 'images', 'layouts')),
    rootfs: entries(join(stateDir, 'images', 'rootfs')),
    refs: entries(join(stateDir, 'images', 'refs')),
    tmp: entries(join(stateDir, 'tmp')),
    locks: entries(join(stateDir, 'locks')),
  };
}

beforeAll(async () => {
  layout = await busyboxLayout();
  state = tempDir('bc-faults-state-');
});

afterAll(async () => {
  await removeDir(state);
});

hostCheckedWork(
  'faults',
  (dir) => (work = dir),
  () => state,
);

describe('a full disk during the cache sync', () => {
  /**
   * The host cache directory lives on a 1 MiB tmpfs, mounted in a mount namespace of the test's
   * own; the CLI runs inside it. Printed afterwards: the exit code, then each entry of the
   * cache (name, size, first bytes) and of the tmpfs top, before that namespace goes away.
   */
  function runOnSmallDisk(cacheName: string, script: string): { stdout: string; stderr: string } {
    const result = onSmallDisk(
      join(work, 'small'),
      '1m',
      [
        `mkdir "$1/${cacheName}" && echo old > "$1/${cacheName}/keep" && echo stays > "$1/${cacheName}/other"`,
        `"$2" "$3" run --state-dir "$4" --image "$5" --cache "$1/${cacheName}":/cache --run "$6"`,
        'echo "rc=$?"',
        `cd "$1/${cacheName}" && for f in $(ls -A); do printf '%s %s %s\\n' "$f" "$(stat -c %s "$f")" "$(head -c 8 "$f" | tr '\\0\\n' '0 ')"; done`,
        'echo "top: $(ls -A "$1" | tr "\\n" " ")"',
      ],
      [state, `oci:${layout}:amd64`, script],
    );
    return { stdout: result.stdout, stderr: result.stderr };
  }

  const WRITES =
    'head -c 2000000 /dev/zero > /cache/keep; head -c 4000000 /dev/zero > /cache/big; echo new > /cache/small';

  it('an overlay cache: a clear error; each host file keeps its old content or gets its whole new one, no partial or temporary file', () => {
    const { stdout, stderr } = runOnSmallDisk('cache', WRITES);
    const lines = stdout.split('\n').filter(Boolean);
    expect(lines[0], stderr).toBe('rc=125');
    expect(stderr).toMatch(/^build-cell: .*sync .*No space left on device/m);
    expect(lines.at(-1)).toBe('top: cache ');
    const files = lines.slice(1, -1).sort();
    // keep (2 MB) and big (4 MB) cannot fit: keep is the old one, big is absent; small may or
    // may not have been synced before the failure, but never partly.
    expect(files).toContain('keep 4 old ');
    expect(files).toContain('other 6 stays ');
    expect(files.filter((f) => !/^(keep|other) /.test(f))).toSatisfy(
      (rest: string[]) => rest.length === 0 || (rest.length === 1 && rest[0] === 'small 4 new '),
    );
  });

  it('a copied cache (its path holds a comma): the whole old cache stays as it was', () => {
    const { stdout, stderr } = runOnSmallDisk('c,1', WRITES);
    expect(stdout, stderr).toBe('rc=125\nkeep 4 old \nother 6 stays \ntop: c,1 \n');
    expect(stderr).toMatch(/^build-cell: .*sync cache \/cache back to .*c,1.*No space left on device/m);
  });
});

describe('an image download interrupted mid-blob', () => {
  let registry: Registry;
  let proxy: FaultyProxy;
  let fresh: string;

  beforeAll(async () => {
    registry = await startRegistry();
    await pushLayout(layout, 'amd64', registry.host, 'busybox', 'amd64');
    proxy = await startFaultyProxy(registry.host);
  });

  afterAll(async () => {
    await proxy?.stop();
    await registry?.stop();
  });

  beforeEach(() => {
    fresh = join(work, 'state');
    proxy.setFault('none');
  });

  const image = () => `${proxy.host}/busybox:amd64`;
  const runVia = (stateDir: string) =>
    runCli(['run', '--state-dir', stateDir, '--image', image(), '--tls-verify', 'false', '--', 'uname', '-m']);
  const layerFetches = () => proxy.requests().filter((r) => r.startsWith('GET') && r.includes('/blobs/'));

  /** After a failed download the next healthy run fetches the layer again and leaves one complete entry. */
  async function expectHealthyRunRecovers(stateDir: string): Promise<void> {
    proxy.setFault('none');
    const seen = proxy.requests().length;
    const next = await runVia(stateDir);
    expect(next.code, next.stderr).toBe(0);
    expect(next.stdout).toBe('x86_64\n');
    expect(
      proxy
        .requests()
        .slice(seen)
        .some((r) => r.startsWith('GET') && r.includes('/blobs/') && r.endsWith(' none')),
      'the layer was downloaded again',
    ).toBe(true);
    expect(store(stateDir)).toMatchObject({ tmp: [], locks: [] });
    expect(store(stateDir).layouts).toHaveLength(1);
    expect(store(stateDir).rootfs).toHaveLength(1);
    expect(store(stateDir).refs).toHaveLength(1);
  }

  it.each([
    ['cut', /cannot copy 127\.0\.0\.1:\d+\/busybox:amd64 \(amd64\): .*unexpected EOF/],
    ['truncate', /cannot copy 127\.0\.0\.1:\d+\/busybox:amd64 \(amd64\): .*Digest did not match/],
  ] as const)(
    'a %s layer: 125 naming the image, no store entry, and the next run downloads it whole',
    async (fault, message) => {
      proxy.setFault(fault);
      const failed = await runVia(fresh);
      expectRefused(failed, message);
      expect(
        layerFetches().some((r) => r.endsWith(` ${fault}`)),
        'the fault was served',
      ).toBe(true);
      expect(store(fresh)).toEqual({ layouts: [], rootfs: [], refs: [], tmp: [], locks: [] });
      await expectHealthyRunRecovers(fresh);
      await removeDir(fresh);
    },
  );

  it('a CLI killed (SIGKILL) while a layer hangs: the half-written download is never used, and the next run recovers', async () => {
    proxy.setFault('stall');
    const child = spawn(
      process.execPath,
      [CLI, 'run', '--state-dir', fresh, '--image', image(), '--tls-verify', 'false', '--', 'uname', '-m'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const closed = new Promise((resolve) => child.on('close', resolve));
    // Kill it once part of the layer is on its way; a CLI that ends before is a failure of its own.
    const ended = closed.then(() => {
      throw new Error(`the CLI ended before the download hung: ${stderr}`);
    });
    await Promise.race([proxy.faulted(), ended]);
    ended.catch(() => undefined);
    child.kill('SIGKILL');
    await closed;
    // skopeo dies with its parent (pdeathsig); give the kernel a moment to reap it.
    for (let i = 0; i < 100 && strayProcesses(fresh).length; i++) await new Promise((r) => setTimeout(r, 50));
    expect(strayProcesses(fresh)).toEqual([]);
    const left = store(fresh);
    expect(left).toMatchObject({ layouts: [], rootfs: [], refs: [] });
    // The half-written layout stays a temporary of the dead run (named after its PID), never renamed into place.
    expect(left.tmp).toHaveLength(1);
    expect(left.tmp[0]).toMatch(new RegExp(`^layout-${child.pid}-`));
    await expectHealthyRunRecovers(fresh);
    await removeDir(fresh);
  });
});
