/**
 * A cell's root lower layer as the engine sees it before the cell starts. A prepared rootfs
 * directory is simply lstat'ed; an image mounted only inside the cell's own mount namespace
 * (an EROFS file) is read with build-cell's reader instead, for exactly the paths staging asks
 * about (mount points and the files it writes), ahead of staging, so that staging itself stays
 * a few synchronous metadata calls.
 */
import type { Stats } from 'node:fs';
import { ErofsImage, type ErofsInode } from './erofs/read.js';

/** What a mount point's check needs of a lower layer's entry (a subset of fs.Stats). */
export type LowerEntry = Pick<Stats, 'isDirectory' | 'isSymbolicLink' | 'mode' | 'uid' | 'gid'>;

/** A lower layer's entries by path below its top ('' is the top), without following symlinks. */
export interface LowerView {
  lstat(rel: string): LowerEntry | undefined;
}

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

function entryOf(inode: ErofsInode): LowerEntry {
  return {
    isDirectory: () => (inode.mode & S_IFMT) === S_IFDIR,
    isSymbolicLink: () => (inode.mode & S_IFMT) === S_IFLNK,
    mode: inode.mode,
    uid: inode.uid,
    gid: inode.gid,
  };
}

/**
 * The view of `image` for `rels` and every directory on their way: each path is looked up
 * component by component, stopping at a symlink or a non-directory (below which a lower layer
 * shows nothing, as overlayfs has it).
 */
export async function erofsLowerView(image: string, rels: readonly string[]): Promise<LowerView> {
  const entries = new Map<string, LowerEntry>();
  const reader = await ErofsImage.open(image);
  try {
    const root = await reader.root();
    entries.set('', entryOf(root));
    const known = new Map<string, ErofsInode>([['', root]]);
    for (const rel of rels) await walk(reader, known, entries, rel.split('/').filter(Boolean));
  } finally {
    await reader.close();
  }
  return { lstat: (rel) => entries.get(rel.split('/').filter(Boolean).join('/')) };
}

async function walk(
  reader: ErofsImage,
  known: Map<string, ErofsInode>,
  entries: Map<string, LowerEntry>,
  parts: string[],
): Promise<void> {
  let path = '';
  let dir = known.get('')!;
  for (const part of parts) {
    if ((dir.mode & S_IFMT) !== S_IFDIR) return;
    const next = path ? `${path}/${part}` : part;
    let inode = known.get(next);
    if (!inode) {
      const name = Buffer.from(part);
      const dirent = (await reader.readdir(dir)).find((d) => d.name.equals(name));
      if (!dirent) return;
      inode = await reader.child(dir, dirent);
      known.set(next, inode);
      entries.set(next, entryOf(inode));
    }
    path = next;
    dir = inode;
  }
}
