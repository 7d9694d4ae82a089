/**
 * `build-cell store prune` and the size cap: images removed least recently used first until
 * the conditions hold, never one a running cell or a live session holds; with them, the
 * scratch dirs of dead cells, stale temporaries and locks, and records of images long gone.
 *
 *   --older-than D  every image not used for D
 *   --max-size S    then, least recently used first, until all images together fit in S
 *   --all           every image not in use
 *   (none)          the images no reference names any more (a tag that moved on)
 */
import { existsSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { removeScratch } from '../cell/stage.js';
import { cellScratches } from '../cell/cell-owner.js';
import { ENTRY_PARTS, parseEntryName, type Store } from '../image/store.js';
import { liveHolders } from '../image/usage.js';
import type { RootlessIds } from '../privilege/userns.js';
import { diskUsage, usageBytes } from '../util/disk-usage.js';
import { lockIsStale, ownerIsAlive } from '../util/lock.js';
import { inodeOwners, listDir, readInventory, readRefs, type StoreImage, type StoreInventory } from './inventory.js';
import { describeHolder, removeImage } from './remove.js';

export interface PruneOptions {
  olderThanMs?: number;
  maxBytes?: number;
  all?: boolean;
  dryRun?: boolean;
  /** Entries never removed (the cap: the images the run just used). */
  keep?: string[];
  /** Images only: no cells, temporaries or records (the cap after each run). */
  imagesOnly?: boolean;
  ids?: RootlessIds;
  now?: number;
}

export interface PrunedImage {
  entry: string;
  arch: string;
  digest: string;
  references: string[];
  installKeys: string[];
  lastUsed: string;
  /** What removing it freed (or, with --dry-run, would free). */
  bytes: number;
}

export interface PruneReport {
  dryRun: boolean;
  /** The images removed (with --dry-run: that would be). */
  removed: PrunedImage[];
  /** Chosen but kept: in use, or being prepared. */
  kept: Array<{ entry: string; why: string }>;
  cells: Array<{ dir: string; bytes: number }>;
  temporaries: Array<{ path: string; bytes: number }>;
  /** Bytes freed (with --dry-run: that would be). */
  freed: number;
  /** All images together, before and after. */
  before: number;
  after: number;
}

/** Which images to remove, in order (least recently used first). Pure. */
export function choosePrune(inventory: StoreInventory, options: PruneOptions): StoreImage[] {
  const now = options.now ?? Date.now();
  const candidates = inventory.images.filter((i) => !i.holders.length && !options.keep?.includes(i.entry));
  if (options.all) return candidates;
  const conditions = options.olderThanMs !== undefined || options.maxBytes !== undefined;
  const chosen = new Set<StoreImage>();
  if (!conditions)
    for (const image of candidates) if (!image.references.length && !image.installKeys.length) chosen.add(image);
  if (options.olderThanMs !== undefined)
    for (const image of candidates) if (image.lastUsed < now - options.olderThanMs) chosen.add(image);
  if (options.maxBytes !== undefined) {
    const shrink = freeing(inventory);
    for (const image of chosen) shrink.remove(image);
    for (const image of candidates) {
      if (shrink.total() <= options.maxBytes) break;
      if (chosen.has(image)) continue;
      chosen.add(image);
      shrink.remove(image);
    }
  }
  return candidates.filter((i) => chosen.has(i));
}

/** The images' total as images are taken away: a shared inode goes with the last image that has it. */
export function freeing(inventory: StoreInventory) {
  const owners = inodeOwners(inventory.images);
  let total = inventory.bytes;
  return {
    total: () => total,
    /** Take `image` away; returns what that frees. */
    remove(image: StoreImage): number {
      let freed = image.usage.bytes;
      for (const [inode, bytes] of image.usage.shared) {
        const left = (owners.get(inode) ?? 1) - 1;
        owners.set(inode, left);
        if (left === 0) freed += bytes;
      }
      total -= freed;
      return freed;
    },
  };
}

export async function pruneStore(store: Store, options: PruneOptions): Promise<PruneReport> {
  const inventory = await readInventory(store);
  const shrink = freeing(inventory);
  const report: PruneReport = {
    dryRun: !!options.dryRun,
    removed: [],
    kept: [],
    cells: [],
    temporaries: [],
    freed: 0,
    before: inventory.bytes,
    after: inventory.bytes,
  };
  const chosen = choosePrune(inventory, options);
  // What the conditions name but a cell or session holds: said, and kept.
  const unheld = { ...inventory, images: inventory.images.map((i) => ({ ...i, holders: [] })) };
  for (const image of choosePrune(unheld, options)) {
    const held = inventory.images.find((i) => i.entry === image.entry && i.holders.length);
    if (held) report.kept.push({ entry: held.entry, why: `in use by ${held.holders.map(describeHolder).join(', ')}` });
  }
  await removeEach(store, chosen, { report, shrink, options });
  // An image chosen for the size but locked meanwhile: the next least recently used ones instead.
  const { maxBytes } = options;
  if (maxBytes !== undefined && shrink.total() > maxBytes) {
    const tried = new Set(chosen);
    const more = choosePrune(inventory, { ...options, all: true }).filter((i) => !tried.has(i));
    await removeEach(store, more, { report, shrink, options, until: maxBytes });
  }
  if (!options.imagesOnly) {
    report.cells = await deadCells(store, options);
    report.temporaries = await staleTemporaries(store, options);
    if (!options.dryRun) removeOrphanRecords(store, options.now ?? Date.now());
  }
  report.after = shrink.total();
  report.freed =
    report.removed.reduce((sum, i) => sum + i.bytes, 0) +
    [...report.cells, ...report.temporaries].reduce((sum, c) => sum + c.bytes, 0);
  return report;
}

/** Remove images in order (until the total fits in `until`, when given), each said in the report. */
async function removeEach(
  store: Store,
  images: StoreImage[],
  context: { report: PruneReport; shrink: ReturnType<typeof freeing>; options: PruneOptions; until?: number },
): Promise<void> {
  const { report, shrink, options, until } = context;
  for (const image of images) {
    if (until !== undefined && shrink.total() <= until) return;
    const outcome = options.dryRun ? { removed: true as const } : await removeImage(store, image.entry, options.ids);
    if (!outcome.removed) {
      report.kept.push({ entry: image.entry, why: outcome.why });
      continue;
    }
    report.removed.push(prunedImage(image, shrink.remove(image)));
  }
}

function prunedImage(image: StoreImage, bytes: number): PrunedImage {
  const { entry, arch, digest, references, installKeys } = image;
  return { entry, arch, digest, references, installKeys, lastUsed: new Date(image.lastUsed).toISOString(), bytes };
}

/**
 * The scratch dirs of cells whose engine process is gone (killed, or kept by the cleanup
 * policy when it ended); one without an owner record only when it is a day old (its engine may
 * be between making it and writing the record).
 */
async function deadCells(store: Store, options: PruneOptions): Promise<PruneReport['cells']> {
  const now = options.now ?? Date.now();
  const dead: PruneReport['cells'] = [];
  for (const { dir, owner } of cellScratches(store.cellsDir)) {
    if (owner ? ownerIsAlive(owner) : now - mtimeOf(dir) < 86_400_000) continue;
    const bytes = usageBytes(diskUsage(dir));
    if (!options.dryRun) await removeScratch(dir, options.ids);
    dead.push({ dir, bytes });
  }
  return dead;
}

/** Temporaries of runs that died: STATE/tmp entries, half-written records, and stale locks. */
async function staleTemporaries(store: Store, options: PruneOptions): Promise<PruneReport['temporaries']> {
  const locks = listDir(store.locksDir).map((name) => join(store.locksDir, name));
  const staleLocks: string[] = [];
  for (const lock of locks) if (await lockIsStale(lock)) staleLocks.push(lock);
  const paths = [...(await store.staleTemps()), ...(await store.staleRecordTemps()), ...staleLocks];
  return paths.map((path) => {
    const bytes = usageBytes(diskUsage(path));
    if (!options.dryRun) rmSync(path, { recursive: true, force: true });
    return { path, bytes };
  });
}

/**
 * Refs, marks, holds and size records of images no longer in the store; an hour old at least,
 * so that a run which is making its image now keeps its records.
 */
function removeOrphanRecords(store: Store, now: number): void {
  const gone = (entry: string, file: string) =>
    !ENTRY_PARTS.some((part) => store.partPaths(entry)[part].some(existsSync)) && now - mtimeOf(file) > 3_600_000;
  for (const ref of readRefs(store)) if (gone(ref.entry, ref.file)) rmSync(ref.file, { force: true });
  for (const entry of listDir(join(store.imagesDir, 'used')))
    if (gone(entry, store.usedFile(entry))) rmSync(store.usedFile(entry), { force: true });
  for (const entry of listDir(join(store.imagesDir, 'holds'))) liveHolders(store, entry);
  for (const name of listDir(join(store.imagesDir, 'sizes'))) {
    const entry = /^(?:layout|rootfs|erofs|mount)-(.+)\.json$/.exec(name)?.[1];
    const file = join(store.imagesDir, 'sizes', name);
    if (entry && parseEntryName(entry) && gone(entry, file)) rmSync(file, { force: true });
  }
}

function mtimeOf(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}
