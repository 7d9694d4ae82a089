/**
 * The store's upkeep without root: entry names, durations, the store command's flags and the
 * cap's, which images a prune chooses (shared inodes freed with their last image), holds and
 * last use on a scratch store, disk usage counting hard links once, and what is printed.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { linkSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCli, type CliEnvironment } from '../../src/cli/args.js';
import { optionalDuration } from '../../src/cellspec/text.js';
import { parseEntryName, Store } from '../../src/image/store.js';
import { ImageHolds, lastUsed, liveHolders } from '../../src/image/usage.js';
import { choosePrune, freeing } from '../../src/store/prune.js';
import type { StoreImage, StoreInventory } from '../../src/store/inventory.js';
import { describeCap } from '../../src/store/cap-report.js';
import { formatBytes, imageName } from '../../src/cli/store-format.js';
import { addUsage, diskUsage, emptyUsage, usageBytes } from '../../src/util/disk-usage.js';
import { parseInputs } from '../../src/action/inputs.js';
import { expectUserError } from './spec-fixture.js';

const HEX = 'ab'.repeat(32);
const ENV: CliEnvironment = { cwd: '/home/u', env: { HOME: '/home/u' }, uid: 1000 };
const cli = (argv: string[]) => parseCli(argv, ENV);

describe('entry names and durations', () => {
  it('reads an entry name back into its arch key and digest', () => {
    expect(parseEntryName(`amd64-${HEX}`)).toEqual({ archKey: 'amd64', digest: `sha256:${HEX}` });
    expect(parseEntryName(`arm-v7-${HEX}`)).toEqual({ archKey: 'arm-v7', digest: `sha256:${HEX}` });
    expect(parseEntryName('amd64-short')).toBeUndefined();
    expect(parseEntryName(`../amd64-${HEX}`)).toBeUndefined();
  });

  it('parses durations in s, m, h, d, w and their sums', () => {
    expect(optionalDuration('90s', 'f')).toBe(90_000);
    expect(optionalDuration('30m', 'f')).toBe(1_800_000);
    expect(optionalDuration('7d', 'f')).toBe(7 * 86_400_000);
    expect(optionalDuration('2w', 'f')).toBe(14 * 86_400_000);
    expect(optionalDuration('1d12h', 'f')).toBe(36 * 3_600_000);
    expect(optionalDuration('0s', 'f')).toBe(0);
    expect(optionalDuration(undefined, 'f')).toBeUndefined();
    for (const bad of ['', '7', '7 days', '1y', 'd', '-1d', '1.5h'])
      expectUserError(() => optionalDuration(bad, '--older-than'), '--older-than', 'units s, m, h, d, w');
  });
});

describe('parseCli: store', () => {
  it('takes list, prune and verify with their flags', () => {
    expect(cli(['store', 'list'])).toMatchObject({
      kind: 'store',
      action: 'list',
      stateDir: '/home/u/.cache/build-cell',
      json: false,
    });
    expect(cli(['store', 'list', '--json', '--state-dir', 'st'])).toMatchObject({ json: true, stateDir: '/home/u/st' });
    expect(cli(['store', 'prune', '--older-than', '7d', '--max-size', '20G', '--dry-run'])).toMatchObject({
      action: 'prune',
      olderThanMs: 7 * 86_400_000,
      maxBytes: 20 * 1024 ** 3,
      dryRun: true,
    });
    expect(cli(['store', 'prune', '--all'])).toMatchObject({ all: true });
    expect(cli(['store', 'verify', '--json'])).toMatchObject({ action: 'verify', json: true });
  });

  it('refuses what it cannot do, naming the flag', () => {
    expectUserError(() => cli(['store']), 'store', 'accepted are list, prune, verify');
    expectUserError(() => cli(['store', 'clean']), 'store', '"clean"');
    expectUserError(() => cli(['store', 'prune', '--all', '--max-size', '1G']), '--all', 'neither --older-than');
    expectUserError(() => cli(['store', 'prune', '--max-size', 'ten']), '--max-size', 'such as 512M');
    expect(cli(['store', 'prune', '--max-size', '0'])).toMatchObject({ maxBytes: 0 });
    expectUserError(() => cli(['store', 'list', '--all']), 'arguments', "Unknown option '--all'");
  });

  it('takes --store-max-size on run, prepare and session start', () => {
    const run = cli(['run', '--image', 'busybox', '--store-max-size', '20G', '--', 'true']);
    expect(run).toMatchObject({ kind: 'run', storeMaxSize: 20 * 1024 ** 3 });
    expect(cli(['prepare', '--image', 'busybox', '--store-max-size', '512M'])).toMatchObject({
      storeMaxSize: 512 * 1024 ** 2,
    });
    expect(cli(['session', 'start', '--image', 'busybox', '--store-max-size', '1G'])).toMatchObject({
      kind: 'session-start',
      storeMaxSize: 1024 ** 3,
    });
    expect(cli(['run', '--image', 'busybox', '--', 'true'])).not.toHaveProperty('storeMaxSize');
    expectUserError(() => cli(['run', '--image', 'b', '--store-max-size', 'lots', '--', 'true']), '--store-max-size');
  });

  it('maps the action input store-max-size', () => {
    const env = { GITHUB_WORKSPACE: '/w', RUNNER_TEMP: '/t' };
    const read = (values: Record<string, string>) => (name: string) =>
      ({ image: 'debian:bookworm', run: 'true', ...values })[name] ?? '';
    expect(parseInputs(read({ 'store-max-size': '20G' }), env).storeMaxSize).toBe(20 * 1024 ** 3);
    expect(parseInputs(read({}), env).storeMaxSize).toBeUndefined();
    expectUserError(() => parseInputs(read({ 'store-max-size': 'half' }), env), 'store-max-size', 'such as 512M');
  });
});

/** An image of a made-up inventory: `own` bytes of its own, and shared inodes. */
function img(
  entry: string,
  lastUsed: number,
  own: number,
  shared: Record<string, number> = {},
  extra: Partial<StoreImage> = {},
): StoreImage {
  return {
    entry,
    arch: 'amd64',
    digest: `sha256:${entry}`,
    parts: ['layout', 'rootfs'],
    references: [`ref-${entry}`],
    installKeys: [],
    bytes: 0,
    unique: 0,
    lastUsed,
    holders: [],
    usage: { entries: 1, bytes: own, shared: new Map(Object.entries(shared)) },
    ...extra,
  };
}

