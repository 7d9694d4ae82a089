/**
 * applyUpper: an overlay upper layer applied to the host directory that was its lower layer
 * (caches synced back, the workspace written back). Real files in temp dirs; the cell's view is
 * a plain directory of names, and one test uses a real overlay. Whiteouts, device nodes and
 * chown need root: those tests are skipped without it.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:net';
import {
  chmod,
  chown,
  link,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyUpper, type ApplyOptions } from '../../src/write-back/apply-upper.js';
import { CellSetupError } from '../../src/util/errors.js';
import { canMountOverlay, exists, isRoot, listing, mkfifo, runOverlay, view, whiteout, write } from './tree-fixture.js';

// Every path readdir and lstat are called with while `record` is set (the walk's cost test).
const fsCalls = vi.hoisted(() => ({ record: false, paths: [] as string[] }));
vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs/promises')>();
  const spy = <F extends (...args: never[]) => unknown>(f: F): F =>
    ((...args: Parameters<F>) => {
      if (fsCalls.record) fsCalls.paths.push(String(args[0]));
      return f(...args);
    }) as F;
  return { ...actual, readdir: spy(actual.readdir), lstat: spy(actual.lstat) };
});

const OWNER = { uid: 4242, gid: 4242 };

let base = '';
let host = '';
let upper = '';
let seen = '';
let outside = '';
const OUTSIDE = { 'secret.txt': 'file 644 secret' };

beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), 'bc-apply-'));
  host = join(base, 'host');
  upper = join(base, 'upper');
  seen = join(base, 'view');
  outside = join(base, 'outside');
  await mkdir(host);
  await mkdir(upper);
  await mkdir(seen);
  await write(outside, { 'secret.txt': 'secret' });
});
afterEach(async () => {
  fsCalls.record = false;
  fsCalls.paths = [];
  await rm(base, { recursive: true, force: true });
});

const apply = (options?: ApplyOptions) => applyUpper(upper, seen, host, options);
const ino = async (path: string) => (await lstat(path)).ino;

/** Names anywhere under `dir` that look like this module's temp files. */
async function temps(dir: string): Promise<string[]> {
  const names = await readdir(dir, { recursive: true });
  return names.filter((n) => n.includes('.build-cell-'));
}

