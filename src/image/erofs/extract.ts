/**
 * Extracting an EROFS image into a directory, exactly: where the image cannot be mounted
 * (rootless, or no erofs in the kernel) the tree must still be what a mount would show. Types,
 * permission bits with setuid/setgid/sticky, owners, mtimes to the nanosecond, hard links,
 * device nodes, fifos, sockets and xattrs all come across (`fsck.erofs --extract` of
 * erofs-utils 1.5 drops setuid bits, copies hard links and skips xattrs).
 *
 * Safety: the image is untrusted. The tree is built in a new owner-only sibling of `dest` and
 * renamed into place only when whole (a failure removes it); every entry is created new
 * (O_EXCL, mkdir, symlink, link, mknod all fail on an existing name) inside directories made by
 * this code, names holding `/` or NUL never reach a path, and nothing is done through a symlink.
 *
 * Order matters: chown clears setuid/setgid and file capabilities, so chmod comes after chown
 * and xattrs after both; a directory's mtime changes while entries are made in it, so
 * directories get their modes and times last, deepest first. Node can set neither device
 * nodes, xattrs, nor times finer than a microsecond: those go to mknod, `setfattr --restore`
 * and `touch`, each batched into one process.
 */
import { constants } from 'node:fs';
import {
  chmod,
  lchown,
  link,
  lstat,
  lutimes,
  mkdir,
  open,
  readdir,
  rename,
  rm,
  symlink,
  writeFile as writeTextFile,
} from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { exec } from '../../util/exec.js';
import { CellSetupError, errorMessage } from '../../util/errors.js';
import { randomHex } from '../../util/random.js';
import { requireTool } from '../../util/which.js';
import { ErofsFormatError } from './format.js';
import { ErofsImage, describe, joinName, type ErofsInode, type Xattr } from './read.js';

export interface ExtractOptions {
  /** Give entries the image's uid/gid (lchown): needs root, or root in a user namespace. */
  owners: boolean;
  /**
   * Only user.* xattrs (rootless: trusted.* and security.* need real root; umoci --rootless
   * leaves them out too). Default: all of them.
   */
  userXattrsOnly?: boolean;
}

export interface ExtractStats {
  /** Entries created, the root directory excluded (a hard link counts as one). */
  entries: number;
  /** Bytes of regular-file data written (once per inode). */
  bytes: number;
}

/** Deeper trees are refused: no real root filesystem comes near, a crafted image might. */
export const MAX_DEPTH = 4096;

const ATTR_HINT = 'install the attr package (Debian/Ubuntu: apt-get install attr)';

interface Placed {
  path: Buffer;
  inode: ErofsInode;
}

/** An inode's first name: a hard link to it waits for `ready` (its file written). */
interface First extends Placed {
  ready: Promise<void>;
}

/**
 * Regular files and symlinks are written a few at a time: each takes several file-system calls,
 * each a round trip to libuv's threads, and one at a time they would leave the threads idle.
 */
const WRITERS = 16;

/** At most `size` tasks at once; the first failure is kept, and thrown by check(). */
class TaskPool {
  private readonly running = new Set<Promise<void>>();
  private failure: { error: unknown } | undefined;

  constructor(private readonly size: number) {}

  /** Start `task` once a slot is free. Returns its completion (which rejects if it fails). */
  async start(task: () => Promise<void>): Promise<{ done: Promise<void> }> {
    while (this.running.size >= this.size) await Promise.race(this.running);
    this.check();
    const done = task();
    const tracked = done.then(
      () => undefined,
      (error: unknown) => void (this.failure ??= { error }),
    );
    this.running.add(tracked);
    void tracked.finally(() => this.running.delete(tracked));
    return { done };
  }

  /** Wait until no task runs (failures included: nothing may still write after a cleanup). */
  async settle(): Promise<void> {
    while (this.running.size > 0) await Promise.all(this.running);
  }

  check(): void {
    if (this.failure) throw this.failure.error;
  }
}

/** What the walk leaves for the later passes. */
interface Work {
  image: ErofsImage;
  owners: boolean;
  userXattrsOnly: boolean;
  /** nid → where it was first extracted; a later name for it becomes a hard link. */
  first: Map<number, First>;
  writers: TaskPool;
  buffers: Buffer[];
  /** This process's effective ids: what every entry it makes starts with. */
  ids: { uid: number; gid: number };
  dirNids: Set<number>;
  /** fifos, devices and sockets: made after the walk, by mknod (and net for sockets). */
  nodes: Placed[];
  /** Hard links to nodes, made once the nodes exist. */
  nodeLinks: Array<{ from: Buffer; path: Buffer }>;
  /** Directories, children before parents. */
  dirs: Placed[];
  xattrs: Array<{ path: Buffer; xattrs: Xattr[] }>;
  /** Entries whose mtime has sub-microsecond digits (set by touch). */
  exactTimes: Placed[];
  entries: number;
  bytes: number;
}