function inventory(images: StoreImage[]): StoreInventory {
  const all = emptyUsage();
  for (const i of images) addUsage(all, i.usage);
  return { stateDir: '/s', images, bytes: usageBytes(all), filesystem: { size: 0, free: 0 } };
}

describe('choosePrune', () => {
  const DAY = 86_400_000;
  const now = 100 * DAY;
  // A base and its derived image share 100 bytes of hard links.
  const base = img('base', now - 30 * DAY, 10, { i1: 60, i2: 40 });
  const derived = img('derived', now - 20 * DAY, 5, { i1: 60, i2: 40 }, { references: [], installKeys: ['k'] });
  const other = img('other', now - 10 * DAY, 50);
  const fresh = img('fresh', now - DAY, 20);
  const dangling = img('dangling', now - 5 * DAY, 7, {}, { references: [] });
  const inv = inventory([base, derived, other, dangling, fresh]);

  it('counts a shared inode once, and frees it with the last image that has it', () => {
    expect(inv.bytes).toBe(10 + 5 + 100 + 50 + 20 + 7);
    const shrink = freeing(inv);
    expect(shrink.remove(base)).toBe(10);
    expect(shrink.remove(derived)).toBe(105);
    expect(shrink.total()).toBe(77);
  });

  it('removes only unnamed images without conditions', () => {
    expect(choosePrune(inv, { now }).map((i) => i.entry)).toEqual(['dangling']);
  });

  it('removes by age, then by size least recently used first, and all', () => {
    expect(choosePrune(inv, { now, olderThanMs: 15 * DAY }).map((i) => i.entry)).toEqual(['base', 'derived']);
    // Fitting in 80 bytes: removing base frees 10 (its links stay with derived), derived 105.
    expect(choosePrune(inv, { now, maxBytes: 80 }).map((i) => i.entry)).toEqual(['base', 'derived']);
    expect(choosePrune(inv, { now, maxBytes: 185 }).map((i) => i.entry)).toEqual(['base']);
    expect(choosePrune(inv, { now, maxBytes: 1000 })).toEqual([]);
    expect(choosePrune(inv, { now, olderThanMs: 25 * DAY, maxBytes: 30 }).map((i) => i.entry)).toEqual([
      'base',
      'derived',
      'other',
    ]);
    expect(choosePrune(inv, { now, all: true })).toHaveLength(5);
  });

  it('never chooses a held image or one to keep, even when the size is not met', () => {
    const held = inventory([{ ...base, holders: [{ kind: 'cell', pid: 1, start: '1' }] }, derived, other, fresh]);
    expect(choosePrune(held, { now, all: true }).map((i) => i.entry)).toEqual(['derived', 'other', 'fresh']);
    expect(choosePrune(held, { now, maxBytes: 0, keep: ['fresh'] }).map((i) => i.entry)).toEqual(['derived', 'other']);
  });
});

