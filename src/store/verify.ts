/**
 * `build-cell store verify`: every image of the store checked, and what is broken removed
 * (unless a cell or session holds it), so that the next run prepares it afresh.
 *
 *   layout  its record, an index naming a manifest, the manifest's config and layers present,
 *           every blob's sha256 its name
 *   rootfs  its completeness marker (the sentinel, written before it was renamed into place),
 *           and as many entries as it had when it was made (a half-removed one has lost some)
 *   erofs   its record, its size and every chunk's sha256
 *   mount   its sentinel
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT_SENTINEL, LAYOUT_RECORD, type EntryPart, type Store } from '../image/store.js';
import { blobPath } from '../image/layout.js';
import { erofsEntryProblem } from '../image/erofs/entry.js';
import type { RootlessIds } from '../privilege/userns.js';
import { diskUsage } from '../util/disk-usage.js';
import { sha256File } from '../util/fs.js';
import { entryArch, listDir, readInventory, type StoreImage } from './inventory.js';
import { removeImage } from './remove.js';

export interface BrokenImage {
  entry: string;
  arch: string;
  digest: string;
  references: string[];
  installKeys: string[];
  problems: string[];
  removed: boolean;
  /** Why a broken image was left (in use). */
  kept?: string;
}

export interface VerifyReport {
  checked: number;
  broken: BrokenImage[];
}

export async function verifyStore(store: Store, options: { ids?: RootlessIds } = {}): Promise<VerifyReport> {
  const { images } = await readInventory(store, { sizes: false });
  const report: VerifyReport = { checked: images.length, broken: [] };
  for (const image of images) {
    const problems = await imageProblems(store, image);
    if (!problems.length) continue;
    const outcome = await removeImage(store, image.entry, options.ids);
    const { entry, arch, digest, references, installKeys } = image;
    report.broken.push({
      entry,
      arch,
      digest,
      references,
      installKeys,
      problems,
      removed: outcome.removed,
      ...(outcome.removed ? {} : { kept: outcome.why }),
    });
  }
  return report;
}

async function imageProblems(store: Store, image: StoreImage): Promise<string[]> {
  const paths = store.partPaths(image.entry);
  const checks: Record<EntryPart, () => Promise<string[]>> = {
    layout: () => layoutProblems(paths.layout[0]!),
    rootfs: () => rootfsProblems(store, image.entry, paths.rootfs[0]!),
    erofs: async () => {
      const problem = await erofsEntryProblem(store, entryArch(image.entry)!, image.digest);
      return problem ? [problem] : [];
    },
    mount: async () => (existsSync(join(paths.mount[0]!, ROOT_SENTINEL)) ? [] : [`${paths.mount[0]} has no sentinel`]),
  };
  const problems: string[] = [];
  for (const part of image.parts) problems.push(...(await checks[part]()));
  return problems;
}

/** A layout's record, index, manifest and blobs. */
export async function layoutProblems(layout: string): Promise<string[]> {
  if (!existsSync(join(layout, LAYOUT_RECORD)))
    return [`the layout ${layout} has no ${LAYOUT_RECORD} (it was never completed)`];
  const problems: string[] = [];
  try {
    const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as {
      manifests: Array<{ digest: string }>;
    };
    const manifest = JSON.parse(readFileSync(blobPath(layout, index.manifests[0]!.digest), 'utf8')) as {
      config: { digest: string };
      layers: Array<{ digest: string }>;
    };
    for (const { digest } of [manifest.config, ...manifest.layers])
      if (!existsSync(blobPath(layout, digest))) problems.push(`the layout ${layout} lacks the blob ${digest}`);
  } catch (error) {
    problems.push(`the layout ${layout} has no readable index and manifest (${(error as Error).message})`);
  }
  const blobs = join(layout, 'blobs', 'sha256');
  for (const name of listDir(blobs)) {
    const actual = await sha256File(join(blobs, name)).catch(() => 'unreadable');
    if (actual !== name) problems.push(`the blob sha256:${name} of ${layout} has sha256 ${actual}`);
  }
  return problems;
}

/** A rootfs's sentinel, and its entry count against the one recorded when it was made. */
async function rootfsProblems(store: Store, entry: string, rootfs: string): Promise<string[]> {
  if (!existsSync(join(rootfs, ROOT_SENTINEL)))
    return [`the rootfs ${rootfs} has no ${ROOT_SENTINEL} (it is incomplete, or half removed)`];
  const made = (await store.readSize('rootfs', entry))?.made;
  if (made === undefined) return [];
  const entries = diskUsage(rootfs).entries;
  return entries === made ? [] : [`the rootfs ${rootfs} has ${entries} entries, it had ${made} when it was made`];
}
