/**
 * What the store holds (`build-cell store list`, and what prune, verify and the cap choose
 * from): one row per image, with the references and install keys that name it, its base when
 * it is derived, its parts, its disk usage (hard links once), its last use and its holders.
 */
import { readdirSync, readFileSync, statfsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  ENTRY_PARTS,
  PART_DIRS,
  entryOfPartName,
  parseEntryName,
  type EntryPart,
  type RefRecord,
  type Store,
} from '../image/store.js';
import { ARCHES, archKey, resolveArch, type ArchInfo } from '../emulation/arch.js';
import { lastUsed, liveHolders, type Holder } from '../image/usage.js';
import {
  addUsage,
  diskUsage,
  emptyUsage,
  ownUsage,
  usageBytes,
  usageFromJson,
  usageToJson,
  type DiskUsage,
} from '../util/disk-usage.js';
import { readImageConfig } from '../image/prepare.js';
import { INSTALL_REFERENCE_PREFIX } from '../install/key.js';
import { LABEL } from '../install/registry.js';

const INSTALL_PREFIX = INSTALL_REFERENCE_PREFIX;
const BASE_LABEL = LABEL.base;

export interface StoreImage {
  /** The entry's name in the store: ARCH-HEX. */
  entry: string;
  arch: string;
  digest: string;
  parts: EntryPart[];
  /** The references whose last resolution named it. */
  references: string[];
  /** The install steps (their key hashes) whose derived image it is. */
  installKeys: string[];
  /** A derived image's base (its manifest digest). */
  base?: string;
  /** Its disk usage, each inode once; `unique`: what removing it frees (no other image shares it). */
  bytes: number;
  unique: number;
  /** When it was last used (ms since the epoch; never marked: when it was made). */
  lastUsed: number;
  holders: Holder[];
  /** Its inodes, for the totals (not printed). */
  usage: DiskUsage;
}

export interface StoreInventory {
  stateDir: string;
  images: StoreImage[];
  /** All images together, each inode once. */
  bytes: number;
  /** The filesystem the store is on. */
  filesystem: { size: number; free: number };
  /** The whole state dir as `du -s` counts it (images, cells' scratch, sessions, records), when asked for. */
  stateDirBytes?: number;
}

/** The store's images, least recently used first. `sizes: false` skips the disk usage (all zero). */
export async function readInventory(
  store: Store,
  options: { sizes?: boolean; whole?: boolean } = {},
): Promise<StoreInventory> {
  const refs = readRefs(store);
  const images: StoreImage[] = [];
  for (const entry of entryNames(store)) {
    const parsed = parseEntryName(entry)!;
    const paths = store.partPaths(entry);
    const parts = ENTRY_PARTS.filter((part) => paths[part].some(exists));
    const named = refs.filter((r) => r.entry === entry);
    images.push({
      entry,
      arch: entryArch(entry)?.name ?? parsed.archKey,
      digest: parsed.digest,
      parts,
      references: named.filter((r) => !r.reference.startsWith(INSTALL_PREFIX)).map((r) => r.reference),
      installKeys: named
        .filter((r) => r.reference.startsWith(INSTALL_PREFIX))
        .map((r) => r.reference.slice(INSTALL_PREFIX.length)),
      ...(await baseOf(store, entry, parts)),
      bytes: 0,
      unique: 0,
      lastUsed: lastUsed(store, entry, madeAt(paths, parts)),
      holders: liveHolders(store, entry),
      usage: options.sizes === false ? emptyUsage() : await imageUsage(store, entry, parts),
    });
  }
  images.sort((a, b) => a.lastUsed - b.lastUsed);
  const all = countBytes(images);
  const fs = statfsSync(existingParent(store.stateDir));
  return {
    stateDir: store.stateDir,
    images,
    bytes: usageBytes(all),
    filesystem: { size: fs.blocks * fs.bsize, free: fs.bavail * fs.bsize },
    ...(options.whole ? { stateDirBytes: usageBytes(restOfStateDir(store, addUsage(emptyUsage(), all))) } : {}),
  };
}

/** The state dir, or its nearest parent that exists (a store not made yet is on that filesystem). */
function existingParent(dir: string): string {
  for (let at = dir; ; at = dirname(at)) if (mtime(at) > 0 || at === dirname(at)) return at;
}

/** Every image with a part in the store (an entry's marks or holds alone are not an image). */
function entryNames(store: Store): string[] {
  const names = new Set<string>();
  for (const dir of PART_DIRS) {
    for (const name of listDir(join(store.imagesDir, dir))) {
      const entry = entryOfPartName(name);
      if (entry) names.add(entry);
    }
  }
  return [...names];
}

