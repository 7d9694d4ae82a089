/**
 * The size cap (`--store-max-size`, input `store-max-size`): after a run, the least recently
 * used images are removed until all of them together fit, never one the run just used nor one
 * in use. It reads each image's recorded size (no walk of a rootfs already counted), so it
 * costs milliseconds when the store fits.
 */
import type { Store } from '../image/store.js';
import type { RootlessIds } from '../privilege/userns.js';
import { now } from '../util/timing.js';
import { pruneStore, type PrunedImage } from './prune.js';

export interface CapReport {
  maxBytes: number;
  /** All images together, before and after. */
  before: number;
  after: number;
  removed: PrunedImage[];
  /** Chosen but kept (in use). */
  kept: Array<{ entry: string; why: string }>;
  ms: number;
}

export async function capStore(store: Store, maxBytes: number, keep: string[], ids?: RootlessIds): Promise<CapReport> {
  const start = now();
  const report = await pruneStore(store, { maxBytes, keep, imagesOnly: true, ids });
  return {
    maxBytes,
    before: report.before,
    after: report.after,
    removed: report.removed,
    kept: report.kept,
    ms: Math.round((now() - start) * 10) / 10,
  };
}

/** One line for the log: what the cap did (the front ends print it; a warning is theirs to say). */
export function describeCap(cap: Partial<CapReport> & { maxBytes: number }): string {
  const mb = (bytes: number) => `${Math.round(bytes / 1e6)} MB`;
  if (cap.after === undefined) return `store cap ${mb(cap.maxBytes)}: not applied`;
  const removed = cap.removed ?? [];
  const names = removed.map(
    (i) =>
      `${i.references[0] ?? (i.installKeys[0] ? `install ${i.installKeys[0].slice(0, 12)}` : i.digest.slice(0, 19))} (${i.arch}, ${mb(i.bytes)})`,
  );
  const kept = cap.kept?.length ? `; ${cap.kept.length} in use kept` : '';
  return `store cap ${mb(cap.maxBytes)}: images ${mb(cap.before ?? 0)} -> ${mb(cap.after)}${removed.length ? `, removed ${names.join(', ')}` : ''}${kept} (${cap.ms} ms)`;
}
