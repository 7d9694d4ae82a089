/**
 * EROFS images made by the real mkfs.erofs (erofs-utils 1.5, the way build-cell makes them:
 * `--quiet --preserve-mtime`, no compression) and extracted by src/image/erofs/: the tree that
 * comes out must equal the tree that went in, by a listing of every entry's type, mode (special
 * bits included), owner, size, mtime to the nanosecond, symlink target, device number and
 * xattrs, and of the hard-link groups. The source tree holds the awkward cases on purpose
 * (names with newlines and non-UTF-8 bytes, a 2,000-entry directory, device nodes, a socket,
 * ACLs, capabilities, shared xattrs); the real Debian rootfs is the realistic one. Broken
 * images must be refused with a clear error and leave nothing behind.
 *
 * Runs as root (devices, owners, trusted.* xattrs). Needs mkfs.erofs and getfattr/setfattr
 * (.ci/install-packages: erofs-utils, attr).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, truncateSync } from 'node:fs';
import { lstat, open, readdir, readlink, rename } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { extractErofs } from '../../src/image/erofs/extract.js';
import { removeDir, tempDir } from '../helpers/cli.js';
import { DEBIAN_TAG, debianLayout } from '../helpers/fixtures.js';

function run(file: string, args: string[], input?: string): Buffer {
  const result = spawnSync(file, args, { input, maxBuffer: 1 << 30 });
  if (result.status !== 0)
    throw new Error(`${file} ${args.join(' ')} failed (${result.status ?? result.signal}): ${String(result.stderr)}`);
  return result.stdout;
}

function mkfsErofs(image: string, dir: string, extra: string[] = []): void {
  run('mkfs.erofs', ['--quiet', '--preserve-mtime', ...extra, image, dir]);
}

// A POSIX ACL in its xattr form (version 2): user::rw- user:1000:rw- group::r-- mask::rw- other::r--.
const ACL =
  '0x02000000' + '01000600ffffffff' + '02000600e8030000' + '04000400ffffffff' + '10000600ffffffff' + '20000400ffffffff';

/** The source tree, made by bash so that names can hold any byte ($'…'). */
const TREE_SCRIPT = String.raw`
set -euo pipefail
cd "$1"
: > empty
printf 'small\n' > small
head -c 4096 /dev/urandom > one-block
head -c 10000 /dev/urandom > blocks-and-tail
head -c 3145851 /dev/urandom > few-megabytes
mkdir -p nested/deeper/deepest
printf 'deep\n' > nested/deeper/deepest/file
mkdir many
for i in $(seq 1 2000); do printf '%s' "$i" > "many/entry-with-a-longish-name-$i"; done
ln -s small relative-link
ln -s /etc/passwd absolute-link
ln -s does/not/exist dangling-link
ln -s "$(head -c 3000 /dev/zero | tr '\0' 'x')" long-target-link
ln small hard-one
ln small nested/hard-two
ln relative-link hard-to-symlink
cp small setuid && chmod 4755 setuid
cp small setgid && chmod 2711 setgid
mkdir sticky && chmod 1777 sticky
mkdir setgid-dir && chmod 2770 setgid-dir
: > owned && chown 1234:5678 owned && chmod 6750 owned
: > owned-high && chown 100000:100001 owned-high
ln -s small owned-link && chown -h 4321:8765 owned-link
mkdir owned-dir && chown 2000:3000 owned-dir && chmod 0500 owned-dir
mknod whiteout c 0 0
mknod null c 1 3
mknod block-device b 7 200
mknod big-numbers c 300 70000
mkfifo fifo && chmod 0620 fifo
ln fifo fifo-hard-link
ln null null-hard-link
printf 'x' > with\ space
printf 'x' > $'new\nline'
printf 'x' > $'\xff\xfe-not-utf8'
printf 'x' > $'tab\there'
printf 'x' > 'back\slash'
printf 'x' > 'equals=sign'
printf 'x' > 'ünïcödé'
printf 'x' > "$(head -c 254 /dev/zero | tr '\0' 'n')"
mkdir $'dir-\x01-\x7f'
printf 'x' > $'dir-\x01-\x7f/inside'
cp small capable
setfattr -n security.capability -v 0x0100000200200000000000000000000000000000 capable
mkdir opaque && setfattr -n trusted.overlay.opaque -v y opaque
setfattr -n user.note -v hello small
setfattr -n user.empty small
setfattr -n user.binary -v 0x00ff7f0a0d5c3d small
setfattr -n user.long -v "0x$(head -c 2000 /dev/zero | tr '\0' 'a' | od -An -v -tx1 | tr -d ' \n')" one-block
for f in many/entry-with-a-longish-name-1 many/entry-with-a-longish-name-2 many/entry-with-a-longish-name-3 \
         many/entry-with-a-longish-name-4 many/entry-with-a-longish-name-5; do
  setfattr -n user.shared -v same-value "$f"
  setfattr -n trusted.shared -v also-shared "$f"
done
setfattr -h -n trusted.on-symlink -v 1 relative-link
setfattr -n 'user.name=with=equals' -v 1 $'new\nline'
setfattr -n trusted.on-device -v 1 null
setfattr -n user.root -v top .
setfattr -n system.posix_acl_access -v ${ACL} blocks-and-tail
setfattr -n system.posix_acl_default -v ${ACL} nested
touch -h -d @0 empty
touch -d @1600000000.123456789 small
touch -d @1600000000.123456 one-block
touch -d @4102444800.5 few-megabytes
touch -h -d @1500000000.987654321 relative-link
touch -h -d @1500000001 absolute-link
touch -d @1400000000.111111111 fifo
touch -d @1400000000.222222 null
touch -d @1300000000.5 nested/deeper/deepest
touch -d @1300000000.333333333 nested/deeper
touch -d @1300000001 nested
`;

