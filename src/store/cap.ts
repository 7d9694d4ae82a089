/**
 * The size cap (`--store-max-size`, input `store-max-size`): after a run, the least recently
 * used images are removed until all of them together fit, never one the run just used nor one
 * in use. It reads each image's recorded size (no walk of a rootfs already counted), so it
 * costs milliseconds when the store fits.
 */
import type { Store } from '../image/store.js';
import type { RootlessIds } from '../privilege/userns.js';
import { now } from '../util/timing.js';
import { pruneStore } from './prune.js';
import type { CapReport } from './cap-report.js';

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