/** The ref records, each with the entry its digest names. */
export function readRefs(store: Store): Array<RefRecord & { entry: string; file: string }> {
  const dir = join(store.imagesDir, 'refs');
  const refs: Array<RefRecord & { entry: string; file: string }> = [];
  for (const name of listDir(dir)) {
    if (!name.endsWith('.json')) continue;
    const file = join(dir, name);
    const record = readJson<RefRecord>(file);
    const arch = record && tryArch(record.arch);
    if (!record || !arch || typeof record.digest !== 'string') continue;
    refs.push({ ...record, entry: store.entryName(arch, record.digest), file });
  }
  return refs;
}

/**
 * Everything of the state dir but the images' parts (counted already, in `into`): the dirs
 * themselves, cells' scratch, sessions, records and temporaries, walked.
 */
function restOfStateDir(store: Store, into: DiskUsage): DiskUsage {
  const partDirs = new Set<string>(PART_DIRS);
  ownUsage(store.stateDir, into);
  for (const name of listDir(store.stateDir)) {
    if (name !== 'images') diskUsage(join(store.stateDir, name), into);
  }
  ownUsage(store.imagesDir, into);
  for (const name of listDir(store.imagesDir)) {
    const dir = join(store.imagesDir, name);
    if (!partDirs.has(name)) {
      diskUsage(dir, into);
      continue;
    }
    ownUsage(dir, into);
    for (const child of listDir(dir)) if (!entryOfPartName(child)) diskUsage(join(dir, child), into);
  }
  return into;
}

/** Set the sizes from the usages: `bytes` each image's own, `unique` the inodes no other image has; returns all of them. */
function countBytes(images: StoreImage[]): DiskUsage {
  const owners = inodeOwners(images);
  const all = emptyUsage();
  for (const image of images) {
    const { usage } = image;
    image.bytes = usage.bytes;
    image.unique = usage.bytes;
    for (const [inode, size] of usage.shared) {
      image.bytes += size;
      if (owners.get(inode) === 1) image.unique += size;
    }
    addUsage(all, usage);
  }
  return all;
}

/** How many of the images have each shared inode. */
export function inodeOwners(images: StoreImage[]): Map<string, number> {
  const owners = new Map<string, number>();
  for (const image of images)
    for (const inode of image.usage.shared.keys()) owners.set(inode, (owners.get(inode) ?? 0) + 1);
  return owners;
}

/** An image's usage: its parts', a layout's and a rootfs's from their size records while those hold. */
async function imageUsage(store: Store, entry: string, parts: EntryPart[]): Promise<DiskUsage> {
  const paths = store.partPaths(entry);
  const usage = emptyUsage();
  for (const part of parts) {
    if (part === 'layout' || part === 'rootfs')
      addUsage(usage, await recordedUsage(store, part, entry, paths[part][0]!));
    else for (const path of paths[part]) diskUsage(path, usage);
  }
  return usage;
}

/** A directory's usage from its size record when the record is for it (same inode) and not stale; else walked, and recorded. */
async function recordedUsage(store: Store, part: EntryPart, entry: string, dir: string): Promise<DiskUsage> {
  const record = await store.readSize(part, entry);
  const ino = statSync(dir).ino;
  const usage = record?.ino === ino && !record.stale ? usageFromJson(record) : undefined;
  if (usage) return usage;
  const walked = diskUsage(dir);
  const made = record?.ino === ino ? record.made : undefined;
  // Best effort: a store this user may not write (root's, read by `list`) is walked each time.
  await store
    .writeSize(part, entry, { ino, ...(made !== undefined ? { made } : {}), ...usageToJson(walked) })
    .catch(() => undefined);
  return walked;
}

/** A derived image's base, from its layout's config labels, else its EROFS record's. */
async function baseOf(store: Store, entry: string, parts: EntryPart[]): Promise<{ base?: string }> {
  const fromLayout = parts.includes('layout')
    ? await readImageConfig(store.partPaths(entry).layout[0]!).catch(() => undefined)
    : undefined;
  const arch = entryArch(entry);
  const fromErofs = arch ? (await store.readErofs(arch, parseEntryName(entry)!.digest))?.config : undefined;
  const base = fromLayout?.labels?.[BASE_LABEL] ?? fromErofs?.labels?.[BASE_LABEL];
  return base ? { base } : {};
}

/** When the image was made: its oldest part's mtime (a committed part is renamed into place whole). */
function madeAt(paths: Record<EntryPart, string[]>, parts: EntryPart[]): number {
  const times = parts.flatMap((part) => paths[part].map((p) => mtime(p)).filter((t) => t > 0));
  return times.length ? Math.min(...times) : 0;
}

/** The arch of an entry (its name starts with the arch key). */
export function entryArch(entry: string): ArchInfo | undefined {
  const key = parseEntryName(entry)?.archKey;
  return ARCHES.find((a) => archKey(a) === key);
}

function tryArch(name: string) {
  try {
    return resolveArch(name);
  } catch {
    return undefined;
  }
}

/** A directory's names; none when it is missing. */
export function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function exists(path: string): boolean {
  return mtime(path) > 0;
}

function mtime(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}
