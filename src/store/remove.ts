/**
 * Removing one image from the store, safely beside running cells, sessions and prepares (see
 * image/usage.ts): under the image's lock (never waited for: an image being prepared is in use),
 * its holds are read; with none alive, its parts are renamed aside in one step each, its refs,
 * mark and size records go, and only then, with the lock released, the parts are deleted. A run
 * that comes meanwhile waits for the lock, finds the image gone and prepares it again: it never
 * sees a half-removed rootfs.
 */
import { mkdir, rename, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { removeScratch } from '../cell/stage.js';
import { forgetUse, liveHolders, type Holder } from '../image/usage.js';
import { ENTRY_PARTS, type Store } from '../image/store.js';
import type { RootlessIds } from '../privilege/userns.js';
import { tryLock } from '../util/lock.js';
import { readRefs } from './inventory.js';

export type RemoveOutcome = { removed: true } | { removed: false; why: string };

export async function removeImage(store: Store, entry: string, ids?: RootlessIds): Promise<RemoveOutcome> {
  const release = await tryLock(store.lockDir(`image-${entry}`));
  if (!release) return { removed: false, why: 'locked: being prepared or removed by another run now' };
  let aside: string;
  try {
    const holders = liveHolders(store, entry);
    if (holders.length) return { removed: false, why: `in use by ${holders.map(describeHolder).join(', ')}` };
    aside = await store.tempDir('prune');
    await moveAside(store, entry, aside);
    for (const ref of readRefs(store)) if (ref.entry === entry) await rm(ref.file, { force: true });
    for (const part of ENTRY_PARTS) await rm(store.sizeFile(part, entry), { force: true });
    forgetUse(store, entry);
  } finally {
    await release();
  }
  await removeScratch(aside, ids);
  return { removed: true };
}

/** Each part renamed into `aside` (the same filesystem: one rename, never a partial state). */
async function moveAside(store: Store, entry: string, aside: string): Promise<void> {
  const paths = store.partPaths(entry);
  for (const part of ENTRY_PARTS) {
    for (const path of paths[part]) {
      const into = join(aside, part);
      await mkdir(into, { recursive: true });
      await rename(path, join(into, basename(path))).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error;
      });
    }
  }
}

export function describeHolder(holder: Holder): string {
  return holder.kind === 'cell'
    ? `a running cell (pid ${holder.pid})`
    : `the session whose root layer is ${holder.dir}`;
}
