/**
 * An install cell's root changes as an OCI layer.
 *
 * The cell's root is an overlay: the base image's rootfs (lower) and the cell's upper dir. What
 * the install changed is exactly the upper dir, but two kinds of change hide in overlayfs
 * metadata that Node cannot read (xattrs): opaque directories, and (in user namespaces) where
 * whiteouts are. So deletions are read from the live cell instead, while it still exists: in
 * a directory the upper holds, a name the lower has and the cell no longer sees was deleted
 * (a whiteout, or a directory made opaque). The same rule as the cache sync (cell/finalize.ts).
 *
 * Staging's own entries (mount points, their parents, files build-cell writes) are not the
 * install's: they are removed from the upper before the layer is written.
 */
import type { Stats } from 'node:fs';
import { lstat, readdir, readFile, readlink, rmdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { HELPER_DIR } from '../cell/plan.js';
import { ROOT_SENTINEL } from '../image/store.js';
import { TarWriter, type TarEntry } from './tar.js';
import { isWhiteout } from '../write-back/apply-upper.js';

/** Names deleted from the lower layer, by directory of the upper ('' is the root). */
export type Deletions = Map<string, string[]>;

/** Paths of the root that are build-cell's, never part of an image layer. */
const EXCLUDED = new Set([HELPER_DIR.slice(1), ROOT_SENTINEL]);

export function isExcluded(rel: string): boolean {
  return EXCLUDED.has(rel);
}

export const statOrUndefined = (path: string) => lstat(path).catch(() => undefined);
const namesOf = (path: string) => readdir(path).catch(() => [] as string[]);
/** A child's path relative to the root ('' is the root). */
export const childRel = (dir: string, name: string) => (dir ? `${dir}/${name}` : name);

/**
 * The deletions, read while the cell's view (`view`: its `/`) is alive. `mountPoints` (relative
 * paths) show something else than the root in the view: never compared, never descended into.
 */
export async function scanDeletions(
  upper: string,
  lower: string,
  view: string,
  mountPoints: Set<string>,
): Promise<Deletions> {
  const deletions: Deletions = new Map();
  const walk = async (rel: string, lowerIsDir: boolean): Promise<void> => {
    if (lowerIsDir) {
      const visible = new Set(await namesOf(join(view, rel)));
      const gone = (await namesOf(join(lower, rel))).filter((name) => !visible.has(name));
      if (gone.length) deletions.set(rel, gone.sort());
    }
    for (const name of await namesOf(join(upper, rel))) {
      const child = childRel(rel, name);
      if (mountPoints.has(child)) continue;
      const info = await statOrUndefined(join(upper, child));
      if (!info?.isDirectory()) continue;
      // Below a lower symlink or non-directory, overlayfs shows the upper alone.
      const lowerChild = lowerIsDir ? await statOrUndefined(join(lower, child)) : undefined;
      await walk(child, !!lowerChild?.isDirectory());
    }
  };
  await walk('', true);
  return deletions;
}

/** Remove staging's entries from the upper (children first): files always, directories when empty. */
export async function removeStaged(upper: string, created: string[]): Promise<void> {
  for (const rel of [...created].reverse()) {
    const path = join(upper, rel);
    const info = await statOrUndefined(path);
    if (!info) continue;
    if (!info.isDirectory()) await unlink(path);
    else await rmdir(path).catch(() => undefined);
  }
}

/** Owners and modes as the cell saw them, by host path (rootless cells with subordinate ids: see flatten-owners). */
export type OwnerRecord = Map<string, { uid: number; gid: number; mode: number }>;

/** Parse the helper's flatten-owners list: "UID GID MODE PATH\0"... Pure. */
export function parseOwnerRecord(text: string): OwnerRecord {
  const record: OwnerRecord = new Map();
  for (const item of text.split('\0')) {
    const match = /^(\d+) (\d+) ([0-7]+) (.+)$/s.exec(item);
    if (match) record.set(match[4]!, { uid: Number(match[1]), gid: Number(match[2]), mode: parseInt(match[3]!, 8) });
  }
  return record;
}

export async function readOwnerRecord(file: string): Promise<OwnerRecord> {
  return parseOwnerRecord(await readFile(file, 'utf8').catch(() => ''));
}

/**
 * How the layer records owners: `stat` (root cells: the files' own), or `rootless`: the cell's
 * root is the invoking user, so an entry is root's unless the owner record says otherwise.
 */
export type Ownership = { kind: 'stat' } | { kind: 'rootless'; record: OwnerRecord };

/**
 * Write the upper (less EXCLUDED) as a layer: for each directory, whiteouts (`.wh.NAME`) of its
 * deletions, then its entries in name order. An entry that changed between directory and
 * non-directory also whites out the lower one (explicit for every unpacker). Hard links within
 * the layer stay hard links. Fifos are kept; sockets and device nodes are never in a layer.
 */
export async function writeLayer(
  upper: string,
  lower: string,
  deletions: Deletions,
  ownership: Ownership,
  out: string,
): Promise<{ digest: string; size: number; entries: number }> {
  const tar = await TarWriter.create(out);
  const links = new Map<string, string>();
  let entries = 0;
  const meta = (path: string, info: Stats) => {
    if (ownership.kind === 'stat') return { uid: info.uid, gid: info.gid, mode: info.mode };
    return ownership.record.get(path) ?? { uid: 0, gid: 0, mode: info.mode };
  };
  const walk = async (rel: string, lowerIsDir: boolean): Promise<void> => {
    const whiteouts = new Set(deletions.get(rel) ?? []);
    const names = (await namesOf(join(upper, rel))).sort();
    const entriesHere: Array<{ name: string; info: Stats; lowerInfo?: Stats }> = [];
    for (const name of names) {
      const child = childRel(rel, name);
      if (isExcluded(child)) continue;
      const info = await lstat(join(upper, child));
      if (isWhiteout(info)) continue;
      const lowerInfo = lowerIsDir ? await statOrUndefined(join(lower, child)) : undefined;
      if (lowerInfo && lowerInfo.isDirectory() !== info.isDirectory()) whiteouts.add(name);
      entriesHere.push({ name, info, lowerInfo });
    }
    const now = Math.floor(Date.now() / 1000);
    for (const name of [...whiteouts].sort()) {
      if (isExcluded(childRel(rel, name))) continue;
      await tar.add({
        path: childRel(rel, `.wh.${name}`),
        type: 'file',
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime: now,
        size: 0,
      });
      entries++;
    }
    for (const { name, info, lowerInfo } of entriesHere) {
      const child = childRel(rel, name);
      const path = join(upper, child);
      const { uid, gid, mode } = meta(path, info);
      const base = { path: child, uid, gid, mode, mtime: info.mtimeMs / 1000 };
      let entry: TarEntry | undefined;
      if (info.isDirectory()) entry = { ...base, type: 'dir' };
      else if (info.isSymbolicLink()) entry = { ...base, type: 'symlink', linkpath: await readlink(path) };
      else if (info.isFIFO()) entry = { ...base, type: 'fifo' };
      else if (info.isFile()) {
        const inode = `${info.dev}:${info.ino}`;
        const first = info.nlink > 1 ? links.get(inode) : undefined;
        if (first) entry = { ...base, type: 'hardlink', linkpath: first };
        else {
          if (info.nlink > 1) links.set(inode, child);
          entry = { ...base, type: 'file', size: info.size };
        }
      }
      if (!entry) continue;
      await tar.add(entry, path);
      entries++;
      if (info.isDirectory()) await walk(child, !!lowerInfo?.isDirectory() && !whiteouts.has(name));
    }
  };
  try {
    await walk('', true);
    return { ...(await tar.finish()), entries };
  } catch (error) {
    await tar.abort();
    throw error;
  }
}
