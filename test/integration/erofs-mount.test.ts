/**
 * A prepared rootfs as one EROFS image (image/erofs/build.ts), and the host probe that says
 * whether and how this kernel mounts one (image/erofs/mount-probe.ts): the image mounted in a
 * private mount namespace shows exactly the tree it was made from, and nothing (no mount, no
 * loop device) is left on the host.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  lchownSync,
  linkSync,
  mkdirSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildErofs } from '../../src/image/erofs/build.js';
import { CHUNK_BYTES } from '../../src/image/erofs/digest.js';
import { probeErofsMount } from '../../src/image/erofs/mount-probe.js';
import { sha256File } from '../../src/util/fs.js';
import { expectHostUnchanged, removeDir, snapshotHost, tempDir } from '../helpers/cli.js';

let base: string;
let tree: string;

const FIND = ['.', '-printf', '%p %y %m %U %G %s %T@ %l %n\\n'];

/** path type mode uid gid size (not of directories) mtime target links, one sorted line per entry, then the xattrs. */
function normalized(find: string, xattrs: string): string {
  const entries = find
    .split('\n')
    .filter((line) => line && !line.startsWith('. ') && !line.startsWith('./.build-cell-root '))
    // A directory's size is the file system's own business.
    .map((line) => line.replace(/^(\S+ d \d+ \d+ \d+) \d+ /, '$1 - '))
    .sort()
    .join('\n');
  return `${entries}\n--\n${xattrs}`;
}

function listing(root: string): string {
  return normalized(
    execFileSync('find', FIND, { cwd: root, encoding: 'utf8' }),
    execFileSync('getfattr', ['-h', '-R', '-d', '-m', '-', '-e', 'hex', '.'], { cwd: root, encoding: 'utf8' }),
  );
}

/** The same listing of the image, mounted in a private mount namespace that ends with the process. */
function mountedListing(image: string, options: string): string {
  const script =
    'mkdir -p "$2" && mount -t erofs -o "$3" "$1" "$2" && cd "$2" && find "$@" 2>&1 && echo @@ && getfattr -h -R -d -m - -e hex .';
  const result = spawnSync(
    'unshare',
    [
      '-m',
      '--',
      'sh',
      '-c',
      script.replace('"$@"', FIND.map((a) => `'${a}'`).join(' ')),
      'sh',
      image,
      join(base, 'mnt'),
      options,
    ],
    { encoding: 'utf8' },
  );
  if (result.status !== 0) throw new Error(`mounting ${image} (-o ${options}) failed: ${result.stderr}`);
  const out = result.stdout;
  const [find, xattrs] = out.split('@@\n');
  return normalized(find!, xattrs ?? '');
}

const loopDevices = () => execFileSync('losetup', ['-a'], { encoding: 'utf8' });

beforeAll(() => {
  base = tempDir('bc-erofs-mount-');
  tree = join(base, 'rootfs');
  mkdirSync(join(tree, 'usr/bin'), { recursive: true });
  mkdirSync(join(tree, 'tmp'));
  chmodSync(join(tree, 'tmp'), 0o1777);
  writeFileSync(join(tree, 'usr/bin/tool'), '#!/bin/sh\necho tool\n', { mode: 0o755 });
  writeFileSync(join(tree, 'usr/bin/su'), 'setuid', { mode: 0o755 });
  chmodSync(join(tree, 'usr/bin/su'), 0o4755);
  writeFileSync(join(tree, 'big'), Buffer.alloc(3 * 4096 + 17, 7));
  linkSync(join(tree, 'usr/bin/tool'), join(tree, 'usr/bin/tool-link'));
  symlinkSync('usr/bin/tool', join(tree, 'relative-link'));
  symlinkSync('/nowhere', join(tree, 'dangling'));
  writeFileSync(join(tree, 'owned'), 'x');
  lchownSync(join(tree, 'owned'), 1234, 5678);
  execFileSync('setfattr', ['-n', 'user.note', '-v', 'kept', join(tree, 'owned')]);
  execFileSync('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', join(tree, 'tmp')]);
  utimesSync(join(tree, 'big'), 1_000_000, 1_000_000);
  writeFileSync(join(tree, '.build-cell-root'), '/var/lib/build-cell');
});

afterAll(() => removeDir(base));

describe('EROFS images of a rootfs', () => {
  it('are made exactly, never half-written, without the runtime root sentinel', async () => {
    const file = join(base, 'image.erofs');
    const built = await buildErofs('mkfs.erofs', tree, file, ['.build-cell-root']);
    // One chunk: its digest is the file's sha256.
    expect(built.chunkSha256).toEqual([await sha256File(file)]);
    expect(built.chunkBytes).toBe(CHUNK_BYTES);
    expect(built.bytes % 4096).toBe(0);
    // Whole, and without the sentinel (fsck.erofs checks every file as it extracts them).
    execFileSync('fsck.erofs', [`--extract=${join(base, 'check')}`, file]);
    expect(existsSync(join(base, 'check', 'usr/bin/tool'))).toBe(true);
    expect(existsSync(join(base, 'check', '.build-cell-root'))).toBe(false);
    await removeDir(join(base, 'check'));
    await expect(buildErofs('mkfs.erofs', join(base, 'absent'), join(base, 'bad.erofs'))).rejects.toThrow(
      /cannot write .*absent as an EROFS image/,
    );
    expect(execFileSync('ls', ['-A', base], { encoding: 'utf8' }).split('\n').sort()).toEqual(
      ['', 'image.erofs', 'rootfs'].sort(),
    );
  });

  it('mount, where the probe says they do, showing the tree as it was, and leave nothing behind', (ctx) => {
    const probe = probeErofsMount();
    // The same answer twice: once per process.
    expect(probeErofsMount()).toBe(probe);
    if (!probe.ok) {
      // A kernel without EROFS: the probe says why, and the cell falls back to extracting.
      expect(probe.why).toMatch(/cannot mount an EROFS image|needs root|unshare/);
      return ctx.skip();
    }
    expect(probe.why).toMatch(
      probe.how === 'file' ? /image files directly/ : /through a loop device that clears itself/,
    );
    const before = snapshotHost();
    const loops = loopDevices();
    const seen = mountedListing(join(base, 'image.erofs'), 'ro');
    expect(seen).toBe(listing(tree));
    expect(seen).toContain('./usr/bin/su f 4755 0 0 6 ');
    expect(seen).toContain('./owned f 644 1234 5678 1 ');
    expect(seen).toMatch(/^\.\/big f 644 0 0 12305 1000000(\.0+)? /m);
    expect(seen).toContain('user.note=0x6b657074');
    expect(loopDevices()).toBe(loops);
    expectHostUnchanged(before);
  });
});
