/**
 * `build-cell store list|prune|verify` and the size cap, on real stores made by real runs:
 * sizes against du, prune by reference, age, size and all, the cap after a run, a prune while
 * a cell runs and a session is open, a hundred prepares racing a prune, verify finding a
 * corrupted blob and a half-removed rootfs, dead cells' scratch, and other users' stores
 * (rootless, and root's behind sudo). After each test, the host is as it was.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { busyboxLayout } from '../helpers/fixtures.js';
import { hostCheckedWork, removeDir, runCli, type RunCliOptions, expectOk } from '../helpers/cli.js';
import { layoutForUser, sudoAndPlainUsers } from '../helpers/users.js';

let layout: string;
let state: string;
let work: string;

beforeAll(async () => {
  layout = await busyboxLayout();
});
afterAll(async () => {
  await removeDir(state);
});
hostCheckedWork(
  'store',
  (dir) => {
    work = dir;
    state = join(dir, 'state');
  },
  () => state,
);

interface ListedImage {
  entry: string;
  arch: string;
  digest: string;
  references: string[];
  installKeys: string[];
  derived: boolean;
  base?: string;
  parts: string[];
  size: number;
  unique: number;
  lastUsed: string;
  inUse: boolean;
  holders: Array<{ kind: string; pid?: number; dir?: string }>;
}
interface Listing {
  images: ListedImage[];
  total: number;
  stateDirBytes: number;
  free: number;
}
interface Pruned {
  removed: Array<{ digest: string; references: string[]; bytes: number }>;
  kept: Array<{ entry: string; why: string }>;
  cells: Array<{ dir: string }>;
  temporaries: Array<{ path: string }>;
  freed: number;
  dryRun: boolean;
}

const image = (arch: string) => `oci:${layout}:${arch}`;
const run = (args: string[], options?: RunCliOptions) => runCli(['run', '--state-dir', state, ...args], options);
const store = (args: string[], options?: RunCliOptions) => runCli(['store', ...args, '--state-dir', state], options);

async function list(options?: RunCliOptions): Promise<Listing> {
  const result = await store(['list', '--json'], options);
  expectOk(result, 'store list');
  return JSON.parse(result.stdout) as Listing;
}

async function prune(args: string[], options?: RunCliOptions): Promise<Pruned> {
  const result = await store(['prune', '--json', ...args], options);
  expectOk(result, `store prune ${args.join(' ')}`);
  return JSON.parse(result.stdout) as Pruned;
}

/** An image's parts in the store, as paths du can take. */
function partPaths(entry: string): string[] {
  const images = join(state, 'images');
  return [
    join(images, 'layouts', entry),
    join(images, 'rootfs', entry),
    join(images, 'erofs', `${entry}.erofs`),
    join(images, 'erofs', `${entry}.json`),
    join(images, 'mounts', entry),
  ].filter((p) => existsSync(p));
}

/** du's disk usage of paths together (a hard-linked file once), in bytes. */
function du(paths: string[]): number {
  const out = execFileSync('du', ['-s', '-B1', '-c', ...paths], { encoding: 'utf8' });
  return Number(out.trim().split('\n').at(-1)!.split('\t')[0]);
}

/** Make an image look last used (and made) `days` ago. */
function age(entry: string, days: number): void {
  const when = new Date(Date.now() - days * 86_400_000);
  for (const path of [join(state, 'images', 'used', entry), ...partPaths(entry)])
    if (existsSync(path)) utimesSync(path, when, when);
}

