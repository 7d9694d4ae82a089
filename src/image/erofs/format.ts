/**
 * The EROFS on-disk format, as far as build-cell reads it: the images it makes itself with
 * `mkfs.erofs` (erofs-utils 1.5, no compression). Pure functions over Buffers; every field is
 * little-endian and every offset is checked against the buffer it is read from, because the
 * image comes from a cache and is untrusted. Layouts and features that such images never hold
 * (compression, chunks, extra devices, long xattr prefixes, 48-bit addresses, block sizes
 * other than 4096) are refused with an error that says what was found.
 *
 * The format is erofs-utils' include/erofs_fs.h (struct erofs_super_block, erofs_inode_compact,
 * erofs_inode_extended, erofs_dirent, erofs_xattr_ibody_header, erofs_xattr_entry).
 */
import { CellSetupError } from '../../util/errors.js';

/** A malformed or unsupported image; the message names the file and inode where there is one. */
export class ErofsFormatError extends CellSetupError {
  override name = 'ErofsFormatError';
}

export const SUPERBLOCK_OFFSET = 1024;
export const EROFS_MAGIC = 0xe0f5e1e2;
/** erofs-utils 1.5 writes only 4096-byte blocks (its EROFS_BLKSIZ is the page size). */
export const BLOCK_SIZE = 4096;
const BLOCK_BITS = 12;
/** The fixed part of the superblock (erofs-utils 1.5 writes 128 bytes, newer ones more). */
export const SUPERBLOCK_SIZE = 128;
export const COMPACT_INODE_SIZE = 32;
export const EXTENDED_INODE_SIZE = 64;
/** Inodes sit in 32-byte slots: a nid is a slot number from the start of the metadata area. */
const INODE_SLOT_SIZE = 32;
export const DIRENT_SIZE = 12;
export const XATTR_IBODY_HEADER_SIZE = 12;
export const XATTR_ENTRY_HEADER_SIZE = 4;
const MAX_NAME_LENGTH = 255;
/** Linux's XATTR_NAME_MAX: a longer full name cannot be set on the extracted tree. */
const MAX_XATTR_NAME_LENGTH = 255;

const COMPAT_SB_CHKSUM = 0x1;
/** Incompatible features that only compressed inodes use: such inodes are refused one by one. */
const INCOMPAT_COMPRESSION_ONLY = 0x1 | 0x2 | 0x10;
const INCOMPAT_NAMES: Record<number, string> = {
  0x4: 'chunk-based files (mkfs.erofs --chunksize)',
  0x8: 'extra devices (mkfs.erofs --blobdev)',
  0x20: 'compressed fragments or deduplication (mkfs.erofs -E fragments/dedupe)',
  0x40: 'long xattr name prefixes',
  0x80: '48-bit block addresses',
  0x100: 'a metadata box (metabox)',
};

export const LAYOUT_FLAT_PLAIN = 0;
export const LAYOUT_FLAT_INLINE = 2;

export type FileType = 'file' | 'directory' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket';

const S_IFMT = 0o170000;
const MODE_TYPES: Record<number, FileType> = {
  0o100000: 'file',
  0o040000: 'directory',
  0o120000: 'symlink',
  0o020000: 'char',
  0o060000: 'block',
  0o010000: 'fifo',
  0o140000: 'socket',
};

/** erofs_dirent.file_type (EROFS_FT_*), for checking a dirent against its inode. */
export const DIRENT_TYPES: Record<FileType, number> = {
  file: 1,
  directory: 2,
  char: 3,
  block: 4,
  fifo: 5,
  socket: 6,
  symlink: 7,
};

export interface Superblock {
  blockSize: number;
  rootNid: number;
  /** Number of inodes (for a sanity bound only). */
  inodeCount: number;
  /** Build time: compact inodes' mtimes are relative to it (1.5 stores 0 there: all equal it). */
  epoch: number;
  /** Nanoseconds of every compact inode's mtime (1.5 wrote the build time's microseconds here). */
  fixedNsec: number;
  /** Image size in blocks, as mkfs.erofs wrote it. */
  blocks: number;
  metaBlkaddr: number;
  xattrBlkaddr: number;
  featureCompat: number;
  featureIncompat: number;
}

