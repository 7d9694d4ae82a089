import { afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveArch } from '../../src/emulation/arch.js';
import { ROOT_SENTINEL, Store, writeAtomic } from '../../src/image/store.js';

const D = `sha256:${'c0ffee'.repeat(10)}abcd`;
const HEX = D.slice('sha256:'.length);
const amd64 = resolveArch('amd64');
const arm = resolveArch('arm');
const arm64 = resolveArch('arm64');

describe('Store keys and paths', () => {
  const store = new Store('/state');

  it('places every directory under the state dir', () => {
    expect(store.imagesDir).toBe('/state/images');
    expect(store.cellsDir).toBe('/state/cells');
    expect(store.locksDir).toBe('/state/locks');
    expect(store.tmpDir).toBe('/state/tmp');
    expect(store.layoutDir(amd64, D)).toBe(`/state/images/layouts/amd64-${HEX}`);
    expect(store.rootfsDir(amd64, D)).toBe(`/state/images/rootfs/amd64-${HEX}`);
    expect(store.lockDir('image-x')).toBe('/state/locks/image-x.lock');
    expect(store.refFile('docker://debian', amd64)).toBe(
      `/state/images/refs/${store.refKey('docker://debian', amd64)}.json`,
    );
  });

  it('includes the variant for arm in the entry name', () => {
    expect(store.archKey(arm)).toBe('arm-v7');
    expect(store.archKey(arm64)).toBe('arm64');
    expect(store.entryName(arm, D)).toBe(`arm-v7-${HEX}`);
    expect(store.entryName(amd64, D)).toBe(`amd64-${HEX}`);
    expect(store.layoutDir(arm, D)).toBe(`/state/images/layouts/arm-v7-${HEX}`);
    expect(store.rootfsDir(arm, D)).toBe(`/state/images/rootfs/arm-v7-${HEX}`);
  });

  it('keeps the same digest for different arches apart', () => {
    expect(store.layoutDir(amd64, D)).not.toBe(store.layoutDir(arm64, D));
    expect(store.rootfsDir(arm, D)).not.toBe(store.rootfsDir(arm64, D));
  });

  it('refKey is a file name of its own per arch and reference, stable across state dirs', () => {
    const key = store.refKey('docker://debian:bookworm', amd64);
    expect(key).toBe('amd64-docker%3A%2F%2Fdebian%3Abookworm');
    expect(store.refKey('docker://debian:bookworm', amd64)).toBe(key);
    expect(new Store('/other').refKey('docker://debian:bookworm', amd64)).toBe(key);
    const keys = new Set([
      key,
      store.refKey('docker://debian:bookworm', arm64),
      store.refKey('docker://debian:bookworm', arm),
      store.refKey('docker://debian:trixie', amd64),
      store.refKey('docker://debian', amd64),
      store.refKey('debian:bookworm', amd64),
    ]);
    expect(keys.size).toBe(6);
  });

  it('refKey is filename-safe for any reference, and hashes a long one', () => {
    for (const ref of [
      'oci:/a b/../c:tag',
      "x!'()*~%",
      'docker://h:5000/a/b@sha256:' + 'f'.repeat(64),
      'é/☃',
      '.',
      '..',
    ]) {
      const key = store.refKey(ref, amd64);
      expect(key).toMatch(/^amd64-[A-Za-z0-9._%-]+$/);
      expect(key.length).toBeLessThan(255 - '.json'.length);
      expect(decodeURIComponent(key.slice('amd64-'.length))).toBe(ref);
    }
    const long = `docker://registry.example/${'x'.repeat(300)}:tag`;
    expect(store.refKey(long, amd64)).toMatch(/^amd64-sha256-[0-9a-f]{64}$/);
    expect(store.refKey(long, arm64)).not.toBe(store.refKey(long, amd64).replace('amd64', 'arm64'));
  });
});

describe('Store on disk', () => {
  let dir = '';
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('writes and reads ref records per arch', async () => {
    dir = await mkdtemp(join(tmpdir(), 'bc-store-'));
    const store = new Store(dir);
    expect(await store.readRef('docker://x', amd64)).toBeUndefined();
    const record = { reference: 'docker://x', arch: 'amd64', digest: D, resolvedAt: '2024-01-01T00:00:00.000Z' };
    await store.writeRef(record, amd64);
    expect(await store.readRef('docker://x', amd64)).toEqual(record);
    expect(await store.readRef('docker://x', arm64)).toBeUndefined();
    // No temporary files are left behind.
    expect(await readdir(join(dir, 'images', 'refs'))).toEqual([`${store.refKey('docker://x', amd64)}.json`]);
  });

  it('never returns a record written for another reference, whatever its file is named', async () => {
    dir = await mkdtemp(join(tmpdir(), 'bc-store-'));
    const store = new Store(dir);
    await mkdir(join(dir, 'images', 'refs'), { recursive: true });
    const other = { reference: 'docker://other', arch: 'amd64', digest: D, resolvedAt: '2024-01-01T00:00:00.000Z' };
    await writeFile(store.refFile('docker://x', amd64), JSON.stringify(other));
    expect(await store.readRef('docker://x', amd64)).toBeUndefined();
  });

  it('hasRootfs needs the sentinel', async () => {
    dir = await mkdtemp(join(tmpdir(), 'bc-store-'));
    const store = new Store(dir);
    await mkdir(store.rootfsDir(amd64, D), { recursive: true });
    expect(store.hasRootfs(amd64, D)).toBe(false);
    await writeFile(join(store.rootfsDir(amd64, D), ROOT_SENTINEL), dir);
    expect(store.hasRootfs(amd64, D)).toBe(true);
    expect(store.hasRootfs(arm, D)).toBe(false);
  });

  it('tempDir is under STATE/tmp, owner-only, and unique', async () => {
    dir = await mkdtemp(join(tmpdir(), 'bc-store-'));
    const store = new Store(dir);
    const a = await store.tempDir('layout');
    const b = await store.tempDir('layout');
    expect(a).not.toBe(b);
    expect(a.startsWith(join(dir, 'tmp', `layout-${process.pid}-`))).toBe(true);
  });

  it('commit moves the entry into place; a second commit keeps the first one', async () => {
    dir = await mkdtemp(join(tmpdir(), 'bc-store-'));
    const store = new Store(dir);
    const first = await store.tempDir('x');
    await writeFile(join(first, 'who'), 'first');
    const second = await store.tempDir('x');
    await writeFile(join(second, 'who'), 'second');
    const final = store.layoutDir(amd64, D);
    await store.commit(first, final);
    await store.commit(second, final);
    expect(await readFile(join(final, 'who'), 'utf8')).toBe('first');
    expect(await readdir(store.tmpDir)).toEqual([]);
  });

  it('writeAtomic creates parents and replaces the content', async () => {
    dir = await mkdtemp(join(tmpdir(), 'bc-store-'));
    const file = join(dir, 'a', 'b', 'f.json');
    await writeAtomic(file, 'one');
    await writeAtomic(file, 'two');
    expect(await readFile(file, 'utf8')).toBe('two');
    expect(await readdir(join(dir, 'a', 'b'))).toEqual(['f.json']);
  });
});