describe('build-cell store list', () => {
  it('lists each image with its references, install key and base, sizes as du counts them, and the total', async () => {
    expectOk(await run(['--image', image('amd64'), '--', '/bin/true']), 'amd64');
    expectOk(await run(['--image', image('arm64'), '--arch', 'arm64', '--', '/bin/true']), 'arm64');
    expectOk(
      await run(['--image', image('amd64'), '--install', 'head -c 300000 /dev/urandom > /opt-blob', '--', '/bin/true']),
      'install',
    );
    const listing = await list();
    expect(listing.images).toHaveLength(3);
    const [amd64, arm64, derived] = [
      listing.images.find((i) => i.references.includes(image('amd64')))!,
      listing.images.find((i) => i.arch === 'arm64')!,
      listing.images.find((i) => i.derived)!,
    ];
    expect(amd64).toMatchObject({ arch: 'amd64', derived: false, inUse: false, installKeys: [] });
    expect(arm64.references).toEqual([image('arm64')]);
    expect(derived.installKeys).toHaveLength(1);
    expect(derived.base).toBe(amd64.digest);
    // Sizes as du counts them: each image alone, and all together (the derived rootfs is a
    // hard-link copy of its base's, counted once).
    for (const i of listing.images) expect(i.size, i.entry).toBe(du(partPaths(i.entry)));
    expect(listing.total).toBe(du(listing.images.flatMap((i) => partPaths(i.entry))));
    expect(listing.total).toBeLessThan(listing.images.reduce((sum, i) => sum + i.size, 0));
    // And the whole state dir (scratch, records, locks, the code cache too), as du -s says it:
    // asked again, once the launcher has written the code cache of `store` at its first exit.
    expect((await list()).stateDirBytes).toBe(du([state]));
    expect(derived.unique).toBeLessThan(derived.size);
    expect(listing.free).toBeGreaterThan(0);
    // Least recently used first.
    const used = listing.images.map((i) => Date.parse(i.lastUsed));
    expect(used).toEqual([...used].sort((a, b) => a - b));
    const table = await store(['list']);
    expectOk(table, 'store list');
    expect(table.stdout).toMatch(/^IMAGE +ARCH +DIGEST +SIZE +UNIQUE +LAST USED +IN USE/);
    expect(table.stdout).toContain(`install ${derived.installKeys[0]!.slice(0, 12)} on ${amd64.digest.slice(0, 19)}`);
    expect(table.stdout).toMatch(
      /total .* in 3 image\(s\), hard links counted once \(the state dir: .*\); .* free of /,
    );
  });
});