export interface Inode {
  nid: number;
  /** Byte offset of the inode in the image. */
  position: number;
  extended: boolean;
  layout: number;
  /** st_mode: type and permission bits, setuid/setgid/sticky included. */
  mode: number;
  type: FileType;
  nlink: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  mtimeNsec: number;
  /** First data block (i_u.raw_blkaddr) of regular files, directories and symlinks. */
  startBlock: number;
  rdevMajor: number;
  rdevMinor: number;
  inodeSize: number;
  /** Bytes of inline xattrs right after the inode (0 without xattrs). */
  xattrSize: number;
}

export interface Dirent {
  nid: number;
  name: Buffer;
  fileType: number;
}

export interface Xattr {
  /** The full name (`user.foo`), bytes as stored. */
  name: Buffer;
  value: Buffer;
}

export interface XattrBody {
  /** Ids of shared xattrs (each at xattrBlkaddr * blockSize + id * 4). */
  shared: number[];
  inline: Xattr[];
}

/** Where an inode's data is: whole blocks at `blocksAt`, then a tail packed after the inode. */
export interface DataExtents {
  blocksAt: number;
  blocksLength: number;
  tailAt: number;
  tailLength: number;
}

function fail(message: string): never {
  throw new ErofsFormatError(message);
}

function u64(buf: Buffer, offset: number, what: string): number {
  const value = buf.readBigUInt64LE(offset);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) fail(`${what} is out of range (${value})`);
  return Number(value);
}

const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** erofs_crc32c(): CRC-32C as mkfs.erofs computes it (seeded, no final inversion). */
export function crc32c(seed: number, data: Buffer): number {
  let crc = seed >>> 0;
  for (const byte of data) crc = (CRC32C_TABLE[(crc ^ byte) & 0xff]! ^ (crc >>> 8)) >>> 0;
  return crc;
}

/** The superblock checksum covers the rest of block 0, with the checksum field zeroed. */
function checkSuperblockChecksum(block: Buffer): void {
  const covered = Buffer.from(block.subarray(SUPERBLOCK_OFFSET, BLOCK_SIZE));
  const stored = covered.readUInt32LE(4);
  covered.writeUInt32LE(0, 4);
  const computed = crc32c(0xffffffff, covered);
  if (computed !== stored)
    fail(
      `superblock checksum mismatch (stored 0x${stored.toString(16)}, computed 0x${computed.toString(16)}): ` +
        'the image is corrupted',
    );
}

function checkIncompatFeatures(incompat: number): void {
  for (const [bit, name] of Object.entries(INCOMPAT_NAMES))
    if (incompat & Number(bit)) fail(`the image uses ${name}, which build-cell's EROFS reader does not support`);
  const unknown = incompat & ~INCOMPAT_COMPRESSION_ONLY;
  if (unknown) fail(`the image has unknown incompatible features 0x${unknown.toString(16)} (a newer mkfs.erofs?)`);
}

/** Parse block 0 (at least its first 4096 bytes), which holds the superblock at byte 1024. */
export function parseSuperblock(block: Buffer): Superblock {
  if (block.length < SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE)
    fail(`the image is truncated: ${block.length} bytes cannot hold an EROFS superblock`);
  const sb = block.subarray(SUPERBLOCK_OFFSET);
  const magic = sb.readUInt32LE(0);
  if (magic !== EROFS_MAGIC)
    fail(`not an EROFS image (magic 0x${magic.toString(16)} at byte ${SUPERBLOCK_OFFSET}, expected 0xe0f5e1e2)`);
  const blockBits = sb.readUInt8(12);
  if (blockBits !== BLOCK_BITS) fail(`block size 2^${blockBits} is not supported (only ${BLOCK_SIZE})`);
  if (block.length < BLOCK_SIZE) fail(`the image is truncated: ${block.length} bytes, less than one block`);
  const featureCompat = sb.readUInt32LE(8);
  if (featureCompat & COMPAT_SB_CHKSUM) checkSuperblockChecksum(block);
  const featureIncompat = sb.readUInt32LE(80);
  checkIncompatFeatures(featureIncompat);
  if (sb.readUInt8(90) !== 0) fail(`directory block size 2^(12+${sb.readUInt8(90)}) is not supported`);
  return {
    blockSize: BLOCK_SIZE,
    rootNid: sb.readUInt16LE(14),
    inodeCount: u64(sb, 16, 'the inode count'),
    epoch: u64(sb, 24, 'the build time'),
    fixedNsec: sb.readUInt32LE(32),
    blocks: sb.readUInt32LE(36),
    metaBlkaddr: sb.readUInt32LE(40),
    xattrBlkaddr: sb.readUInt32LE(44),
    featureCompat,
    featureIncompat,
  };
}

