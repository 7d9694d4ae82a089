/** Small recursive filesystem helpers (no symlink is ever followed), and a file's sha256. */
import { createReadStream } from 'node:fs';
import { chmod, lchown, lstat, mkdir, readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { lazyCrypto } from './builtins.js';

/** sha256 (hex) of a file, streamed. */
export async function sha256File(path: string): Promise<string> {
  const hash = lazyCrypto().createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export interface Owner {
  uid: number;
  gid: number;
}

/**
 * What a tree build-cell hands to the host (exports, synced caches, layouts for the Actions
 * cache) gets before the host uses it, in one walk: setuid and setgid bits cleared on regular
 * files (a cell's root could have set them, and the host's users must not gain the cell's
 * root), owners set to `owner` (if any). Returns the apparent size in bytes.
 */
export async function settleCopiedTree(path: string, owner?: Owner): Promise<number> {
  const info = await lstat(path);
  if (owner) await lchown(path, owner.uid, owner.gid);
  if (info.isFile() && info.mode & 0o6000) await chmod(path, info.mode & 0o1777);
  if (!info.isDirectory()) return info.size;
  let total = 0;
  for (const name of await readdir(path)) total += await settleCopiedTree(join(path, name), owner);
  return total;
}

/** mkdir -p, giving every directory it creates to `owner` (no root-owned leftovers on the host). */
export async function mkdirOwned(path: string, owner?: Owner): Promise<void> {
  const first = await mkdir(path, { recursive: true });
  if (!first || !owner) return;
  for (let dir = path; ; dir = dirname(dir)) {
    await lchown(dir, owner.uid, owner.gid);
    if (dir === first || dir === dirname(dir)) break;
  }
}