describe('build-cell store prune', () => {
  it('without conditions removes only the images no reference names (a tag that moved on)', async () => {
    const moving = join(work, 'moving');
    execFileSync('skopeo', ['copy', '--quiet', `oci:${layout}:amd64`, `oci:${moving}:tag`]);
    expectOk(await run(['--image', `oci:${moving}:tag`, '--', '/bin/true']), 'first');
    expectOk(await run(['--image', image('arm64'), '--arch', 'arm64', '--', '/bin/true']), 'arm64');
    const [first] = (await list()).images;
    // The tag moves on (a new manifest: another config), and the next run resolves it anew.
    execFileSync('umoci', ['config', '--image', `${moving}:tag`, '--config.env', 'MOVED=1']);
    expectOk(await run(['--image', `oci:${moving}:tag`, '--pull', 'always', '--', '/bin/true']), 'moved');
    const before = await list();
    expect(before.images).toHaveLength(3);
    expect(before.images.find((i) => i.digest === first!.digest)!.references).toEqual([]);
    const pruned = await prune([]);
    expect(pruned.removed.map((i) => i.digest)).toEqual([first!.digest]);
    const after = await list();
    expect(after.images.map((i) => i.references)).toEqual(
      expect.arrayContaining([[image('arm64')], [`oci:${moving}:tag`]]),
    );
    expect(after.images).toHaveLength(2);
  });

  it('by age, by size least recently used first, all, and --dry-run', async () => {
    for (const arch of ['amd64', 'arm64', 'arm'])
      expectOk(await run(['--image', image(arch), '--arch', arch, '--', '/bin/true']), arch);
    const { images } = await list();
    const byArch = (arch: string) => images.find((i) => i.arch === arch)!;
    age(byArch('arm').entry, 10);
    age(byArch('arm64').entry, 3);
    const dry = await prune(['--older-than', '2d', '--dry-run']);
    expect(dry.dryRun).toBe(true);
    expect(dry.removed.map((i) => i.digest)).toEqual([byArch('arm').digest, byArch('arm64').digest]);
    expect((await list()).images).toHaveLength(3);
    const old = await prune(['--older-than', '1w']);
    expect(old.removed.map((i) => i.digest)).toEqual([byArch('arm').digest]);
    expect(old.freed).toBe(byArch('arm').size);
    expect(existsSync(join(state, 'images', 'rootfs', byArch('arm').entry))).toBe(false);
    // arm64 is now the least recently used: a cap of amd64's size removes it alone.
    const sized = await prune(['--max-size', String(byArch('amd64').size)]);
    expect(sized.removed.map((i) => i.digest)).toEqual([byArch('arm64').digest]);
    const left = await list();
    expect(left.images.map((i) => i.digest)).toEqual([byArch('amd64').digest]);
    expect(left.total).toBe(du(partPaths(byArch('amd64').entry)));
    const all = await prune(['--all']);
    expect(all.removed.map((i) => i.digest)).toEqual([byArch('amd64').digest]);
    expect((await list()).images).toEqual([]);
    // Pruned images come back on the next run.
    expectOk(await run(['--image', image('arm'), '--arch', 'arm', '--', '/bin/true']), 'after prune');
  });

  it('by size, takes the next least recently used image when one is locked (being prepared)', async () => {
    for (const arch of ['amd64', 'arm64', 'arm'])
      expectOk(await run(['--image', image(arch), '--arch', arch, '--', '/bin/true']), arch);
    const [oldest, middle, newest] = (await list()).images;
    // The oldest is being prepared by a live process (this one): its lock is taken.
    const lock = join(state, 'locks', `image-${oldest!.entry}.lock`);
    mkdirSync(lock, { recursive: true });
    writeFileSync(join(lock, 'owner'), JSON.stringify({ pid: process.pid }));
    const pruned = await prune(['--max-size', String(newest!.size + oldest!.size)]);
    expect(pruned.kept).toEqual([{ entry: oldest!.entry, why: expect.stringMatching(/^locked/) }]);
    expect(pruned.removed.map((i) => i.digest)).toEqual([middle!.digest]);
    await removeDir(lock);
    expect((await list()).images.map((i) => i.digest)).toEqual([oldest!.digest, newest!.digest]);
  });

  it('takes the scratch of dead cells and stale temporaries, and says so', async () => {
    const kept = await run(['--image', image('amd64'), '--cleanup', 'never', '--', '/bin/true']);
    expectOk(kept, 'kept scratch');
    const scratch = /scratch preserved at (\S+)/.exec(kept.stderr)![1]!;
    const stale = join(state, 'tmp', 'layout-999999999-abcd');
    mkdirSync(stale, { recursive: true });
    writeFileSync(join(stale, 'half'), 'x');
    const pruned = await prune([]);
    expect(pruned.cells.map((c) => c.dir)).toEqual([scratch]);
    expect(pruned.temporaries.map((t) => t.path)).toEqual([stale]);
    expect(existsSync(scratch) || existsSync(stale)).toBe(false);
    expect((await list()).images).toHaveLength(1);
  });

  it('rejects bad conditions before touching the store', async () => {
    for (const [args, field] of [
      [['--older-than', '3 days'], /--older-than: must be a duration such as 30m, 12h, 7d or 2w/],
      [['--max-size', 'lots'], /--max-size: must be a size/],
      [['--all', '--older-than', '1d'], /--all: removes every image not in use/],
      [['--everything'], /Unknown option '--everything'/],
    ] as const) {
      const result = await store(['prune', ...args]);
      expect(result.code, result.stderr).toBe(125);
      expect(result.stderr).toMatch(field);
    }
    expect((await store(['tidy'])).stderr).toMatch(/unknown store command "tidy": accepted are list, prune, verify/);
    // A store not made yet is an empty one, on its parent's filesystem; nothing is created.
    const empty = await list();
    expect(empty.images).toEqual([]);
    expect(empty.free).toBeGreaterThan(0);
    expect(existsSync(state)).toBe(false);
  });
});