/** Byte offset of inode `nid`. */
export function inodePosition(sb: Superblock, nid: number): number {
  return sb.metaBlkaddr * sb.blockSize + nid * INODE_SLOT_SIZE;
}

/** Bytes of the inline xattr area for i_xattr_icount (a 12-byte header, then 4-byte slots). */
export function xattrBodySize(icount: number): number {
  return icount === 0 ? 0 : XATTR_IBODY_HEADER_SIZE + 4 * (icount - 1);
}

/** The size of the inode at the start of `head` (its first two bytes are enough). */
export function inodeSizeOf(head: Buffer): number {
  return head.readUInt16LE(0) & 1 ? EXTENDED_INODE_SIZE : COMPACT_INODE_SIZE;
}

function checkFormat(format: number, what: string): number {
  if (format & ~0xf) fail(`${what}: i_format 0x${format.toString(16)} has bits this reader does not know`);
  const layout = (format >> 1) & 0x7;
  if (layout === 1 || layout === 3)
    fail(`${what}: compressed data (layout ${layout}) is not supported: build the image without -z`);
  if (layout === 4) fail(`${what}: chunk-based data (layout 4) is not supported: build the image without --chunksize`);
  if (layout !== LAYOUT_FLAT_PLAIN && layout !== LAYOUT_FLAT_INLINE) fail(`${what}: unknown data layout ${layout}`);
  return layout;
}

/** new_decode_dev(): erofs stores rdev in the kernel's "new" 32-bit encoding. */
function decodeDev(dev: number): { major: number; minor: number } {
  return { major: (dev & 0xfff00) >>> 8, minor: (dev & 0xff) | ((dev >>> 12) & 0xfff00) };
}

/** Parse the inode at the start of `buf` (32 bytes, or 64 for an extended one). */
export function parseInode(buf: Buffer, nid: number, sb: Superblock, what: string): Inode {
  if (buf.length < COMPACT_INODE_SIZE) fail(`${what}: the inode is truncated`);
  const format = buf.readUInt16LE(0);
  const layout = checkFormat(format, what);
  const extended = (format & 1) === 1;
  if (extended && buf.length < EXTENDED_INODE_SIZE) fail(`${what}: the inode is truncated`);
  const mode = buf.readUInt16LE(4);
  const type = MODE_TYPES[mode & S_IFMT] ?? fail(`${what}: bad file type in mode 0${mode.toString(8)}`);
  const fields = extended ? extendedFields(buf, what) : compactFields(buf, sb);
  if (fields.nlink === 0) fail(`${what}: link count 0`);
  if (fields.mtimeNsec >= 1e9) fail(`${what}: bad mtime nanoseconds ${fields.mtimeNsec}`);
  const rawU = buf.readUInt32LE(16);
  const special = type === 'char' || type === 'block';
  const rdev = special ? decodeDev(rawU) : { major: 0, minor: 0 };
  const inode: Inode = {
    nid,
    position: inodePosition(sb, nid),
    extended,
    layout,
    mode,
    type,
    ...fields,
    startBlock: special ? 0 : rawU,
    rdevMajor: rdev.major,
    rdevMinor: rdev.minor,
    inodeSize: extended ? EXTENDED_INODE_SIZE : COMPACT_INODE_SIZE,
    xattrSize: xattrBodySize(buf.readUInt16LE(2)),
  };
  checkSize(inode, sb, what);
  return inode;
}

type InodeFields = Pick<Inode, 'nlink' | 'uid' | 'gid' | 'size' | 'mtime' | 'mtimeNsec'>;

