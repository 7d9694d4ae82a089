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

export interface CellOwner {
  pid: number;
  start?: string;
  cleanup: string;
}

/** The owner record of a cell's scratch dir, if it has one. */
export function readCellOwner(scratch: string): CellOwner | undefined {
  try {
    return JSON.parse(readFileSync(join(scratch, CELL_OWNER), 'utf8')) as CellOwner;
  } catch {
    return undefined;
  }
}

/** The cells' scratch dirs, each with its owner record (undefined: none yet, or never written). */
export function cellScratches(cellsDir: string): Array<{ dir: string; owner?: CellOwner }> {
  let names: string[];
  try {
    names = readdirSync(cellsDir);
  } catch {
    return [];
  }
  return names.map((name) => ({ dir: join(cellsDir, name), owner: readCellOwner(join(cellsDir, name)) }));
}

/**
 * Scratch dirs of runs that were killed (SIGKILL, a crash) before their own cleanup: removed
 * when their policy was `always`, kept otherwise (the owner file names the policy).
 */
export async function removeAbandonedCells(cellsDir: string, ids: RootlessIds | undefined): Promise<void> {
  for (const { dir, owner } of cellScratches(cellsDir)) {
    if (owner && owner.cleanup === 'always' && !ownerIsAlive(owner))
      await removeScratch(dir, ids).catch(() => undefined);
  }
}