describe('holds and last use', () => {
  let dir: string;
  let store: Store;
  const entry = `amd64-${HEX}`;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'bc-upkeep-'));
    store = new Store(dir);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('holds an image for this process until released, and marks its use', () => {
    const holds = new ImageHolds();
    expect(lastUsed(store, entry, 5)).toBe(5);
    holds.use(store, entry);
    holds.use(store, entry);
    expect(holds.entries()).toEqual([entry]);
    expect(liveHolders(store, entry)).toEqual([expect.objectContaining({ kind: 'cell', pid: process.pid })]);
    expect(lastUsed(store, entry, 5)).toBeGreaterThan(Date.now() - 60_000);
    holds.release();
    expect(liveHolders(store, entry)).toEqual([]);
    // Nothing left: the holds dir went with the last hold.
    expect(readdirSync(join(dir, 'images', 'holds'))).toEqual([]);
  });

  it("keeps a session's hold while its root layer exists, and drops dead ones", () => {
    const layer = join(dir, 'sessions', 'job-s');
    mkdirSync(layer, { recursive: true });
    new ImageHolds(layer).use(store, entry);
    writeFileSync(join(store.holdsDir(entry), 'cell-999999999-1'), '');
    writeFileSync(join(store.holdsDir(entry), 'stray'), '');
    expect(liveHolders(store, entry).map((h) => h.kind)).toEqual(['cell', 'session']);
    const left = readdirSync(store.holdsDir(entry)).sort();
    expect(left).toHaveLength(2);
    expect(left[0]).toMatch(new RegExp(`^cell-${process.pid}-\\d+$`));
    expect(left[1]).toBe('session-job-s');
    rmSync(layer, { recursive: true });
    // This process's own hold stays live until released.
    expect(liveHolders(store, entry).map((h) => h.kind)).toEqual(['cell']);
  });
});

describe('disk usage', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'bc-du-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('counts a hard-linked file once across trees', () => {
    mkdirSync(join(dir, 'a'));
    mkdirSync(join(dir, 'b'));
    writeFileSync(join(dir, 'a', 'big'), Buffer.alloc(64 * 1024, 1));
    writeFileSync(join(dir, 'a', 'own'), Buffer.alloc(8 * 1024, 1));
    linkSync(join(dir, 'a', 'big'), join(dir, 'b', 'big'));
    const a = diskUsage(join(dir, 'a'));
    const b = diskUsage(join(dir, 'b'));
    expect(a.entries).toBe(3);
    expect(a.shared.size).toBe(1);
    const both = usageBytes(addUsage(addUsage(emptyUsage(), a), b));
    expect(both).toBe(usageBytes(a) + usageBytes(b) - [...b.shared.values()][0]!);
    expect(diskUsage(join(dir, 'missing'))).toEqual(emptyUsage());
  });
});

describe('what the store commands print', () => {
  it('says sizes as du -h --si does, and names images', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(999)).toBe('999 B');
    expect(formatBytes(3_166_208)).toBe('3.2 MB');
    expect(formatBytes(183_967_744)).toBe('184 MB');
    expect(formatBytes(2.5e12)).toBe('2.5 TB');
    expect(imageName({ references: [], installKeys: ['0123456789abcdef'], base: `sha256:${HEX}` })).toBe(
      `install 0123456789ab on sha256:${HEX.slice(0, 12)}`,
    );
    expect(imageName({ references: [], installKeys: [] })).toBe('(no reference)');
  });

  it("describes the cap's doing", () => {
    const removed = [
      {
        entry: 'e',
        arch: 'arm64',
        digest: 'sha256:x',
        references: ['debian:12'],
        installKeys: [],
        lastUsed: '',
        bytes: 2e8,
      },
    ];
    expect(describeCap({ maxBytes: 1e9, before: 1.2e9, after: 1e9, removed, kept: [], ms: 3.5 })).toBe(
      'store cap 1000 MB: images 1200 MB -> 1000 MB, removed debian:12 (arm64, 200 MB) (3.5 ms)',
    );
    expect(describeCap({ maxBytes: 1e9 })).toBe('store cap 1000 MB: not applied');
  });
});