/** Extract `image` into `dest` (absent or an empty directory), exactly as a mount would show it. */
export async function extractErofs(image: string, dest: string, options: ExtractOptions): Promise<ExtractStats> {
  const target = resolve(dest);
  await checkDestination(target);
  const temp = join(dirname(target), `.${basename(target)}.erofs-${randomHex(6)}`);
  await mkdir(temp, { mode: 0o700 });
  try {
    const stats = await extractInto(image, temp, options);
    // rename(2) replaces an empty directory, and fails on one that is no longer empty.
    await rename(temp, target);
    return stats;
  } catch (error) {
    await rm(temp, { recursive: true, force: true });
    const message = `cannot extract the EROFS image ${image} into ${target}: ${errorMessage(error)}`;
    throw error instanceof ErofsFormatError ? new ErofsFormatError(message) : new CellSetupError(message);
  }
}

async function checkDestination(dest: string): Promise<void> {
  const info = await lstat(dest).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  if (!info) return;
  if (!info.isDirectory()) throw new CellSetupError(`cannot extract into ${dest}: it exists and is not a directory`);
  if ((await readdir(dest)).length > 0) throw new CellSetupError(`cannot extract into ${dest}: it is not empty`);
}

function newWork(image: ErofsImage, options: ExtractOptions): Work {
  return {
    image,
    owners: options.owners,
    userXattrsOnly: !!options.userXattrsOnly,
    first: new Map(),
    writers: new TaskPool(WRITERS),
    buffers: [],
    ids: { uid: process.geteuid?.() ?? -1, gid: process.getegid?.() ?? -1 },
    dirNids: new Set(),
    nodes: [],
    nodeLinks: [],
    dirs: [],
    xattrs: [],
    exactTimes: [],
    entries: 0,
    bytes: 0,
  };
}

async function extractInto(file: string, root: string, options: ExtractOptions): Promise<ExtractStats> {
  const image = await ErofsImage.open(file);
  try {
    const work = newWork(image, options);
    await walkTree(work, Buffer.from(root)).finally(() => work.writers.settle());
    work.writers.check();
    await createNodes(work);
    await restoreXattrs(work, root);
    await applyExactTimes(work);
    await settleDirs(work);
    return { entries: work.entries, bytes: work.bytes };
  } finally {
    await image.close();
  }
}

async function walkTree(work: Work, root: Buffer): Promise<void> {
  const top = await work.image.root();
  if (top.type !== 'directory') throw new ErofsFormatError(`${describe(top)}: the root is not a directory`);
  work.dirNids.add(top.nid);
  await collectXattrs(work, top, root);
  await walkDir(work, top, root, 0);
}

async function walkDir(work: Work, dir: ErofsInode, path: Buffer, depth: number): Promise<void> {
  if (depth >= MAX_DEPTH) throw new ErofsFormatError(`${describe(dir)}: directories nest deeper than ${MAX_DEPTH}`);
  for (const entry of await work.image.readdir(dir)) {
    const inode = await work.image.child(dir, entry);
    await extractEntry(work, inode, joinName(path, entry.name), depth);
  }
  work.dirs.push({ path, inode: dir });
  if (microsecondTime(dir) === undefined) work.exactTimes.push({ path, inode: dir });
}

async function extractEntry(work: Work, inode: ErofsInode, path: Buffer, depth: number): Promise<void> {
  work.entries++;
  if (inode.type === 'directory') {
    // A directory has one name: a second one is a cycle or a corrupted image.
    if (work.dirNids.has(inode.nid)) throw new ErofsFormatError(`${describe(inode)}: the directory is reached twice`);
    work.dirNids.add(inode.nid);
    await mkdir(path, { mode: 0o700 });
    await collectXattrs(work, inode, path);
    return walkDir(work, inode, path, depth + 1);
  }
  const first = work.first.get(inode.nid);
  if (first) return hardLink(work, first, path);
  let ready = Promise.resolve();
  if (inode.type === 'file') ready = (await work.writers.start(() => writeFile(work, inode, path))).done;
  else if (inode.type === 'symlink') ready = (await work.writers.start(() => makeSymlink(work, inode, path))).done;
  else work.nodes.push({ path, inode });
  work.first.set(inode.nid, { path, inode, ready });
  await collectXattrs(work, inode, path);
}

