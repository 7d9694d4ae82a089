/**
 * syncChanges: an overlay cache's upper layer applied back to the host directory it was
 * layered on. Real files in temp dirs. Whiteouts (char devices 0/0) and chown need root: the
 * whole file is skipped without it. The cell's view is emulated by a plain directory holding
 * the names the cell sees; one test also builds upper and view with a real overlay mount.
 */
import { HELPER_SCRIPT } from '../../src/cell/helper-script.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chmod, chown, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { syncCaches, syncChanges } from '../../src/write-back/caches.js';
import { planCell, type CellPlan } from '../../src/cell/plan.js';
import { baseSpec } from './spec-fixture.js';
import {
  canMountOverlay,
  exists,
  isRoot,
  listing,
  mkfifo,
  runOverlay as overlay,
  view,
  whiteout,
  write,
  type Tree,
} from './tree-fixture.js';

const OWNER = { uid: 4242, gid: 4242 };

describe.skipIf(!isRoot)('syncChanges', () => {
  let base = '';
  let host = '';
  let upper = '';
  let cell = '';
  let outside = '';

  beforeEach(async () => {
    base = await mkdtemp(join(tmpdir(), 'bc-sync-'));
    host = join(base, 'host');
    upper = join(base, 'upper');
    cell = join(base, 'view');
    outside = join(base, 'outside');
    const many: Tree = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`keep-${i}.txt`, `keep ${i}`]));
    await write(host, {
      ...many,
      'changed.txt': 'old',
      'deleted.txt': 'doomed',
      olddir: { 'a.txt': 'a', nested: { 'b.txt': 'b' } },
      'kept-dir': { 'k.txt': 'k' },
      'changed-dir': { 'x.txt': 'old x', 'y.txt': 'y' },
      opaque: { 'a.txt': 'a', 'b.txt': 'b', sub: { 'c.txt': 'c' } },
    });
    await write(outside, { 'secret.txt': 'secret' });
    await symlink(outside, join(host, 'link-out'));
    await write(join(base, 'outside2'), { 'secret2.txt': 'secret2' });
    await symlink(join(base, 'outside2'), join(host, 'link-gone'));

    // What the cell did, as overlayfs records it in the upper layer.
    await write(upper, {
      'changed.txt': 'new',
      'new.txt': 'fresh',
      newdir: { sub: { 'deep.txt': 'deep' } },
      'changed-dir': { 'x.txt': 'new x' },
      opaque: { 'n.txt': 'n' },
      'link-out': { 'inside.txt': 'inside' },
    });
    await chmod(join(upper, 'new.txt'), 0o640);
    await chmod(join(upper, 'changed-dir'), 0o750);
    whiteout(join(upper, 'deleted.txt'));
    whiteout(join(upper, 'olddir'));
    whiteout(join(upper, 'link-gone'));
    await symlink('/etc', join(upper, 'etc-link'));
    mkfifo(join(upper, 'pipe'));

    // What the cell sees afterwards.
    await view(cell, {
      ...many,
      'changed.txt': '',
      'new.txt': '',
      newdir: { sub: { 'deep.txt': '' } },
      'kept-dir': { 'k.txt': '' },
      'changed-dir': { 'x.txt': '', 'y.txt': '' },
      // rm -rf opaque && mkdir opaque && touch opaque/n.txt: the old names are gone from the view.
      opaque: { 'n.txt': '' },
      'link-out': { 'inside.txt': '' },
      'etc-link': '',
      pipe: '',
    });
  });
  afterEach(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it('applies changed, new and deleted files and directories', async () => {
    await syncChanges(upper, cell, host);
    for (let i = 0; i < 50; i++) expect(await readFile(join(host, `keep-${i}.txt`), 'utf8')).toBe(`keep ${i}`);
    expect(await readFile(join(host, 'changed.txt'), 'utf8')).toBe('new');
    expect(await readFile(join(host, 'new.txt'), 'utf8')).toBe('fresh');
    expect((await stat(join(host, 'new.txt'))).mode & 0o7777).toBe(0o640);
    expect(await exists(join(host, 'deleted.txt'))).toBe(false);
    expect(await exists(join(host, 'olddir'))).toBe(false);
    expect(await readFile(join(host, 'newdir', 'sub', 'deep.txt'), 'utf8')).toBe('deep');
    // Unchanged directories are left alone; changed ones get only their changes and their mode.
    expect(await readFile(join(host, 'kept-dir', 'k.txt'), 'utf8')).toBe('k');
    expect(await readFile(join(host, 'changed-dir', 'x.txt'), 'utf8')).toBe('new x');
    expect(await readFile(join(host, 'changed-dir', 'y.txt'), 'utf8')).toBe('y');
    expect((await stat(join(host, 'changed-dir'))).mode & 0o7777).toBe(0o750);
  });

  it('deletes the names a changed directory no longer shows (an opaque directory)', async () => {
    await syncChanges(upper, cell, host);
    expect(await listing(join(host, 'opaque'))).toEqual({ 'n.txt': 'file 644 n' });
  });

  it('copies a symlink as a symlink, never following it', async () => {
    await syncChanges(upper, cell, host);
    const info = await lstat(join(host, 'etc-link'));
    expect(info.isSymbolicLink()).toBe(true);
    expect(await readlink(join(host, 'etc-link'))).toBe('/etc');
  });

  it('never creates a fifo on the host', async () => {
    await syncChanges(upper, cell, host);
    expect(await exists(join(host, 'pipe'))).toBe(false);
  });

  it('replaces a host symlink by the real directory of the upper, never writing through it', async () => {
    await syncChanges(upper, cell, host);
    const info = await lstat(join(host, 'link-out'));
    expect(info.isSymbolicLink()).toBe(false);
    expect(info.isDirectory()).toBe(true);
    expect(await listing(join(host, 'link-out'))).toEqual({ 'inside.txt': 'file 644 inside' });
    expect(await listing(outside)).toEqual({ 'secret.txt': 'file 644 secret' });
  });

  it('removes a whited-out host symlink, not what it points to', async () => {
    await syncChanges(upper, cell, host);
    expect(await exists(join(host, 'link-gone'))).toBe(false);
    expect(await listing(join(base, 'outside2'))).toEqual({ 'secret2.txt': 'file 644 secret2' });
  });

  it('ends with exactly the cell view (less the fifo), and no temp files', async () => {
    await syncChanges(upper, cell, host);
    const names = (await readdir(host)).sort();
    const seen = (await readdir(cell)).filter((n) => n !== 'pipe').sort();
    expect(names).toEqual(seen);
    expect(names.filter((n) => n.includes('build-cell'))).toEqual([]);
  });

  it('leaves the upper layer as it was', async () => {
    const before = await listing(upper);
    await syncChanges(upper, cell, host);
    expect(await listing(upper)).toEqual(before);
  });

  it('is idempotent', async () => {
    await syncChanges(upper, cell, host);
    const once = await listing(host);
    await syncChanges(upper, cell, host);
    expect(await listing(host)).toEqual(once);
  });

  it('gives new and replaced entries to the owner, and leaves untouched ones alone', async () => {
    await syncChanges(upper, cell, host, OWNER);
    const owner = async (rel: string) => {
      const info = await lstat(join(host, rel));
      return { uid: info.uid, gid: info.gid };
    };
    for (const rel of [
      'new.txt',
      'changed.txt',
      'newdir',
      'newdir/sub',
      'newdir/sub/deep.txt',
      'etc-link',
      'link-out',
      'link-out/inside.txt',
      'opaque/n.txt',
      'changed-dir/x.txt',
    ]) {
      expect(await owner(rel), rel).toEqual(OWNER);
    }
    for (const rel of ['keep-0.txt', 'kept-dir', 'kept-dir/k.txt', 'changed-dir/y.txt']) {
      expect(await owner(rel), rel).toEqual({ uid: 0, gid: 0 });
    }
    // The symlink itself was chowned, not /etc.
    expect((await stat('/etc')).uid).toBe(0);
  });

  it('without an owner, copies keep the ownership they have in the upper layer (cp -a)', async () => {
    await chown(join(upper, 'new.txt'), 1234, 1235);
    await syncChanges(upper, cell, host);
    const info = await lstat(join(host, 'new.txt'));
    expect({ uid: info.uid, gid: info.gid }).toEqual({ uid: 1234, gid: 1235 });
  });

  it('replaces a host directory by a file and a host file by a directory', async () => {
    await rm(join(upper, 'changed.txt'));
    await write(upper, { 'changed.txt': { 'now-a-dir.txt': 'd' }, 'kept-dir': 'now a file' });
    await rm(join(cell, 'changed.txt'));
    await rm(join(cell, 'kept-dir'), { recursive: true });
    await view(cell, { 'changed.txt': { 'now-a-dir.txt': '' }, 'kept-dir': '' });
    await syncChanges(upper, cell, host);
    expect(await listing(join(host, 'changed.txt'))).toEqual({ 'now-a-dir.txt': 'file 644 d' });
    expect(await readFile(join(host, 'kept-dir'), 'utf8')).toBe('now a file');
  });

  it('with an empty upper, changes nothing the cell still sees', async () => {
    const empty = join(base, 'empty-upper');
    await mkdir(empty);
    const before = await listing(host);
    await view(join(base, 'full-view'), Object.fromEntries((await readdir(host)).map((n) => [n, ''])));
    await syncChanges(empty, join(base, 'full-view'), host);
    expect(await listing(host)).toEqual(before);
  });
});