describe('applyUpper: change kinds', () => {
  it('applies new, changed and deleted files and directories, and counts them', async () => {
    await write(host, {
      'changed.txt': 'old',
      'deleted.txt': 'doomed',
      'kept.txt': 'kept',
      olddir: { 'a.txt': 'a', nested: { 'b.txt': 'b' } },
      keptdir: { 'k.txt': 'k' },
      dir: { 'x.txt': 'old x', 'y.txt': 'y', 'gone.txt': 'g' },
    });
    await write(upper, {
      'changed.txt': 'new',
      'new.txt': 'fresh',
      newdir: { sub: { 'deep.txt': 'deep' } },
      dir: { 'x.txt': 'new x' },
    });
    await chmod(join(upper, 'new.txt'), 0o640);
    await chmod(join(upper, 'dir'), 0o750);
    await view(seen, {
      'changed.txt': '',
      'new.txt': '',
      'kept.txt': '',
      newdir: { sub: { 'deep.txt': '' } },
      keptdir: { 'k.txt': '' },
      dir: { 'x.txt': '', 'y.txt': '' },
    });

    const counts = await apply();
    expect(await listing(host)).toEqual({
      'changed.txt': 'file 644 new',
      dir: 'dir 750',
      'dir/x.txt': 'file 644 new x',
      'dir/y.txt': 'file 644 y',
      'kept.txt': 'file 644 kept',
      keptdir: 'dir 755',
      'keptdir/k.txt': 'file 644 k',
      'new.txt': 'file 640 fresh',
      newdir: 'dir 755',
      'newdir/sub': 'dir 755',
      'newdir/sub/deep.txt': 'file 644 deep',
    });
    // changed.txt, new.txt, newdir, newdir/sub, deep.txt, dir/x.txt; deleted.txt, olddir, dir/gone.txt.
    expect(counts).toEqual({ written: 6, deleted: 3, skipped: 0 });
    expect(await temps(host)).toEqual([]);
  });

  it('deletes the old contents of an opaque directory (names the view no longer shows)', async () => {
    await write(host, { opaque: { 'a.txt': 'a', sub: { 'c.txt': 'c' } } });
    await write(upper, { opaque: { 'n.txt': 'n' } });
    await view(seen, { opaque: { 'n.txt': '' } });
    expect(await apply()).toEqual({ written: 1, deleted: 2, skipped: 0 });
    expect(await listing(host)).toEqual({ opaque: 'dir 755', 'opaque/n.txt': 'file 644 n' });
  });

  it('copies a symlink as a symlink, with its target as it is (/etc, relative, dangling), never following it', async () => {
    await symlink('/etc', join(upper, 'etc-link'));
    await symlink('../outside/secret.txt', join(upper, 'rel'));
    await symlink('/nonexistent/x', join(upper, 'dangling'));
    await write(host, { rel: 'was a file' });
    await view(seen, { 'etc-link': '', rel: '', dangling: '' });
    expect(await apply()).toEqual({ written: 3, deleted: 0, skipped: 0 });
    expect(await listing(host)).toEqual({
      dangling: 'link /nonexistent/x',
      'etc-link': 'link /etc',
      rel: 'link ../outside/secret.txt',
    });
    expect(await listing(outside)).toEqual(OUTSIDE);
  });

  it('replaces a host file by a directory and a host directory by a file', async () => {
    await write(host, { f: 'a file', d: { 'old.txt': 'old', deeper: { 'o.txt': 'o' } } });
    await write(upper, { f: { 'now-a-dir.txt': 'd' }, d: 'now a file' });
    await view(seen, { f: { 'now-a-dir.txt': '' }, d: '' });
    expect(await apply()).toEqual({ written: 3, deleted: 0, skipped: 0 });
    expect(await listing(host)).toEqual({ d: 'file 644 now a file', f: 'dir 755', 'f/now-a-dir.txt': 'file 644 d' });
  });

  it("copies modes, and sets a directory's mode and times after its children (a read-only directory too)", async () => {
    await write(upper, { ro: { 'f.txt': 'f' }, 'x.sh': '#!/bin/sh' });
    await chmod(join(upper, 'x.sh'), 0o751);
    const fileTime = new Date('2001-02-03T04:05:06.789Z');
    const dirTime = new Date('2002-03-04T05:06:07.891Z');
    await utimes(join(upper, 'x.sh'), fileTime, fileTime);
    await utimes(join(upper, 'ro', 'f.txt'), fileTime, fileTime);
    await utimes(join(upper, 'ro'), dirTime, dirTime);
    await chmod(join(upper, 'ro'), 0o555);
    await view(seen, { ro: { 'f.txt': '' }, 'x.sh': '' });
    await apply();
    // Times before the listing reads the files (and their atimes move).
    expect((await lstat(join(host, 'x.sh'))).mtime).toEqual(fileTime);
    expect((await lstat(join(host, 'x.sh'))).atime).toEqual(fileTime);
    expect((await lstat(join(host, 'ro', 'f.txt'))).mtime).toEqual(fileTime);
    expect((await lstat(join(host, 'ro'))).mtime).toEqual(dirTime);
    expect(await listing(host)).toEqual({ ro: 'dir 555', 'ro/f.txt': 'file 644 f', 'x.sh': 'file 751 #!/bin/sh' });
    await chmod(join(upper, 'ro'), 0o755);
    await chmod(join(host, 'ro'), 0o755);
  });

  it('handles names of 250 and 255 bytes (temp names are short)', async () => {
    const [file, dir, linkName, max] = ['f'.repeat(250), 'd'.repeat(250), 'l'.repeat(250), 'm'.repeat(255)];
    await write(host, { [file]: 'old', [max]: { 'x.txt': 'x' } });
    await write(upper, { [file]: 'new', [dir]: { [file]: 'inner' }, [max]: 'file now' });
    await symlink(file, join(upper, dir, linkName));
    await view(seen, { [file]: '', [dir]: { [file]: '', [linkName]: '' }, [max]: '' });
    expect(await apply()).toEqual({ written: 5, deleted: 0, skipped: 0 });
    expect(await listing(host)).toEqual({
      [dir]: 'dir 755',
      [`${dir}/${file}`]: 'file 644 inner',
      [`${dir}/${linkName}`]: `link ${file}`,
      [file]: 'file 644 new',
      [max]: 'file 644 file now',
    });
  });

  it('leaves the upper as it was, and is idempotent', async () => {
    await write(host, { 'a.txt': 'a', gone: { 'g.txt': 'g' } });
    await write(upper, { 'a.txt': 'a2', d: { 'e.txt': 'e' } });
    await symlink('/etc', join(upper, 'l'));
    await view(seen, { 'a.txt': '', d: { 'e.txt': '' }, l: '' });
    const before = await listing(upper);
    await apply();
    const once = await listing(host);
    expect(await listing(upper)).toEqual(before);
    // A second run rewrites what the upper has, and finds nothing more to delete.
    expect(await apply()).toEqual({ written: 3, deleted: 0, skipped: 0 });
    expect(await listing(host)).toEqual(once);
    expect(await temps(host)).toEqual([]);
  });

  it('with an empty upper, changes nothing the cell still sees', async () => {
    await write(host, { 'a.txt': 'a', d: { 'b.txt': 'b' } });
    await view(seen, { 'a.txt': '', d: { 'b.txt': '' } });
    const before = await listing(host);
    expect(await apply()).toEqual({ written: 0, deleted: 0, skipped: 0 });
    expect(await listing(host)).toEqual(before);
  });
});