function compactFields(buf: Buffer, sb: Superblock): InodeFields {
  return {
    nlink: buf.readUInt16LE(6),
    size: buf.readUInt32LE(8),
    // erofs-utils 1.5 left this field 0: every compact inode has the build time.
    mtime: sb.epoch + buf.readUInt32LE(12),
    mtimeNsec: sb.fixedNsec,
    uid: buf.readUInt16LE(24),
    gid: buf.readUInt16LE(26),
  };
}

function extendedFields(buf: Buffer, what: string): InodeFields {
  return {
    size: u64(buf, 8, `${what}: the size`),
    uid: buf.readUInt32LE(24),
    gid: buf.readUInt32LE(28),
    mtime: u64(buf, 32, `${what}: the mtime`),
    mtimeNsec: buf.readUInt32LE(40),
    nlink: buf.readUInt32LE(44),
  };
}

function checkSize(inode: Inode, sb: Superblock, what: string): void {
  // The kernel refuses symlinks of a block or more; Linux allows at most 4095 bytes anyway.
  if (inode.type === 'symlink' && (inode.size === 0 || inode.size >= sb.blockSize))
    fail(`${what}: bad symlink length ${inode.size}`);
}

/** Where the data of a regular file, directory or symlink lies, checked against `imageSize`. */
export function dataExtents(inode: Inode, blockSize: number, imageSize: number, what: string): DataExtents {
  const inline = inode.layout === LAYOUT_FLAT_INLINE;
  const blocks = Math.ceil(inode.size / blockSize);
  const blocksLength = inline ? Math.max(0, blocks - 1) * blockSize : inode.size;
  const tailLength = inode.size - blocksLength;
  const extents: DataExtents = {
    blocksAt: inode.startBlock * blockSize,
    blocksLength,
    tailAt: inode.position + inode.inodeSize + inode.xattrSize,
    tailLength,
  };
  if (blocksLength > 0 && extents.blocksAt + blocksLength > imageSize)
    fail(`${what}: data at byte ${extents.blocksAt} (${blocksLength} bytes) is past the end of the image`);
  if (tailLength > 0 && (extents.tailAt % blockSize) + tailLength > blockSize)
    fail(`${what}: inline data crosses a block boundary`);
  if (tailLength > 0 && extents.tailAt + tailLength > imageSize)
    fail(`${what}: inline data is past the end of the image`);
  return extents;
}

function isDotOrDotDot(name: Buffer): boolean {
  return name.length <= 2 && name.every((b) => b === 0x2e);
}

/** The length of the name at `start`: up to the next name, or (the last one) the first NUL. */
function nameEnd(block: Buffer, start: number, next: number | undefined): number {
  if (next !== undefined) return next;
  const nul = block.indexOf(0, start);
  return nul < 0 ? block.length : nul;
}

function checkName(name: Buffer, what: string): void {
  const shown = JSON.stringify(name.toString('latin1'));
  if (name.length === 0) fail(`${what}: an empty file name`);
  if (name.length > MAX_NAME_LENGTH) fail(`${what}: a file name of ${name.length} bytes`);
  if (name.includes(0x2f)) fail(`${what}: the file name ${shown} holds a slash`);
  if (name.includes(0)) fail(`${what}: the file name ${shown} holds a NUL byte`);
}

/**
 * The dirents of one directory block (`.` and `..` included): 12-byte dirents, the first one's
 * nameoff telling how many there are, then the names packed in the same order.
 */
export function parseDirBlock(block: Buffer, what: string): Dirent[] {
  if (block.length < DIRENT_SIZE) fail(`${what}: a directory block of ${block.length} bytes`);
  const first = block.readUInt16LE(8);
  if (first < DIRENT_SIZE || first % DIRENT_SIZE !== 0 || first >= block.length)
    fail(`${what}: bad first dirent name offset ${first}`);
  const count = first / DIRENT_SIZE;
  const out: Dirent[] = [];
  let expected = first;
  for (let i = 0; i < count; i++) {
    const at = i * DIRENT_SIZE;
    const nameoff = block.readUInt16LE(at + 8);
    if (nameoff !== expected) fail(`${what}: dirent ${i} has name offset ${nameoff}, expected ${expected}`);
    const next = i + 1 < count ? block.readUInt16LE(at + DIRENT_SIZE + 8) : undefined;
    const end = nameEnd(block, nameoff, next);
    if (end < nameoff) fail(`${what}: dirent ${i + 1} has name offset ${end}, before dirent ${i}'s (${nameoff})`);
    if (end > block.length) fail(`${what}: dirent ${i} has a name past the end of its block`);
    const name = block.subarray(nameoff, end);
    checkName(name, what);
    const fileType = block.readUInt8(at + 10);
    if (fileType === 0 || fileType > 7) fail(`${what}: dirent ${i} has unknown file type ${fileType}`);
    out.push({ nid: u64(block, at, `${what}: a dirent's nid`), name, fileType });
    expected = end;
  }
  return out;
}