/** Make a Unix socket file at `path` (the server is closed after a rename, so the file stays). */
async function makeSocket(path: string): Promise<void> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(`${path}.tmp`, done));
  await rename(`${path}.tmp`, path);
  await new Promise<void>((done) => server.close(() => done()));
}

async function buildTree(dir: string): Promise<void> {
  run('bash', ['-c', TREE_SCRIPT, 'tree', dir]);
  await makeSocket(join(dir, 'socket'));
  run('touch', ['-h', '-d', '@1234567890.000000001', join(dir, 'socket')]);
  // Times of the directories whose entries were just made, last.
  run('touch', ['-d', '@1700000000.5', dir, join(dir, 'many'), join(dir, 'sticky')]);
}

/** Long names, targets and values shortened to a digest, so that a failing diff stays readable. */
function short(text: string): string {
  if (text.length <= 80) return text;
  const digest = createHash('sha256').update(text, 'latin1').digest('hex').slice(0, 16);
  return `${text.slice(0, 24)}…(${text.length} chars, sha256 ${digest})`;
}

/** setfattr/getfattr quote bytes as \ooo. */
function unquote(text: string): string {
  return text.replace(/\\([0-7]{3})/g, (_, digits: string) => String.fromCharCode(parseInt(digits, 8)));
}

/** Path (latin1, relative to `root`) → its xattrs, from one recursive getfattr. */
function readXattrs(root: string): Map<string, string> {
  const dump = run('getfattr', ['-R', '-P', '-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', root]);
  const out = new Map<string, string>();
  for (const block of dump.toString('latin1').split('\n\n')) {
    const [head, ...lines] = block.split('\n').filter(Boolean);
    if (!head?.startsWith('# file: ')) continue;
    const path = unquote(head.slice(8));
    const rel = path === root ? '' : path.slice(root.length + 1);
    out.set(rel, lines.map(unquote).map(short).sort().join(' '));
  }
  return out;
}

interface Listing {
  entries: string[];
  /** Hard-link groups: the names of each inode with more than one. */
  links: string[][];
  /** Entries other than the root, and regular-file bytes counted once per inode. */
  count: number;
  bytes: number;
}

const TYPES: Array<[string, (s: import('node:fs').BigIntStats) => boolean]> = [
  ['file', (s) => s.isFile()],
  ['dir', (s) => s.isDirectory()],
  ['symlink', (s) => s.isSymbolicLink()],
  ['char', (s) => s.isCharacterDevice()],
  ['block', (s) => s.isBlockDevice()],
  ['fifo', (s) => s.isFIFO()],
  ['socket', (s) => s.isSocket()],
];

