/**
 * An image as an EROFS entry (what the Actions cache carries to a fresh runner): mounted where
 * the host can (root, and a kernel that mounts EROFS: see ./mount-probe.ts), else extracted
 * once into the store's rootfs directory by build-cell's own reader (rootless mode, a kernel
 * without EROFS). Either way nothing is unpacked from layers. Which path ran, and why, is said
 * in `how`. A cache entry that does not match its record is refused with a warning (the caller
 * then pulls, as on a miss): a cache failure never fails a build.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ArchInfo } from '../../emulation/arch.js';
import { errorMessage } from '../../util/errors.js';
import { writeRootSentinel, type ErofsRecord, type Store } from '../store.js';
import { takeErofsEntry, ensureMountPoint, ErofsEntryError } from './entry.js';
import { extractErofs } from './extract.js';
import { probeErofsMount } from './mount-probe.js';

/** How the image is to be used: as the caller's privilege allows, and as a directory when it asks for one. */
export interface ErofsUse {
  rootless: boolean;
  needRootfs: boolean;
}

/** Mount or extract, and why. Pure but for the probe (cached). BUILD_CELL_EROFS=extract forces extraction (tests). */
export function erofsPath(use: ErofsUse): { mount?: string; why: string } {
  if (use.rootless) return { why: 'rootless mode cannot mount an image: extracted' };
  if (use.needRootfs) return { why: 'a directory was asked for (build-cell prepare prints it): extracted' };
  if (process.env.BUILD_CELL_EROFS === 'extract') return { why: 'BUILD_CELL_EROFS=extract: extracted' };
  const probe = probeErofsMount();
  if (!probe.ok) return { why: `${probe.why}: extracted` };
  return { mount: 'ro', why: `mounted (${probe.why})` };
}

export interface ErofsImage {
  rootfs: string;
  mount?: { file: string; options: string };
  config: ErofsRecord['config'];
  /** How the image is used, and why: for the log, the summary and the result. */
  how: string;
  fromCache: boolean;
}

/**
 * The image of `digest` from an EROFS entry of the store, or of the cache dir (checked, then
 * copied into the store); none when neither has a usable one. `warnings`: a refused cache
 * entry, for the front end to say.
 */
export async function fromErofs(
  store: Store,
  cache: Store | undefined,
  arch: ArchInfo,
  digest: string,
  use: ErofsUse,
): Promise<{ image?: ErofsImage; warnings: string[] }> {
  const warnings: string[] = [];
  let record = await store.readErofs(arch, digest);
  let fromCache = false;
  if (!record && cache && (await cache.readErofs(arch, digest))) {
    try {
      record = await takeErofsEntry(cache, store, arch, digest);
      fromCache = true;
    } catch (error) {
      if (!(error instanceof ErofsEntryError)) throw error;
      warnings.push(`the Actions cache's image entry was refused, the image is pulled instead: ${errorMessage(error)}`);
    }
  }
  if (!record) return { warnings };
  const { config } = record;
  const rootfs = store.rootfsDir(arch, digest);
  // Extracted once (rootless, or for `prepare`): later cells use the directory, which is
  // faster than a mount per cell (bench row 1e).
  if (store.hasRootfs(arch, digest))
    return { image: { rootfs, config, how: 'EROFS image extracted earlier', fromCache }, warnings };
  const path = erofsPath(use);
  const file = store.erofsFile(arch, digest);
  if (path.mount) {
    const mountPoint = await ensureMountPoint(store, arch, digest);
    const how = `EROFS image ${path.why}`;
    return { image: { rootfs: mountPoint, mount: { file, options: path.mount }, config, how, fromCache }, warnings };
  }
  await extractInto(store, file, { arch, digest }, use.rootless);
  return { image: { rootfs, config, how: `EROFS image ${path.why}`, fromCache }, warnings };
}

/** Extract the image into the store's rootfs dir (through a temporary name), with its sentinel. */
async function extractInto(
  store: Store,
  file: string,
  image: { arch: ArchInfo; digest: string },
  rootless: boolean,
): Promise<void> {
  const temp = await store.tempDir('rootfs');
  try {
    const target = join(temp, 'rootfs');
    await extractErofs(file, target, { owners: !rootless, userXattrsOnly: rootless });
    await writeRootSentinel(target, store.stateDir);
    await store.commitRootfs(target, image.arch, image.digest);
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
}