describe.skipIf(!canMountOverlay())('syncChanges against a real overlay', () => {
  let base = '';
  beforeEach(async () => {
    base = await mkdtemp(join(tmpdir(), 'bc-sync-ovl-'));
  });
  afterEach(async () => {
    await rm(base, { recursive: true, force: true });
  });

  const runOverlay = (host: string, script: string, options = '') => overlay(base, host, script, options);

  const CELL_SCRIPT = `
    echo new > changed.txt
    echo fresh > new.txt
    rm deleted.txt
    rm -r olddir
    mkdir -p newdir/sub && echo deep > newdir/sub/deep.txt
    rm -rf opaque && mkdir opaque && echo n > opaque/n.txt
    echo x2 > dir/x.txt
    chmod 700 dir
    ln -s /etc etc-link
    mkfifo pipe
    rm link-out && mkdir link-out && echo inside > link-out/inside.txt
  `;

  async function seedHost(): Promise<{ host: string; outside: string }> {
    const host = join(base, 'host');
    const outside = join(base, 'outside');
    await write(host, {
      ...Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`keep-${i}.txt`, `keep ${i}\n`])),
      'changed.txt': 'old\n',
      'deleted.txt': 'd\n',
      olddir: { 'a.txt': 'a\n', nested: { 'b.txt': 'b\n' } },
      opaque: { 'a.txt': 'a\n', sub: { 'c.txt': 'c\n' } },
      dir: { 'x.txt': 'x\n', 'y.txt': 'y\n' },
    });
    await write(outside, { 'secret.txt': 'secret\n' });
    await symlink(outside, join(host, 'link-out'));
    return { host, outside };
  }

  it('makes the host directory what the cell saw (fifos aside), the outside dir untouched', async () => {
    const { host, outside } = await seedHost();
    const { upper, view } = runOverlay(host, CELL_SCRIPT);
    await syncChanges(upper, view, host);
    const expected = await listing(view);
    delete expected.pipe;
    expect(await listing(host)).toEqual(expected);
    expect(await listing(outside)).toEqual({ 'secret.txt': 'file 644 secret\n' });
  });

  // syncChanges reads the upper layer as if every directory and file in it were complete, which
  // holds with redirect_dir=off and metacopy=off: the helper mounts every writable overlay so,
  // whatever the kernel's defaults (with them on, a renamed directory's contents would stay in
  // the lower layer, and a chmod'ed file would be a metacopy without data).
  it('is faithful for renamed directories and chmod-ed files with the options the helper uses', async () => {
    expect(HELPER_SCRIPT).toContain('redirect_dir=off,metacopy=off');
    const { host } = await seedHost();
    const { upper, view } = runOverlay(host, 'mv dir dir2 && chmod 600 changed.txt', ',redirect_dir=off,metacopy=off');
    await syncChanges(upper, view, host);
    expect(await listing(host)).toEqual(await listing(view));
  });
});