/** Whether a dirent is the directory's own `.` or `..` (skipped, never extracted). */
export function isSelfOrParent(entry: Dirent): boolean {
  return isDotOrDotDot(entry.name);
}

/** The name prefixes of e_name_index (erofs_fs.h EROFS_XATTR_INDEX_*; 5, Lustre, is unused on Linux). */
const XATTR_PREFIXES: Record<number, string> = {
  1: 'user.',
  2: 'system.posix_acl_access',
  3: 'system.posix_acl_default',
  4: 'trusted.',
  6: 'security.',
};

function xattrName(index: number, suffix: Buffer, what: string): Buffer {
  if (index & 0x80) fail(`${what}: an xattr with a long name prefix (not supported)`);
  const prefix = XATTR_PREFIXES[index] ?? fail(`${what}: an xattr with unknown name index ${index}`);
  const acl = index === 2 || index === 3;
  if (acl !== (suffix.length === 0)) fail(`${what}: a bad xattr name for prefix ${prefix}`);
  if (suffix.includes(0)) fail(`${what}: an xattr name holds a NUL byte`);
  const name = Buffer.concat([Buffer.from(prefix), suffix]);
  if (name.length > MAX_XATTR_NAME_LENGTH) fail(`${what}: an xattr name of ${name.length} bytes`);
  return name;
}

/** Bytes of the xattr entry whose 4-byte header is at `offset` (name and value, 4-byte aligned). */
export function xattrEntrySize(buf: Buffer, offset: number): number {
  return (XATTR_ENTRY_HEADER_SIZE + buf.readUInt8(offset) + buf.readUInt16LE(offset + 2) + 3) & ~3;
}

/** One xattr entry at `offset` in `buf` (an inode's inline area or the shared-xattr area). */
export function parseXattrEntry(buf: Buffer, offset: number, what: string): { xattr: Xattr; end: number } {
  if (offset + XATTR_ENTRY_HEADER_SIZE > buf.length) fail(`${what}: a truncated xattr entry`);
  const nameLength = buf.readUInt8(offset);
  const valueSize = buf.readUInt16LE(offset + 2);
  const nameAt = offset + XATTR_ENTRY_HEADER_SIZE;
  if (nameAt + nameLength + valueSize > buf.length) fail(`${what}: a truncated xattr entry`);
  const name = xattrName(buf.readUInt8(offset + 1), buf.subarray(nameAt, nameAt + nameLength), what);
  const value = buf.subarray(nameAt + nameLength, nameAt + nameLength + valueSize);
  return { xattr: { name, value }, end: Math.min(buf.length, offset + xattrEntrySize(buf, offset)) };
}

/** An inode's inline xattr area: the ibody header, the shared xattr ids, then inline entries. */
export function parseXattrBody(body: Buffer, what: string): XattrBody {
  if (body.length === 0) return { shared: [], inline: [] };
  if (body.length < XATTR_IBODY_HEADER_SIZE) fail(`${what}: a truncated xattr header`);
  const sharedCount = body.readUInt8(4);
  let offset = XATTR_IBODY_HEADER_SIZE + 4 * sharedCount;
  if (offset > body.length) fail(`${what}: ${sharedCount} shared xattrs do not fit the inode's xattr area`);
  const shared: number[] = [];
  for (let i = 0; i < sharedCount; i++) shared.push(body.readUInt32LE(XATTR_IBODY_HEADER_SIZE + 4 * i));
  const inline: Xattr[] = [];
  while (offset < body.length) {
    const { xattr, end } = parseXattrEntry(body, offset, what);
    inline.push(xattr);
    offset = end;
  }
  return { shared, inline };
}
