/**
 * The caches written back: each cache's changes applied to its host directory after the cell
 * (also after a failed command), through the one applier of overlay uppers (./apply-upper.ts)
 * that the workspace's write-back (./workspace.ts) uses too.
 */
import { dirname, join } from 'node:path';
import { replaceWithCopy } from '../cell/finalize.js';
import type { BuildCellSpec } from '../cellspec/types.js';
import type { CellPlan } from '../cell/plan.js';
import { mkdirOwned, settleCopiedTree, type Owner } from '../util/fs.js';
import { applyUpper } from './apply-upper.js';

/**
 * Sync each cache back to its host directory (also after a failed command). An overlay cache
 * costs what the cell changed, not the cache's size: only its upper layer is walked, and
 * `cellRoot` (the live cell's view) tells which names a changed directory still has.
 */
export async function syncCaches(spec: BuildCellSpec, plan: CellPlan, cellRoot: string, owner?: Owner): Promise<void> {
  for (const [i, c] of spec.caches.entries()) {
    if (plan.staging.caches[i] === 'overlay') {
      await syncChanges(plan.layout.cacheUpper(i), join(cellRoot, c.destination), c.source, owner);
      continue;
    }
    await mkdirOwned(dirname(c.source), owner);
    await replaceWithCopy(plan.layout.cachePath(i), c.source, `sync cache ${c.destination} back to ${c.source}`);
    await settleCopiedTree(c.source, owner);
  }
}

/**
 * Apply an overlay cache's upper layer to the host directory it was layered on (see
 * applyUpper: whiteouts and names the cell no longer sees are deleted, files, symlinks and
 * directories applied, never through a host symlink; fifos, sockets and devices are skipped).
 */
export async function syncChanges(upper: string, view: string, host: string, owner?: Owner): Promise<void> {
  await applyUpper(upper, view, host, { owner, what: 'sync the cache back to' });
}
