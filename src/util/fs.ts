/** Small recursive filesystem helpers (no symlink is ever followed). */
import { lchown, lstat, mkdir, readdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { join } from 'node:path';

export interface Owner {
  uid: number;
  gid: number;
}

/** lchown a whole tree to `owner`. */
export async function chownTree(path: string, owner: Owner): Promise<void> {
  await lchown(path, owner.uid, owner.gid);
  const info = await lstat(path);
  if (!info.isDirectory()) return;
  for (const name of await readdir(path)) await chownTree(join(path, name), owner);
}

/** Apparent size in bytes of a file or a tree. */
export async function treeSize(path: string): Promise<number> {
  const info = await lstat(path);
  if (!info.isDirectory()) return info.size;
  let total = 0;
  for (const name of await readdir(path)) total += await treeSize(join(path, name));
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