describe('applyUpper never writes outside host through a symlink', () => {
  it('(a) host link -> outside dir, upper link/ a directory: the link is replaced by a real directory', async () => {
    await symlink(outside, join(host, 'link'));
    await symlink('../outside', join(host, 'rel'));
    await write(upper, {
      link: { 'secret.txt': 'overwritten?', 'planted.txt': 'p', deeper: { 'x.txt': 'x' } },
      rel: { 'r.txt': 'r' },
    });
    await view(seen, { link: { 'secret.txt': '', 'planted.txt': '', deeper: { 'x.txt': '' } }, rel: { 'r.txt': '' } });
    await apply();
    expect(await listing(host)).toEqual({
      link: 'dir 755',
      'link/deeper': 'dir 755',
      'link/deeper/x.txt': 'file 644 x',
      'link/planted.txt': 'file 644 p',
      'link/secret.txt': 'file 644 overwritten?',
      rel: 'dir 755',
      'rel/r.txt': 'file 644 r',
    });
    expect(await listing(outside)).toEqual(OUTSIDE);
  });

  it('(b) upper link a symlink to the outside dir, host and view too: nothing is written into it', async () => {
    await symlink(outside, join(host, 'link'));
    await symlink(outside, join(upper, 'link'));
    await write(upper, { 'other.txt': 'o' });
    await view(seen, { link: '', 'other.txt': '' });
    expect(await apply()).toEqual({ written: 2, deleted: 0, skipped: 0 });
    expect(await listing(host)).toEqual({ link: `link ${outside}`, 'other.txt': 'file 644 o' });
    expect(await listing(outside)).toEqual(OUTSIDE);
  });

  it('(c) host sub a real directory, upper sub a symlink to outside: sub becomes the symlink, outside unchanged', async () => {
    await write(host, { sub: { 'a.txt': 'a', inner: { 'b.txt': 'b' } } });
    await symlink(outside, join(upper, 'sub'));
    await view(seen, { sub: '' });
    expect(await apply()).toEqual({ written: 1, deleted: 0, skipped: 0 });
    expect(await listing(host)).toEqual({ sub: `link ${outside}` });
    expect(await listing(outside)).toEqual(OUTSIDE);
  });

  it("(d) deleting a name that is a symlink to a directory removes the link, not the target's contents", async () => {
    await symlink(outside, join(host, 'gone'));
    await write(host, { olddir: {} });
    await symlink(outside, join(host, 'olddir', 'inner'));
    await write(upper, { 'new.txt': 'n' });
    await view(seen, { 'new.txt': '' });
    expect(await apply()).toEqual({ written: 1, deleted: 2, skipped: 0 });
    expect(await listing(host)).toEqual({ 'new.txt': 'file 644 n' });
    expect(await listing(outside)).toEqual(OUTSIDE);
  });

  it('refuses a host that is a symlink, a file, or missing, writing nothing', async () => {
    await write(upper, { 'x.txt': 'x' });
    await view(seen, { 'x.txt': '' });
    await symlink(outside, join(base, 'host-link'));
    await writeFile(join(base, 'host-file'), '');
    const attempt = (target: string) =>
      applyUpper(upper, seen, target, { what: 'write back' }).catch((e: unknown) => e);
    let error = await attempt(join(base, 'host-link'));
    expect(error).toBeInstanceOf(CellSetupError);
    expect((error as Error).message).toBe(
      `cannot write back ${join(base, 'host-link')}: it is not a directory but a symlink`,
    );
    error = await attempt(join(base, 'host-file'));
    expect((error as Error).message).toBe(`cannot write back ${join(base, 'host-file')}: it is not a directory`);
    error = await attempt(join(base, 'host-file', 'sub'));
    expect(error).toBeInstanceOf(CellSetupError);
    expect((error as Error).message).toBe(
      `cannot write back ${join(base, 'host-file', 'sub')}: Not a directory (ENOTDIR, lstat)`,
    );
    error = await attempt(join(base, 'missing'));
    expect((error as Error).message).toBe(
      `cannot write back ${join(base, 'missing')}: No such file or directory (ENOENT, lstat)`,
    );
    expect(await listing(outside)).toEqual(OUTSIDE);
  });
});