async function listTree(root: string): Promise<Listing> {
  const xattrs = readXattrs(root);
  const listing: Listing = { entries: [], links: [], count: -1, bytes: 0 };
  const inodes = new Map<bigint, string[]>();
  const walk = async (rel: Buffer): Promise<void> => {
    const full = rel.length ? Buffer.concat([Buffer.from(`${root}/`), rel]) : Buffer.from(root);
    const st = await lstat(full, { bigint: true });
    const key = rel.toString('latin1');
    const type = TYPES.find(([, test]) => test(st))![0];
    // Fields are separated by spaces: the quoted name holds none.
    const fields = [
      short(JSON.stringify(key)).replace(/ /g, '\\u0020'),
      type,
      (st.mode & 0o7777n).toString(8),
      `${st.uid}:${st.gid}`,
      `${st.mtimeNs}`,
    ];
    if (type === 'file') fields.push(`size=${st.size}`);
    if (type === 'symlink')
      fields.push(`-> ${short(JSON.stringify((await readlink(full, { encoding: 'buffer' })).toString('latin1')))}`);
    if (type === 'char' || type === 'block') fields.push(`rdev=${st.rdev}`);
    fields.push(`xattrs=[${xattrs.get(key) ?? ''}]`);
    listing.entries.push(fields.join(' '));
    listing.count++;
    const names = inodes.get(st.ino) ?? [];
    if (type !== 'dir') inodes.set(st.ino, [...names, key]);
    if (type === 'file' && names.length === 0) listing.bytes += Number(st.size);
    if (type !== 'dir') return;
    const children = (await readdir(full, { encoding: 'buffer' })).sort((a, b) => Buffer.compare(a, b));
    for (const name of children) await walk(rel.length ? Buffer.concat([rel, Buffer.from('/'), name]) : name);
  };
  await walk(Buffer.alloc(0));
  listing.links = [...inodes.values()].filter((names) => names.length > 1).map((names) => names.sort());
  listing.links.sort((a, b) => a[0]!.localeCompare(b[0]!));
  return listing;
}

/** The names in `dir` (to show that a failed extraction left no sibling behind). */
function namesIn(dir: string): string[] {
  return readdirSync(dir).sort();
}