async function hardLink(work: Work, first: First, path: Buffer): Promise<void> {
  const isNode = first.inode.type !== 'file' && first.inode.type !== 'symlink';
  if (isNode) return void work.nodeLinks.push({ from: first.path, path });
  await first.ready;
  // link(2) never follows a symlink: a link to a symlink is a second name of the symlink.
  await link(first.path, path);
}

const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/** Copy buffers, reused from file to file (a fresh megabyte per file costs page faults). */
const COPY_BUFFER = 256 << 10;

async function writeFile(work: Work, inode: ErofsInode, path: Buffer): Promise<void> {
  const handle = await open(path, CREATE_FLAGS, 0o600);
  const buffer = work.buffers.pop() ?? Buffer.allocUnsafe(COPY_BUFFER);
  try {
    for await (const chunk of work.image.chunks(inode, buffer)) {
      let done = 0;
      while (done < chunk.length) done += (await handle.write(chunk, done, chunk.length - done)).bytesWritten;
      work.bytes += chunk.length;
    }
    if (needsChown(work, inode)) await handle.chown(inode.uid, inode.gid);
    await handle.chmod(inode.mode & 0o7777);
    const time = microsecondTime(inode);
    if (time === undefined) work.exactTimes.push({ path, inode });
    else await handle.utimes(time, time);
  } finally {
    work.buffers.push(buffer);
    await handle.close();
  }
}

async function makeSymlink(work: Work, inode: ErofsInode, path: Buffer): Promise<void> {
  await symlink(await work.image.readlink(inode), path);
  if (needsChown(work, inode)) await lchown(path, inode.uid, inode.gid);
  const time = microsecondTime(inode);
  if (time === undefined) work.exactTimes.push({ path, inode });
  else await lutimes(path, time, time);
}

/**
 * Whether an entry made by this process needs a chown: not when it has this process's ids
 * already (no directory has its setgid bit yet while entries are made, so they get our gid).
 */
function needsChown(work: Work, inode: ErofsInode): boolean {
  return work.owners && (inode.uid !== work.ids.uid || inode.gid !== work.ids.gid);
}

async function collectXattrs(work: Work, inode: ErofsInode, path: Buffer): Promise<void> {
  const all = await work.image.xattrs(inode);
  const xattrs = work.userXattrsOnly ? all.filter((x) => x.name.subarray(0, 5).toString('latin1') === 'user.') : all;
  if (xattrs.length === 0) return;
  if (work.xattrs.length === 0)
    requireTool(
      'setfattr',
      `the image has extended attributes (${xattrs[0]!.name.toString('latin1')} on ${describe(inode)}): ${ATTR_HINT}`,
    );
  work.xattrs.push({ path, xattrs });
}

/**
 * The time to give fs.utimes for the inode's mtime, or undefined when it cannot be exact: libuv
 * keeps microseconds only, and a double holds them only below 2^32 s. The middle of the
 * microsecond is passed, so that the double's rounding cannot fall into the one before.
 */
function microsecondTime(inode: ErofsInode): number | undefined {
  if (inode.mtimeNsec % 1000 !== 0 || inode.mtime >= 2 ** 32) return undefined;
  return inode.mtime + (inode.mtimeNsec + 500) / 1e9;
}

/** Make the fifos and device nodes in one bash process, the sockets here, then settle all. */
async function createNodes(work: Work): Promise<void> {
  const mknods = work.nodes.filter((n) => n.inode.type !== 'socket');
  if (mknods.length > 0) await runBash(mknods.map(mknodLine).join(''), 'cannot create device nodes and fifos');
  for (const node of work.nodes) {
    if (node.inode.type === 'socket') await makeSocket(node.path);
    await settleNode(work, node);
  }
  for (const { from, path } of work.nodeLinks) await link(from, path);
}

function mknodLine({ path, inode }: Placed): string {
  const kind =
    inode.type === 'fifo' ? 'p' : `${inode.type === 'char' ? 'c' : 'b'} ${inode.rdevMajor} ${inode.rdevMinor}`;
  return `mknod -m 600 -- ${bashQuote(path)} ${kind}\n`;
}

async function settleNode(work: Work, { path, inode }: Placed): Promise<void> {
  const info = await lstat(path);
  if (info.isSymbolicLink()) throw new CellSetupError(`${path.toString('latin1')} became a symlink`);
  if (needsChown(work, inode)) await lchown(path, inode.uid, inode.gid);
  await chmod(path, inode.mode & 0o7777);
  const time = microsecondTime(inode);
  if (time === undefined) work.exactTimes.push({ path, inode });
  else await lutimes(path, time, time);
}