describe.skipIf(!isRoot)('syncCaches', () => {
  let base = '';
  beforeEach(async () => {
    base = await mkdtemp(join(tmpdir(), 'bc-sync-caches-'));
  });
  afterEach(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it("applies an overlay cache's upper through the cell's view, and replaces a copied cache with its copy", async () => {
    const overlaySource = join(base, 'host', 'cache-a');
    const copySource = join(base, 'host', 'cache,b');
    await write(overlaySource, { 'keep.txt': 'keep', 'gone.txt': 'gone', 'edit.txt': 'old' });
    await write(copySource, { 'stale.txt': 'stale' });
    const spec = baseSpec({
      scratch: join(base, 'scratch'),
      caches: [
        { source: overlaySource, destination: '/root/.cache' },
        { source: copySource, destination: '/var/cache/b' },
      ],
    });
    const plan: CellPlan = planCell(spec, {
      prefix: base,
      tools: { unshare: '/usr/bin/unshare', env: '/usr/bin/env', prlimit: '/usr/bin/prlimit', shell: '/usr/bin/dash' },
      hostname: 'h',
    });
    expect(plan.staging.caches).toEqual(['overlay', 'copy']);
    await write(plan.layout.cacheUpper(0), { 'edit.txt': 'new', 'added.txt': 'added' });
    whiteout(join(plan.layout.cacheUpper(0), 'gone.txt'));
    await write(plan.layout.cachePath(1), { 'fresh.txt': 'fresh' });
    const cellRoot = join(base, 'cell-root');
    await view(join(cellRoot, 'root', '.cache'), { 'keep.txt': '', 'edit.txt': '', 'added.txt': '' });

    await syncCaches(spec, plan, cellRoot, OWNER);
    expect(await listing(overlaySource)).toEqual({
      'added.txt': 'file 644 added',
      'edit.txt': 'file 644 new',
      'keep.txt': 'file 644 keep',
    });
    expect((await lstat(join(overlaySource, 'added.txt'))).uid).toBe(OWNER.uid);
    expect((await lstat(join(overlaySource, 'keep.txt'))).uid).toBe(0);
    expect(await listing(copySource)).toEqual({ 'fresh.txt': 'file 644 fresh' });
    expect((await lstat(copySource)).uid).toBe(OWNER.uid);
  });
});
