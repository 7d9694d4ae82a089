/**
 * A minimal tar writer for image layers: ustar headers, with PAX records where a path, a link
 * target, a size or an id does not fit (as GNU tar and Go's archive/tar write them). Written by
 * hand because a layer needs control node-tar does not give: owners from a record rather than
 * from stat (rootless cells), OCI whiteout entries, hard links by inode. The sha256 of
 * everything written is computed on the way (an uncompressed layer's digest is its diff_id).
 */
import type { FileHandle } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import { lazyCrypto } from '../util/builtins.js';

export type TarType = 'file' | 'hardlink' | 'symlink' | 'dir' | 'fifo';

export interface TarEntry {
  /** Relative path, no leading slash; a directory's without a trailing slash (added here). */
  path: string;
  type: TarType;
  mode: number;
  uid: number;
  gid: number;
  /** Seconds since the epoch. */
  mtime: number;
  size?: number;
  /** Symlink target, or the path a hard link points to. */
  linkpath?: string;
}

const TYPE_FLAG: Record<TarType, string> = { file: '0', hardlink: '1', symlink: '2', dir: '5', fifo: '6' };
const BLOCK = 512;

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, '0')}\0`;
}

/** `len path=value\n`, where len counts the whole record, itself included. */
export function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const length = Buffer.byteLength(body);
  for (let digits = String(length).length; ; digits++) {
    if (String(length + digits).length === digits) return `${length + digits}${body}`;
  }
}

/** Split a path into ustar's prefix (155) and name (100), or undefined when it cannot be. */
export function splitUstarPath(path: string): { prefix: string; name: string } | undefined {
  if (Buffer.byteLength(path) <= 100) return { prefix: '', name: path };
  for (let i = path.indexOf('/'); i >= 0; i = path.indexOf('/', i + 1)) {
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100 && name) return { prefix, name };
  }
  return undefined;
}

/** One 512-byte ustar header. Pure. */
export function ustarHeader(fields: {
  name: string;
  prefix: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname: string;
}): Buffer {
  const header = Buffer.alloc(BLOCK);
  const put = (offset: number, width: number, value: string) => header.write(value, offset, width, 'utf8');
  put(0, 100, fields.name);
  put(100, 8, octal(fields.mode & 0o7777, 8));
  put(108, 8, octal(fields.uid, 8));
  put(116, 8, octal(fields.gid, 8));
  put(124, 12, octal(fields.size, 12));
  put(136, 12, octal(fields.mtime, 12));
  put(148, 8, '        ');
  put(156, 1, fields.typeflag);
  put(157, 100, fields.linkname);
  put(257, 6, 'ustar\0');
  put(263, 2, '00');
  put(329, 8, octal(0, 8));
  put(337, 8, octal(0, 8));
  put(345, 155, fields.prefix);
  let sum = 0;
  for (const byte of header) sum += byte;
  put(148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  return header;
}

/** The header blocks of an entry (a PAX header first where ustar cannot hold it). Pure. */
export function entryHeaders(entry: TarEntry): Buffer[] {
  const path = entry.type === 'dir' ? `${entry.path}/` : entry.path;
  const size = entry.type === 'file' ? (entry.size ?? 0) : 0;
  const linkpath = entry.linkpath ?? '';
  const pax: string[] = [];
  const split = splitUstarPath(path);
  if (!split || /[^\x20-\x7e]/.test(path)) pax.push(paxRecord('path', path));
  if (Buffer.byteLength(linkpath) > 100 || /[^\x20-\x7e]/.test(linkpath)) pax.push(paxRecord('linkpath', linkpath));
  const big = (n: number, width: number) => n >= 8 ** (width - 1);
  if (big(size, 12)) pax.push(paxRecord('size', String(size)));
  if (big(entry.uid, 8)) pax.push(paxRecord('uid', String(entry.uid)));
  if (big(entry.gid, 8)) pax.push(paxRecord('gid', String(entry.gid)));
  const ascii = (s: string, max: number) => (Buffer.byteLength(s) <= max && !/[^\x20-\x7e]/.test(s) ? s : '');
  const main = ustarHeader({
    name: split && !pax.some((r) => r.includes(' path=')) ? split.name : ascii(path.slice(-100), 100),
    prefix: split && !pax.some((r) => r.includes(' path=')) ? split.prefix : '',
    mode: entry.mode,
    uid: big(entry.uid, 8) ? 0 : entry.uid,
    gid: big(entry.gid, 8) ? 0 : entry.gid,
    size: big(size, 12) ? 0 : size,
    mtime: Math.max(0, Math.floor(entry.mtime)),
    typeflag: TYPE_FLAG[entry.type],
    linkname: ascii(linkpath, 100),
  });
  if (!pax.length) return [main];
  const body = Buffer.from(pax.join(''));
  const paxHeader = ustarHeader({
    name: 'PaxHeader',
    prefix: '',
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: body.length,
    mtime: 0,
    typeflag: 'x',
    linkname: '',
  });
  return [paxHeader, body, Buffer.alloc(padding(body.length)), main];
}

function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

/** Writes entries to a file, hashing everything written. */
export class TarWriter {
  private readonly hash = lazyCrypto().createHash('sha256');
  private size = 0;
  private constructor(private readonly out: FileHandle) {}

  static async create(path: string): Promise<TarWriter> {
    return new TarWriter(await open(path, 'wx', 0o644));
  }

  private async write(chunk: Buffer): Promise<void> {
    if (!chunk.length) return;
    this.hash.update(chunk);
    this.size += chunk.length;
    let done = 0;
    while (done < chunk.length) done += (await this.out.write(chunk, done)).bytesWritten;
  }

  /** An entry; a file's content is read from `source` (exactly entry.size bytes). */
  async add(entry: TarEntry, source?: string): Promise<void> {
    for (const block of entryHeaders(entry)) await this.write(block);
    if (entry.type !== 'file' || !entry.size) return;
    const input = await open(source!, 'r');
    try {
      const buffer = Buffer.alloc(Math.min(entry.size, 1 << 20));
      let left = entry.size;
      while (left > 0) {
        const { bytesRead } = await input.read(buffer, 0, Math.min(buffer.length, left), null);
        if (bytesRead === 0) throw new Error(`${source} is shorter than its size when the layer was written`);
        await this.write(buffer.subarray(0, bytesRead));
        left -= bytesRead;
      }
    } finally {
      await input.close();
    }
    await this.write(Buffer.alloc(padding(entry.size)));
  }

  /** The end-of-archive blocks; returns the layer's digest and size. */
  async finish(): Promise<{ digest: string; size: number }> {
    await this.write(Buffer.alloc(BLOCK * 2));
    await this.out.close();
    return { digest: `sha256:${this.hash.digest('hex')}`, size: this.size };
  }

  async abort(): Promise<void> {
    await this.out.close().catch(() => undefined);
  }
}
