/**
 * What the store hands to the Actions cache dir (a second store the action saves), when that
 * lacks the image: from a rootfs it unpacked, one EROFS image where mkfs.erofs is there (a fresh
 * runner mounts it), else its layout; from an EROFS entry it holds (pulled from a registry, say),
 * that entry. The cache dir is given to the runner user behind sudo. A failure never fails a
 * build: it comes back as the warning's text.
 */
import { copyFile, link, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ArchInfo } from '../emulation/arch.js';
import { errorMessage } from '../util/errors.js';
import { exec } from '../util/exec.js';
import { settleCopiedTree, type Owner } from '../util/fs.js';
import { which } from '../util/which.js';
import { writeErofsEntry } from './erofs/entry.js';
import type { ImageConfig, RefRecord, Store } from './store.js';

export interface Handoff {
  arch: ArchInfo;
  record: RefRecord;
  /** A rootless rootfs belongs to the invoking user: no EROFS image is made from it. */
  rootless: boolean;
  /** Owner of what is written to the cache dir (the runner user behind sudo). */
  owner?: Owner;
  /** From the unpacked rootfs (its config), or from the store's EROFS entry. */
  from: { rootfs: ImageConfig } | 'erofs';
}

/** Hand the image over unless the cache dir has it; undefined, or what went wrong. */
export async function handToCache(store: Store, cache: Store, handoff: Handoff): Promise<string | undefined> {
  const { arch, record } = handoff;
  try {
    if ((await cache.readLayout(arch, record.digest)) || (await cache.readErofs(arch, record.digest))) return undefined;
    if (handoff.from === 'erofs') await linkErofs(store, cache, handoff);
    else await fromRootfs(store, cache, handoff, handoff.from.rootfs);
    await cache.writeRef(record, arch);
    await rm(cache.tmpDir, { recursive: true, force: true });
    if (handoff.owner) await settleCopiedTree(cache.stateDir, handoff.owner);
    return undefined;
  } catch (error) {
    return `the image was not handed to the Actions cache: ${errorMessage(error)}`;
  }
}

async function fromRootfs(store: Store, cache: Store, handoff: Handoff, config: ImageConfig): Promise<void> {
  const { arch } = handoff;
  const { digest } = handoff.record;
  // A rootless rootfs is owned by the invoking user (umoci --rootless): only its layout says who
  // owns what, and an image made from it would give a root job's cells the wrong owners.
  const mkfs = handoff.rootless ? undefined : which('mkfs.erofs');
  if (mkfs) await writeErofsEntry(cache, mkfs, store.rootfsDir(arch, digest), arch, digest, config);
  else await copyEntry(cache, store.layoutDir(arch, digest), cache.layoutDir(arch, digest));
}

/** The store's EROFS entry, linked; copied where the cache dir goes to the runner user (the store's file, which root mounts, keeps its owner). */
async function linkErofs(store: Store, cache: Store, handoff: Handoff): Promise<void> {
  const { arch } = handoff;
  const { digest } = handoff.record;
  const entry = await store.readErofs(arch, digest);
  if (!entry) throw new Error(`the store has no EROFS entry of ${digest}`);
  const source = store.erofsFile(arch, digest);
  const file = cache.erofsFile(arch, digest);
  await mkdir(join(file, '..'), { recursive: true });
  if (handoff.owner) await copyFile(source, file);
  else await link(source, file).catch(() => copyFile(source, file));
  await cache.writeErofsRecord(arch, entry);
}

/** Copy a layout directory into `into`'s store through a temporary name (atomic commit). */
export async function copyEntry(into: Store, source: string, destination: string): Promise<void> {
  const temp = await into.tempDir('layout');
  try {
    await exec('cp', ['-a', '--reflink=auto', '--', `${source}/.`, temp], `cannot copy the image layout ${source}`);
    await into.commit(temp, destination);
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
}