describe('applyUpper: hard links, modes, skipped entries', () => {
  it('makes entries that share an inode in the upper hard links of one another on the host', async () => {
    await write(upper, { a: 'same', sub: {}, solo: 'solo' });
    await link(join(upper, 'a'), join(upper, 'sub', 'b'));
    await link(join(upper, 'a'), join(upper, 'c'));
    await write(host, { c: 'an unrelated old file', sub: { b: { 'was-a-dir.txt': '' } } });
    await view(seen, { a: '', c: '', solo: '', sub: { b: '' } });
    const check = async () => {
      const first = await lstat(join(host, 'a'));
      expect(first.nlink).toBe(3);
      expect(first.ino).not.toBe(await ino(join(upper, 'a')));
      expect(await ino(join(host, 'sub', 'b'))).toBe(first.ino);
      expect(await ino(join(host, 'c'))).toBe(first.ino);
      expect((await lstat(join(host, 'solo'))).nlink).toBe(1);
      expect(await readFile(join(host, 'sub', 'b'), 'utf8')).toBe('same');
      expect(await temps(host)).toEqual([]);
    };
    expect(await apply()).toEqual({ written: 4, deleted: 0, skipped: 0 });
    await check();
    expect(await apply()).toEqual({ written: 4, deleted: 0, skipped: 0 });
    await check();
  });

  it("clears setuid and setgid on files (content intact), keeps a directory's setgid and sticky bits", async () => {
    const big = 'x'.repeat(300_000);
    await write(upper, { suid: big, sgid: 'g', both: 'b', sticky: 's', shared: { 'f.txt': 'f' }, tmp: {} });
    await chmod(join(upper, 'suid'), 0o4755);
    await chmod(join(upper, 'sgid'), 0o2755);
    await chmod(join(upper, 'both'), 0o6711);
    await chmod(join(upper, 'sticky'), 0o1644);
    await chmod(join(upper, 'shared'), 0o2775);
    await chmod(join(upper, 'tmp'), 0o1777);
    await write(host, { suid: 'old' });
    await view(seen, { suid: '', sgid: '', both: '', sticky: '', shared: { 'f.txt': '' }, tmp: {} });
    await apply();
    const listed = await listing(host);
    expect(listed.suid).toBe(`file 755 ${big}`);
    delete listed.suid;
    expect(listed).toEqual({
      both: 'file 711 b',
      sgid: 'file 755 g',
      shared: 'dir 2775',
      'shared/f.txt': 'file 644 f',
      sticky: 'file 1644 s',
      tmp: 'dir 1777',
    });
    expect(await temps(host)).toEqual([]);
  });

  it('skips fifos and sockets, reporting them with their relative path', async () => {
    await write(upper, { sub: { 'f.txt': 'f' } });
    mkfifo(join(upper, 'sub', 'pipe'));
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(join(upper, 'sock'), resolve));
    await view(seen, { sub: { 'f.txt': '', pipe: '' }, sock: '' });
    const skipped: Array<[string, string]> = [];
    try {
      expect(await apply({ onSkipped: (rel, kind) => skipped.push([rel, kind]) })).toEqual({
        written: 2,
        deleted: 0,
        skipped: 2,
      });
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
    expect(skipped.sort()).toEqual([
      ['sock', 'socket'],
      ['sub/pipe', 'fifo'],
    ]);
    expect(await listing(host)).toEqual({ sub: 'dir 755', 'sub/f.txt': 'file 644 f' });
  });

  it("visits only the upper's entries and, for directories in it, the names in host and view", async () => {
    const untouched = Object.fromEntries(
      Array.from({ length: 30 }, (_, i) => [`u-${i}`, { 'x.txt': 'x', deep: { 'y.txt': 'y' } }]),
    );
    await write(host, { ...untouched, dir: { 'a.txt': 'a', keep: { 'k.txt': 'k' } } });
    await write(upper, { dir: { 'a.txt': 'a2' } });
    await view(seen, { ...untouched, dir: { 'a.txt': '', keep: { 'k.txt': '' } } });
    fsCalls.record = true;
    await apply();
    fsCalls.record = false;
    expect([...new Set(fsCalls.paths)].sort()).toEqual(
      [host, join(host, 'dir'), seen, join(seen, 'dir'), upper, join(upper, 'dir'), join(upper, 'dir', 'a.txt')].sort(),
    );
    expect(await readFile(join(host, 'dir', 'a.txt'), 'utf8')).toBe('a2');
  });
});

