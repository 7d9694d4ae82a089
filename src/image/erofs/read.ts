/**
 * Reading an EROFS image file without mounting it: inodes, directories, file data, symlink
 * targets and xattrs, by positional reads on one file handle. Every read is checked against the
 * file's size, so a truncated or corrupted image fails with an error naming the file and inode
 * instead of reading garbage. Metadata blocks (inodes, inline data, xattrs) are cached, since
 * the inodes of one directory's entries usually share a few blocks; file data is not.
 */
import { open, type FileHandle } from 'node:fs/promises';
import {
  DIRENT_TYPES,
  BLOCK_SIZE,
  ErofsFormatError,
  SUPERBLOCK_OFFSET,
  SUPERBLOCK_SIZE,
  XATTR_ENTRY_HEADER_SIZE,
  dataExtents,
  inodePosition,
  inodeSizeOf,
  isSelfOrParent,
  parseDirBlock,
  parseInode,
  parseSuperblock,
  parseXattrBody,
  parseXattrEntry,
  xattrEntrySize,
  type DataExtents,
  type Dirent,
  type Inode,
  type Superblock,
  type Xattr,
} from './format.js';

export type { Dirent, FileType, Inode, Superblock, Xattr } from './format.js';

/** An inode and the path it was reached by (for error messages; `/` is the root). */
export interface ErofsInode extends Inode {
  path: Buffer;
  /** The nid of the directory it was reached from (the root's own for the root). */
  parentNid: number;
}

const CACHED_BLOCKS = 1024;
const METADATA_START = SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE;
const DEFAULT_CHUNK = 1 << 20;

/** `"/usr/bin/x" (nid 42)`: bytes that are not printable ASCII are shown escaped. */
export function describe(inode: { path: Buffer; nid: number }): string {
  const text = inode.path.toString('latin1');
  const clipped = text.length > 200 ? `${text.slice(0, 200)}…` : text;
  return `${JSON.stringify(clipped).replace(/[\u0080-\u00ff]/g, (c) => `\\x${c.charCodeAt(0).toString(16)}`)} (nid ${inode.nid})`;
}

export function joinName(dir: Buffer, name: Buffer): Buffer {
  return dir.length === 1 && dir[0] === 0x2f ? Buffer.concat([dir, name]) : Buffer.concat([dir, SLASH, name]);
}

const SLASH = Buffer.from('/');

export class ErofsImage {
  private readonly cache = new Map<number, Buffer>();

  private constructor(
    private readonly handle: FileHandle,
    readonly file: string,
    readonly size: number,
    readonly superblock: Superblock,
  ) {}