/**
 * A Unix socket file (mknod(1) makes none): bound by a listening server under a short name, as
 * sun_path holds 108 bytes, then renamed into place. Closing the server unlinks only the old name.
 */
async function makeSocket(path: Buffer): Promise<void> {
  const { createServer } = await import('node:net');
  const dir = await open(dirOf(path), constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  try {
    const short = `/proc/self/fd/${dir.fd}/.erofs-socket-${randomHex(6)}`;
    const server = createServer();
    await new Promise<void>((done, failed) => server.once('error', failed).listen(short, done));
    try {
      await rename(Buffer.from(short), path);
    } finally {
      await new Promise<void>((done) => server.close(() => done()));
    }
  } finally {
    await dir.close();
  }
}

function dirOf(path: Buffer): Buffer {
  return path.subarray(0, path.lastIndexOf(0x2f));
}

/** Every xattr of the tree, through one `setfattr --restore` of a getfattr-style dump. */
async function restoreXattrs(work: Work, root: string): Promise<void> {
  if (work.xattrs.length === 0) return;
  const setfattr = requireTool('setfattr', `the image has extended attributes: ${ATTR_HINT}`);
  const dump = join(dirname(root), `${basename(root)}.xattrs`);
  const text = work.xattrs.map(({ path, xattrs }) => dumpEntry(path, xattrs)).join('');
  try {
    // O_CREAT|O_EXCL: never an existing file, never through a symlink.
    await writeTextFile(dump, text, { flag: 'wx', mode: 0o600 });
    await exec(setfattr, ['-h', `--restore=${dump}`], 'cannot set the extended attributes of the extracted tree');
  } finally {
    await rm(dump, { force: true });
  }
}

/** getfattr --dump -e hex: `# file: PATH`, then `NAME=0xHEX` lines, then a blank line. */
export function dumpEntry(path: Buffer, xattrs: readonly Xattr[]): string {
  const lines = xattrs.map(({ name, value }) => `${dumpQuote(name)}=0x${value.toString('hex')}\n`);
  return `# file: ${dumpQuote(path)}\n${lines.join('')}\n`;
}

/** setfattr unquotes `\ooo`: everything but printable ASCII (and `\`, `=`) is written so. */
export function dumpQuote(bytes: Buffer): string {
  let out = '';
  for (const b of bytes)
    out += b > 0x20 && b < 0x7f && b !== 0x5c && b !== 0x3d ? String.fromCharCode(b) : `\\${octal(b)}`;
  return out;
}

/** A bash `$'…'` word for any bytes: octal escapes keep the script ASCII and the name exact. */
export function bashQuote(bytes: Buffer): string {
  let out = "$'";
  for (const b of bytes) out += SHELL_SAFE.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `\\${octal(b)}`;
  return `${out}'`;
}

const SHELL_SAFE = /^[A-Za-z0-9._/-]$/;

function octal(byte: number): string {
  return byte.toString(8).padStart(3, '0');
}

/** Paths per touch command: well under ARG_MAX even for paths of PATH_MAX bytes. */
const TOUCH_BATCH = 200;

/** Sub-microsecond mtimes, by `touch -h -d @S.N` (one command per distinct time, in one bash). */
async function applyExactTimes(work: Work): Promise<void> {
  if (work.exactTimes.length === 0) return;
  const byTime = new Map<string, Buffer[]>();
  for (const { path, inode } of work.exactTimes) {
    const time = `@${inode.mtime}.${String(inode.mtimeNsec).padStart(9, '0')}`;
    const paths = byTime.get(time) ?? [];
    paths.push(path);
    byTime.set(time, paths);
  }
  const lines: string[] = [];
  for (const [time, paths] of byTime)
    for (let i = 0; i < paths.length; i += TOUCH_BATCH) {
      const words = paths.slice(i, i + TOUCH_BATCH).map(bashQuote);
      lines.push(`touch -h -d ${time} -- ${words.join(' ')}\n`);
    }
  await runBash(lines.join(''), 'cannot set the modification times of the extracted tree');
}

async function runBash(script: string, what: string): Promise<void> {
  const bash = requireTool('bash', 'install bash');
  await exec(bash, ['-s'], what, { input: `set -e\n${script}` });
}

/** Directories last, children before parents: owner, then mode, then times. */
async function settleDirs(work: Work): Promise<void> {
  for (const { path, inode } of work.dirs) {
    const handle = await open(path, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
    try {
      if (needsChown(work, inode)) await handle.chown(inode.uid, inode.gid);
      await handle.chmod(inode.mode & 0o7777);
      const time = microsecondTime(inode);
      if (time !== undefined) await handle.utimes(time, time);
    } finally {
      await handle.close();
    }
  }
}