describe('applyUpper: failures', () => {
  it('a failed rename leaves neither a temp file nor a destination, and names the host path', async () => {
    // A real failure even as root: the temp name (short) fits in PATH_MAX, the destination (a
    // 200-byte name in a ~3950-byte directory path) does not: ENAMETOOLONG once the temp is written.
    let deep = join(base, 'deep');
    while (deep.length < 3950 - 201) deep = join(deep, 'p'.repeat(200));
    deep = join(deep, 'q'.repeat(3950 - deep.length - 1));
    expect(deep.length).toBe(3950);
    await mkdir(deep, { recursive: true });
    const name = 'n'.repeat(200);
    await write(upper, { [name]: 'content' });
    await view(seen, { [name]: '' });
    const error = await applyUpper(upper, seen, deep, { what: 'write back' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CellSetupError);
    expect((error as Error).message).toBe(`cannot write back ${deep}/${name}: Name too long (ENAMETOOLONG, rename)`);
    expect(await readdir(deep)).toEqual([]);
  });

  it('a directory of the upper that the view does not show as one is an error naming the host directory', async () => {
    await write(host, { d: { 'old.txt': 'o' } });
    await write(upper, { d: { 'new.txt': 'n' } });
    await view(seen, { d: '' });
    const error = await apply({ what: 'sync the cache back to' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CellSetupError);
    expect((error as Error).message).toBe(
      `cannot sync the cache back to ${join(host, 'd')}: the cell's view ${join(seen, 'd')}: Not a directory (ENOTDIR, scandir)`,
    );
    // Nothing was deleted on the strength of an unreadable view.
    expect(await listing(host)).toEqual({ d: 'dir 755', 'd/old.txt': 'file 644 o' });
  });

  it('without `what`, messages say what is applied', async () => {
    const error = await applyUpper(upper, seen, join(base, 'missing')).catch((e: unknown) => e);
    expect((error as Error).message).toMatch(
      /^cannot apply the cell's changes to .*missing: No such file or directory \(ENOENT/,
    );
  });
});

describe.skipIf(!isRoot)('applyUpper as root: whiteouts, device nodes, owners', () => {
  it('a whiteout deletes the host entry (a symlink is unlinked, never followed), even if the view still shows it', async () => {
    await write(host, { 'deleted.txt': 'd', olddir: { 'a.txt': 'a' }, 'shown.txt': 's', 'kept.txt': 'k' });
    await symlink(outside, join(host, 'gone-link'));
    for (const name of ['deleted.txt', 'olddir', 'gone-link', 'shown.txt', 'never-existed'])
      whiteout(join(upper, name));
    await view(seen, { 'kept.txt': '', 'shown.txt': '' });
    expect(await apply()).toEqual({ written: 0, deleted: 4, skipped: 0 });
    expect(await listing(host)).toEqual({ 'kept.txt': 'file 644 k' });
    expect(await listing(outside)).toEqual(OUTSIDE);
  });

  it('never creates a device node, reporting it', async () => {
    execFileSync('mknod', [join(upper, 'null'), 'c', '1', '3']);
    execFileSync('mknod', [join(upper, 'loop'), 'b', '7', '0']);
    await view(seen, { null: '', loop: '' });
    const skipped: string[] = [];
    expect(await apply({ onSkipped: (rel, kind) => skipped.push(`${rel} ${kind}`) })).toEqual({
      written: 0,
      deleted: 0,
      skipped: 2,
    });
    expect(skipped.sort()).toEqual(['loop device', 'null device']);
    expect(await readdir(host)).toEqual([]);
  });

  it('gives everything created or replaced to the owner, leaving untouched entries alone', async () => {
    await write(host, { 'changed.txt': 'old', kept: { 'k.txt': 'k' }, dir: { 'y.txt': 'y' } });
    await write(upper, {
      'changed.txt': 'new',
      'new.txt': 'n',
      newdir: { sub: { 'deep.txt': 'd' } },
      dir: { 'x.txt': 'x' },
    });
    await link(join(upper, 'new.txt'), join(upper, 'dir', 'hard'));
    await symlink('/etc', join(upper, 'etc-link'));
    await view(seen, {
      'changed.txt': '',
      'new.txt': '',
      newdir: { sub: { 'deep.txt': '' } },
      dir: { 'x.txt': '', 'y.txt': '', hard: '' },
      kept: { 'k.txt': '' },
      'etc-link': '',
    });
    await apply({ owner: OWNER });
    const owner = async (rel: string) => {
      const info = await lstat(join(host, rel));
      return { uid: info.uid, gid: info.gid };
    };
    for (const rel of [
      'changed.txt',
      'new.txt',
      'newdir',
      'newdir/sub',
      'newdir/sub/deep.txt',
      'dir',
      'dir/x.txt',
      'dir/hard',
      'etc-link',
    ]) {
      expect(await owner(rel), rel).toEqual(OWNER);
    }
    for (const rel of ['kept', 'kept/k.txt', 'dir/y.txt']) expect(await owner(rel), rel).toEqual({ uid: 0, gid: 0 });
    expect((await stat('/etc')).uid).toBe(0);
  });

  it('without an owner, entries keep the owner they have in the upper (as cp -a)', async () => {
    await write(upper, { 'f.txt': 'f', d: {} });
    await symlink('/etc', join(upper, 'l'));
    await chown(join(upper, 'f.txt'), 1234, 1235);
    await chown(join(upper, 'd'), 1236, 1237);
    execFileSync('chown', ['-h', '1238:1239', join(upper, 'l')]);
    await view(seen, { 'f.txt': '', d: {}, l: '' });
    await apply();
    const owner = async (rel: string) => {
      const info = await lstat(join(host, rel));
      return [info.uid, info.gid];
    };
    expect(await owner('f.txt')).toEqual([1234, 1235]);
    expect(await owner('d')).toEqual([1236, 1237]);
    expect(await owner('l')).toEqual([1238, 1239]);
  });
});

describe.skipIf(!canMountOverlay())('applyUpper against a real overlay', () => {
  it('writes back what the cell saw (fifos aside): links replaced both ways, hard links kept, outside untouched', async () => {
    await write(host, { 'a.txt': 'a\n', sub: { 's.txt': 's\n' }, dir: { 'x.txt': 'x\n', 'y.txt': 'y\n' } });
    await symlink(outside, join(host, 'link-out'));
    const { upper: up, view: cellView } = runOverlay(
      join(base, 'ovl'),
      host,
      `
      rm link-out && mkdir link-out && echo inside > link-out/secret.txt
      rm -r sub && ln -s "${outside}" sub
      echo h > h1 && ln h1 h2 && mkdir hd && ln h1 hd/h3
      ln a.txt a-link.txt
      rm dir/y.txt && echo x2 > dir/x.txt
      mkfifo pipe
    `,
      ',redirect_dir=off,metacopy=off',
    );
    const skipped: string[] = [];
    const counts = await applyUpper(up, cellView, host, { what: 'write back', onSkipped: (rel) => skipped.push(rel) });
    const expected = await listing(cellView);
    delete expected.pipe;
    expect(await listing(host)).toEqual(expected);
    expect(skipped).toEqual(['pipe']);
    expect(counts.skipped).toBe(1);
    expect(await listing(outside)).toEqual(OUTSIDE);
    expect(await ino(join(host, 'h2'))).toBe(await ino(join(host, 'h1')));
    expect(await ino(join(host, 'hd', 'h3'))).toBe(await ino(join(host, 'h1')));
    expect(await ino(join(host, 'a-link.txt'))).toBe(await ino(join(host, 'a.txt')));
    expect(await exists(join(host, 'dir', 'y.txt'))).toBe(false);
  });
});