describe('the size cap (--store-max-size)', () => {
  it('after a run removes the least recently used images until the store fits, never the one just used', async () => {
    for (const arch of ['amd64', 'arm64', 'arm'])
      expectOk(await run(['--image', image(arch), '--arch', arch, '--', '/bin/true']), arch);
    const before = await list();
    const [oldest, middle, newest] = before.images;
    const capped = await run([
      '--image',
      image(newest!.arch),
      '--arch',
      newest!.arch,
      '--store-max-size',
      '1M',
      '--result-file',
      join(work, 'result.json'),
      '--',
      '/bin/true',
    ]);
    expectOk(capped, 'capped run');
    expect(capped.stderr).toMatch(/store cap 1 MB: images .* removed /);
    const after = await list();
    // 1M is below any image: all the others go, the one the run used stays.
    expect(after.images.map((i) => i.digest)).toEqual([newest!.digest]);
    const result = JSON.parse(readFileSync(join(work, 'result.json'), 'utf8')) as {
      store: { maxBytes: number; before: number; after: number; removed: Array<{ digest: string }> };
    };
    expect(result.store.maxBytes).toBe(1024 * 1024);
    expect(result.store.removed.map((i) => i.digest)).toEqual([oldest!.digest, middle!.digest]);
    expect(result.store.after).toBe(after.total);
    // A cap the store fits in removes nothing.
    const roomy = await run(['--image', image('amd64'), '--store-max-size', '1G', '--', '/bin/true']);
    expectOk(roomy, 'roomy');
    expect((await list()).images).toHaveLength(2);
    const bad = await run(['--image', image('amd64'), '--store-max-size', 'big', '--', '/bin/true']);
    expect(bad.code).toBe(125);
    expect(bad.stderr).toMatch(/--store-max-size: must be a size of at least 1M/);
  });
});

describe('prune beside running cells and sessions', () => {
  it('keeps the image of a running cell and of an open session; both finish green', async () => {
    const session = (args: string[]) => runCli(['session', ...args, '--name', 'held', '--state-dir', state]);
    // Started without a command: only its image prepared, held by its root layer from then on.
    expectOk(await session(['start', '--image', image('arm64'), '--arch', 'arm64']), 'start');
    const cell = run(['--image', image('amd64'), '--', '/bin/sh', '-c', 'sleep 8; echo done']);
    let listing = await list();
    for (let i = 0; i < 100 && !listing.images.find((l) => l.arch === 'amd64')?.inUse; i++) {
      await new Promise((r) => setTimeout(r, 50));
      listing = await list();
    }
    expect(listing.images.every((i) => i.inUse)).toBe(true);
    expect(listing.images.find((i) => i.arch === 'amd64')!.holders[0]!.kind).toBe('cell');
    expect(listing.images.find((i) => i.arch === 'arm64')!.holders.map((h) => h.kind)).toContain('session');
    const pruned = await prune(['--all']);
    expect(pruned.removed).toEqual([]);
    expect(pruned.kept.map((k) => k.why).join('\n')).toMatch(
      /in use by a running cell[\s\S]*session|session[\s\S]*running cell/,
    );
    const finished = await cell;
    expectOk(finished, 'cell');
    expect(finished.stdout).toContain('done');
    expectOk(await session(['exec', '--run', 'echo one > /root/s']), 'exec');
    const step = await session(['exec', '--run', 'cat /root/s']);
    expectOk(step, 'exec');
    expect(step.stdout).toBe('one\n');
    expectOk(await session(['end']), 'end');
    // Both free now: the next prune takes them.
    expect((await prune(['--all'])).removed).toHaveLength(2);
  });

  it('a hundred prepares racing a prune of the same image never fail', async () => {
    let removedSome = 0;
    for (let i = 0; i < 100; i++) {
      // Every tenth an install step's derived image (found by its key, or made again).
      const install = i % 10 === 0 ? ['--install', 'touch /raced'] : [];
      const prepare = runCli(['prepare', '--image', image('amd64'), '--state-dir', state, ...install]);
      await new Promise((r) => setTimeout(r, (i % 5) * 100));
      const pruned = await prune(['--all']);
      removedSome += pruned.removed.length;
      expectOk(await prepare, `prepare #${i + 1}`);
    }
    expect(removedSome).toBeGreaterThan(0);
    // Whatever the race left is whole.
    expectOk(await run(['--image', image('amd64'), '--', '/bin/true']), 'after the race');
    expect(readdirSync(join(state, 'tmp'))).toEqual([]);
  }, 300_000);
});

