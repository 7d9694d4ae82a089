/**
 * The owner record in each cell's scratch (the engine process and the cleanup policy), and the
 * removal of the scratch dirs of runs that died without cleaning up after themselves.
 */
// Synchronous: one readdir and a tiny read per scratch dir, on the warm path.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CleanupPolicy } from '../cellspec/types.js';
import type { RootlessIds } from '../privilege/userns.js';
import { ownerIsAlive, processStartTime } from '../util/lock.js';
import { removeScratch } from './stage.js';

const CELL_OWNER = '.build-cell-owner';

/** The owner record of a cell run by this process, written into its scratch (see writeScratchRecords). */
export function cellOwnerFile(cleanup: CleanupPolicy): { name: string; content: string } {
  return {
    name: CELL_OWNER,
    content: JSON.stringify({ pid: process.pid, start: processStartTime(process.pid), cleanup }),
  };
}

/**
 * Scratch dirs of runs that were killed (SIGKILL, a crash) before their own cleanup: removed
 * when their policy was `always`, kept otherwise (the owner file names the policy).
 */
export async function removeAbandonedCells(cellsDir: string, ids: RootlessIds | undefined): Promise<void> {
  let names: string[];
  try {
    names = readdirSync(cellsDir);
  } catch {
    return;
  }
  for (const name of names) {
    let owner: { pid: number; start?: string; cleanup: string } | undefined;
    try {
      owner = JSON.parse(readFileSync(join(cellsDir, name, CELL_OWNER), 'utf8')) as typeof owner;
    } catch {
      owner = undefined;
    }
    if (owner && owner.cleanup === 'always' && !ownerIsAlive(owner))
      await removeScratch(join(cellsDir, name), ids).catch(() => undefined);
  }
}