  /** Open `file` and check its superblock (magic, checksum, features, and that it is whole). */
  static async open(file: string): Promise<ErofsImage> {
    const handle = await open(file, 'r');
    try {
      const { size } = await handle.stat();
      const head = Buffer.alloc(Math.min(size, BLOCK_SIZE));
      await readFully(handle, head, 0);
      const superblock = parseSuperblock(head);
      const expected = superblock.blocks * superblock.blockSize;
      if (size < expected)
        throw new ErofsFormatError(`the image is truncated: ${size} bytes, its superblock says ${expected}`);
      return new ErofsImage(handle, file, size, superblock);
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  async close(): Promise<void> {
    this.cache.clear();
    await this.handle.close();
  }

  root(): Promise<ErofsInode> {
    const nid = this.superblock.rootNid;
    return this.inode(nid, Buffer.from('/'), nid);
  }

  /** The inode `nid`, reached as `path` from directory `parentNid`. */
  async inode(nid: number, path: Buffer, parentNid: number): Promise<ErofsInode> {
    const what = describe({ path, nid });
    const position = inodePosition(this.superblock, nid);
    // Inodes may share block 0 with the superblock, never overlap it.
    if (!Number.isSafeInteger(position) || position < METADATA_START || position >= this.size)
      throw new ErofsFormatError(`${what}: the inode is outside the image`);
    const head = await this.readMeta(position, Math.min(64, this.size - position), what);
    const inode = parseInode(head.subarray(0, inodeSizeOf(head)), nid, this.superblock, what);
    return { ...inode, path, parentNid };
  }

  /** The entry's inode, checked against the type its dirent claims. */
  async child(dir: ErofsInode, entry: Dirent): Promise<ErofsInode> {
    const inode = await this.inode(entry.nid, joinName(dir.path, entry.name), dir.nid);
    if (DIRENT_TYPES[inode.type] !== entry.fileType)
      throw new ErofsFormatError(
        `${describe(inode)}: its dirent says file type ${entry.fileType}, its inode ${inode.type}`,
      );
    return inode;
  }

  /** A directory's entries in image order, without `.` and `..` (which are checked, then skipped). */
  async readdir(dir: ErofsInode): Promise<Dirent[]> {
    const what = describe(dir);
    if (dir.type !== 'directory') throw new ErofsFormatError(`${what}: not a directory`);
    const out: Dirent[] = [];
    let previous: Buffer | undefined;
    const seen = { dot: false, dotdot: false };
    const { blockSize } = this.superblock;
    for (let pos = 0; pos < dir.size; pos += blockSize) {
      const block = await this.readData(dir, pos, Math.min(blockSize, dir.size - pos));
      for (const entry of parseDirBlock(block, what)) {
        // Names are sorted (the kernel's lookup is a binary search): this also refuses duplicates.
        if (previous && Buffer.compare(previous, entry.name) >= 0)
          throw new ErofsFormatError(
            `${what}: dirents out of order or duplicated at ${JSON.stringify(entry.name.toString('latin1'))}`,
          );
        previous = entry.name;
        if (isSelfOrParent(entry)) checkSelfOrParent(dir, entry, seen, what);
        else out.push(entry);
      }
    }
    if (!seen.dot || !seen.dotdot) throw new ErofsFormatError(`${what}: the directory lacks its . or .. entry`);
    return out;
  }

  /** Up to `length` bytes of the inode's data from `offset` (fewer at the end of the file). */
  async readData(inode: ErofsInode, offset: number, length: number): Promise<Buffer> {
    const size = Math.max(0, Math.min(inode.size, offset + length) - offset);
    return this.readInto(inode, offset, Buffer.alloc(size));
  }

  /** Fill `buffer` (or its start, at the end of the file) with the inode's data from `offset`. */
  async readInto(inode: ErofsInode, offset: number, buffer: Buffer): Promise<Buffer> {
    const end = Math.min(inode.size, offset + buffer.length);
    if (offset < 0 || end <= offset) return buffer.subarray(0, 0);
    const extents = this.extents(inode);
    const out = buffer.subarray(0, end - offset);
    const inBlocks = Math.max(0, Math.min(end, extents.blocksLength) - offset);
    if (inBlocks > 0) await readFully(this.handle, out.subarray(0, inBlocks), extents.blocksAt + offset);
    if (inBlocks < out.length) {
      const tailOffset = Math.max(offset, extents.blocksLength) - extents.blocksLength;
      const tail = await this.readMeta(extents.tailAt + tailOffset, out.length - inBlocks, describe(inode));
      tail.copy(out, inBlocks);
    }
    return out;
  }

  /**
   * The inode's data in order, as chunks read into `buffer` (one buffer for every chunk: a chunk
   * is valid until the next one is asked for; no allocation per chunk).
   */
  async *chunks(inode: ErofsInode, buffer: Buffer = Buffer.allocUnsafe(DEFAULT_CHUNK)): AsyncGenerator<Buffer> {
    for (let offset = 0; offset < inode.size; offset += buffer.length) yield await this.readInto(inode, offset, buffer);
  }

  /** A symlink's target. */
  async readlink(inode: ErofsInode): Promise<Buffer> {
    if (inode.type !== 'symlink') throw new ErofsFormatError(`${describe(inode)}: not a symlink`);
    const target = await this.readData(inode, 0, inode.size);
    if (target.includes(0)) throw new ErofsFormatError(`${describe(inode)}: the symlink target holds a NUL byte`);
    return target;
  }

  /** The inode's xattrs: shared ones first, then inline ones, as the kernel lists them. */
  async xattrs(inode: ErofsInode): Promise<Xattr[]> {
    if (inode.xattrSize === 0) return [];
    const what = describe(inode);
    const body = await this.readMeta(inode.position + inode.inodeSize, inode.xattrSize, what);
    const { shared, inline } = parseXattrBody(body, what);
    const out: Xattr[] = [];
    for (const id of shared) out.push(await this.sharedXattr(id, what));
    out.push(...inline);
    const names = new Set(out.map((x) => x.name.toString('latin1')));
    if (names.size !== out.length) throw new ErofsFormatError(`${what}: an xattr name appears twice`);
    return out;
  }

  private async sharedXattr(id: number, what: string): Promise<Xattr> {
    const position = this.superblock.xattrBlkaddr * this.superblock.blockSize + id * 4;
    const header = await this.readMeta(position, XATTR_ENTRY_HEADER_SIZE, `${what}: shared xattr ${id}`);
    const entry = await this.readMeta(position, xattrEntrySize(header, 0), `${what}: shared xattr ${id}`);
    return parseXattrEntry(entry, 0, `${what}: shared xattr ${id}`).xattr;
  }

  private extents(inode: ErofsInode): DataExtents {
    if (inode.type !== 'file' && inode.type !== 'directory' && inode.type !== 'symlink')
      throw new ErofsFormatError(`${describe(inode)}: a ${inode.type} has no data`);
    return dataExtents(inode, this.superblock.blockSize, this.size, describe(inode));
  }

  /** `length` bytes at `position` through the block cache (metadata: small, read many times). */
  private async readMeta(position: number, length: number, what: string): Promise<Buffer> {
    if (position < 0 || position + length > this.size)
      throw new ErofsFormatError(`${what}: metadata at byte ${position} is past the end of the image`);
    const { blockSize } = this.superblock;
    const first = Math.floor(position / blockSize);
    const last = Math.floor((position + length - 1) / blockSize);
    if (first === last) {
      const block = await this.block(first);
      const start = position - first * blockSize;
      return block.subarray(start, start + length);
    }
    const out = Buffer.alloc(length);
    for (let n = first; n <= last; n++) {
      const block = await this.block(n);
      const start = Math.max(position, n * blockSize);
      const stop = Math.min(position + length, (n + 1) * blockSize);
      block.copy(out, start - position, start - n * blockSize, stop - n * blockSize);
    }
    return out;
  }

  private async block(n: number): Promise<Buffer> {
    const cached = this.cache.get(n);
    if (cached) return cached;
    const { blockSize } = this.superblock;
    const block = Buffer.alloc(Math.min(blockSize, this.size - n * blockSize));
    await readFully(this.handle, block, n * blockSize);
    if (this.cache.size >= CACHED_BLOCKS) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(n, block);
    return block;
  }
}

function checkSelfOrParent(
  dir: ErofsInode,
  entry: Dirent,
  seen: { dot: boolean; dotdot: boolean },
  what: string,
): void {
  const dot = entry.name.length === 1;
  const expected = dot ? dir.nid : dir.parentNid;
  if ((dot ? seen.dot : seen.dotdot) || entry.nid !== expected)
    throw new ErofsFormatError(`${what}: a bad ${dot ? '.' : '..'} entry (nid ${entry.nid})`);
  if (dot) seen.dot = true;
  else seen.dotdot = true;
}

/** Fill `buffer` from `position`; running out of file means the image is truncated. */
async function readFully(handle: FileHandle, buffer: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buffer.length) {
    const { bytesRead } = await handle.read(buffer, done, buffer.length - done, position + done);
    if (bytesRead === 0)
      throw new ErofsFormatError(`the image is truncated: nothing to read at byte ${position + done}`);
    done += bytesRead;
  }
}