describe('build-cell store verify', () => {
  it('finds a corrupted blob and a half-removed rootfs, removes them with their names, and the next run prepares them afresh', async () => {
    expectOk(await run(['--image', image('amd64'), '--', '/bin/true']), 'amd64');
    expectOk(await run(['--image', image('arm64'), '--arch', 'arm64', '--', '/bin/true']), 'arm64');
    expectOk(await run(['--image', image('arm'), '--arch', 'arm', '--', '/bin/true']), 'arm');
    const whole = await store(['verify', '--json']);
    expectOk(whole, 'verify');
    expect(JSON.parse(whole.stdout)).toEqual({ checked: 3, broken: [] });
    const { images } = await list();
    const [amd64, arm64] = [images.find((i) => i.arch === 'amd64')!, images.find((i) => i.arch === 'arm64')!];
    const blobs = join(state, 'images', 'layouts', amd64.entry, 'blobs', 'sha256');
    const blob = readdirSync(blobs)[0]!;
    execFileSync('sh', ['-c', `printf X | dd of=${join(blobs, blob)} bs=1 seek=10 conv=notrunc 2>/dev/null`]);
    // Half removed: an interrupted rm -rf took a directory, the sentinel stayed.
    execFileSync('rm', ['-rf', join(state, 'images', 'rootfs', arm64.entry, 'bin')]);
    const verified = await store(['verify', '--json']);
    expectOk(verified, 'verify');
    const report = JSON.parse(verified.stdout) as {
      checked: number;
      broken: Array<{ digest: string; references: string[]; problems: string[]; removed: boolean }>;
    };
    expect(report.checked).toBe(3);
    expect(report.broken.map((b) => b.digest).sort()).toEqual([amd64.digest, arm64.digest].sort());
    expect(report.broken.every((b) => b.removed)).toBe(true);
    expect(report.broken.find((b) => b.digest === amd64.digest)!.problems.join()).toContain(`sha256:${blob}`);
    expect(report.broken.find((b) => b.digest === arm64.digest)!.problems.join()).toMatch(
      /entries, it had \d+ when it was made/,
    );
    const text = await store(['verify']);
    expect(text.stdout).toBe('checked 1 image(s): all whole\n');
    expect((await list()).images.map((i) => i.arch)).toEqual(['arm']);
    const again = await run(['--image', image('amd64'), '--', '/bin/busybox', 'true']);
    expectOk(again, 'amd64 again');
    expectOk(await run(['--image', image('arm64'), '--arch', 'arm64', '--', '/bin/true']), 'arm64 again');
  });
});

describe('other users’ stores', () => {
  const users = sudoAndPlainUsers('bc-store');
  for (const [user, privilege] of [
    ['plain', 'rootless'],
    ['sudo', 'sudo'],
  ] as const) {
    it(`${privilege}: the user lists and prunes the store their cells made`, async () => {
      const name = user === 'plain' ? users.plainUser : users.sudoUser;
      const dir = join(users.home(), privilege);
      mkdirSync(dir, { recursive: true });
      execFileSync('chown', ['-R', `${name}:${name}`, dir]);
      const userLayout = layoutForUser(layout, dir, name);
      const as = { wrapper: ['runuser', '-u', name, '--'], cwd: dir, env: { PATH: process.env.PATH, HOME: dir } };
      const userState = join(dir, 'state');
      expectOk(
        await runCli(
          [
            'run',
            '--state-dir',
            userState,
            '--privilege',
            privilege,
            '--image',
            `oci:${userLayout}:amd64`,
            '--',
            '/bin/true',
          ],
          as,
        ),
        'run',
      );
      const listed = await runCli(['store', 'list', '--json', '--state-dir', userState], as);
      expectOk(listed, 'list');
      expect((JSON.parse(listed.stdout) as Listing).images).toHaveLength(1);
      const pruned = await runCli(['store', 'prune', '--all', '--json', '--state-dir', userState], as);
      expectOk(pruned, 'prune');
      expect((JSON.parse(pruned.stdout) as Pruned).removed).toHaveLength(1);
      expect(readdirSync(join(userState, 'images', 'rootfs'))).toEqual([]);
      await removeDir(dir);
    });
  }
});
