/**
 * --result-file: the engine's result as JSON, with the privilege mode and why it was chosen.
 * Written by `run` and `session exec` alike.
 */
import { writeFile } from 'node:fs/promises';
import type { CellRunResult } from '../engine-types.js';

export async function writeResultFile(
  file: string,
  result: CellRunResult,
  privilege: { mode: string; reason: string },
): Promise<void> {
  const record = { ...result, privilege: { mode: privilege.mode, reason: privilege.reason } };
  await writeFile(file, `${JSON.stringify(record, null, 2)}\n`);
}