describe('EROFS extraction of mkfs.erofs 1.5 images', () => {
  let work: string;
  let source: string;
  let image: string;
  let expected: Listing;

  beforeAll(async () => {
    work = tempDir('bc-erofs-');
    source = join(work, 'source');
    mkdirSync(source);
    await buildTree(source);
    image = join(work, 'tree.erofs');
    mkfsErofs(image, source);
    expected = await listTree(source);
  });

  afterAll(async () => {
    if (work) await removeDir(work);
  });

  it('recreates a tree of every file type exactly: modes with special bits, owners, ns mtimes, xattrs, hard links, odd names', async () => {
    const out = join(work, 'out-exact');
    const stats = await extractErofs(image, out, { owners: true });
    const got = await listTree(out);
    expect(got.entries).toEqual(expected.entries);
    expect(got.links).toEqual(expected.links);
    expect(stats).toEqual({ entries: expected.count, bytes: expected.bytes });
    expect(got.links.length).toBeGreaterThanOrEqual(4);
    expect(namesIn(work)).toEqual(['out-exact', 'source', 'tree.erofs']);
  });

  it('copies file contents byte for byte (empty, one block, blocks with a tail, several MB)', async () => {
    const out = join(work, 'out-data');
    await extractErofs(image, out, { owners: true });
    for (const name of [
      'empty',
      'small',
      'one-block',
      'blocks-and-tail',
      'few-megabytes',
      'nested/deeper/deepest/file',
    ])
      expect(run('cmp', [join(source, name), join(out, name)]).length, name).toBe(0);
  });

  it('extracts into an existing empty directory, and refuses a non-empty one', async () => {
    const out = join(work, 'out-empty-dir');
    mkdirSync(out);
    await extractErofs(image, out, { owners: true });
    expect((await listTree(out)).entries).toEqual(expected.entries);
    await expect(extractErofs(image, out, { owners: true })).rejects.toThrow(/is not empty/);
  });

  it('without owners, leaves everything to the extracting user and keeps the rest', async () => {
    const out = join(work, 'out-no-owners');
    await extractErofs(image, out, { owners: false });
    const asRoot = expected.entries.map((line) => line.replace(/ \d+:\d+ /, ' 0:0 '));
    expect((await listTree(out)).entries).toEqual(asRoot);
  });

  it('reads compact inodes: mkfs.erofs -T gives every inode the build time, most of them in 32 bytes', async () => {
    const fixed = join(work, 'fixed-time.erofs');
    mkfsErofs(fixed, source, ['-T', '1700000000']);
    const out = join(work, 'out-fixed-time');
    await extractErofs(fixed, out, { owners: true });
    const withFixedTime = expected.entries.map((line) =>
      line.replace(/^(\S+ \S+ \S+ \S+) \d+ /, '$1 1700000000000000000 '),
    );
    expect((await listTree(out)).entries).toEqual(withFixedTime);
  });

  it('refuses a truncated image with a clear error and leaves no partial destination', async () => {
    const cut = join(work, 'truncated.erofs');
    copyFileSync(image, cut);
    truncateSync(cut, 200 * 4096);
    const before = namesIn(work);
    const out = join(work, 'out-truncated');
    await expect(extractErofs(cut, out, { owners: true })).rejects.toThrow(/truncated.*its superblock says/);
    expect(existsSync(out)).toBe(false);
    expect(namesIn(work)).toEqual(before);
  });

  it('refuses an image cut inside its data even when the superblock is rewritten to match', async () => {
    // Tail cut off and the block count in the superblock lowered (checksum off): the reads fail.
    const cut = join(work, 'cut-data.erofs');
    copyFileSync(image, cut);
    truncateSync(cut, 300 * 4096);
    const handle = await open(cut, 'r+');
    const sb = Buffer.alloc(128);
    await handle.read(sb, 0, 128, 1024);
    sb.writeUInt32LE(sb.readUInt32LE(8) & ~1, 8);
    sb.writeUInt32LE(300, 36);
    await handle.write(sb, 0, 128, 1024);
    await handle.close();
    const before = namesIn(work);
    const out = join(work, 'out-cut-data');
    await expect(extractErofs(cut, out, { owners: true })).rejects.toThrow(
      /outside the image|past the end of the image|truncated/,
    );
    expect(existsSync(out)).toBe(false);
    expect(namesIn(work)).toEqual(before);
  });

  it('refuses a corrupted superblock (checksum) and a missing magic, naming the problem', async () => {
    const bad = join(work, 'corrupted.erofs');
    copyFileSync(image, bad);
    const handle = await open(bad, 'r+');
    await handle.write(Buffer.from([0x7f]), 0, 1, 1024 + 14); // the root nid
    await handle.close();
    const out = join(work, 'out-corrupted');
    await expect(extractErofs(bad, out, { owners: true })).rejects.toThrow(/superblock checksum mismatch/);
    const noMagic = join(work, 'no-magic.erofs');
    copyFileSync(image, noMagic);
    truncateSync(noMagic, 4096);
    const zero = await open(noMagic, 'r+');
    await zero.write(Buffer.alloc(4), 0, 4, 1024);
    await zero.close();
    await expect(extractErofs(noMagic, out, { owners: true })).rejects.toThrow(/not an EROFS image/);
    expect(existsSync(out)).toBe(false);
  });
});

describe('EROFS extraction of the Debian bookworm rootfs', () => {
  let work: string;

  beforeAll(async () => {
    work = tempDir('bc-erofs-debian-');
    const layout = await debianLayout();
    run('umoci', ['unpack', '--image', `${layout}:${DEBIAN_TAG}`, join(work, 'bundle')]);
    mkfsErofs(join(work, 'rootfs.erofs'), join(work, 'bundle', 'rootfs'));
  }, 20 * 60_000);

  afterAll(async () => {
    if (work) await removeDir(work);
  });

  it('extracts to a tree equal to the unpacked rootfs', async () => {
    const out = join(work, 'extracted');
    const stats = await extractErofs(join(work, 'rootfs.erofs'), out, { owners: true });
    const [want, got] = [await listTree(join(work, 'bundle', 'rootfs')), await listTree(out)];
    expect(got.entries).toEqual(want.entries);
    expect(got.links).toEqual(want.links);
    expect(stats).toEqual({ entries: want.count, bytes: want.bytes });
    expect(want.count).toBeGreaterThan(5000);
  });
});
