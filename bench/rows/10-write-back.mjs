// Row 10: write-back of one changed file in a 100,000-file workspace vs cp -a of the workspace.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeTree, trash, trashSh } from '../lib/files.mjs';
import { measureGroup } from '../lib/harness.mjs';
import { fmtMs, run } from '../lib/util.mjs';

export const rows = [10];

export async function addRows(ctx) {
  const { tmp: TMP, bcRun, rf, rfArgs } = ctx;
  const ws = join(TMP, 'wb-ws');
  makeTree(ws, 100_000);
  run('sync', []);
  const dest = join(TMP, 'wb-copy');
  const [wb, plain, cp] = measureGroup(
    [
      {
        key: '10.writeback',
        args: bcRun([...rfArgs('wb'), '--workspace', ws, '--write-back'], ['sh', '-c', 'echo changed > d7/f7']),
        runs: 10,
        warmup: 1,
        prepare: 'sync',
        resultDir: rf('wb'),
      },
      {
        key: '10.plain',
        args: bcRun([...rfArgs('wb-plain'), '--workspace', ws], ['sh', '-c', 'echo changed > d7/f7']),
        runs: 10,
        warmup: 1,
        prepare: 'sync',
        resultDir: rf('wb-plain'),
      },
      { key: '10.cp', args: ['cp', '-a', ws, dest], runs: 3, warmup: 0, prepare: `${trashSh(dest)}; sync` },
    ],
    { rounds: 2 },
  );
  if (readFileSync(join(ws, 'd7', 'f7'), 'utf8') !== 'changed\n')
    throw new Error('write-back did not write the change back');
  const cost = wb.phases['write-back'];
  ctx.rows.push({
    id: '10a',
    what: 'write-back of one changed file in a 100,000-file workspace (its phase) vs `cp -a` of the workspace',
    bc: Math.max(cost, 0.1),
    ref: cp.median,
    ratio: Math.max(cost, 0.1) / cp.median,
    runs: `${wb.runs} / ${cp.runs}`,
    notes: `target ≤ 0.01×: ${cost / cp.median <= 0.01 ? 'met' : 'missed'}; whole run ${fmtMs(wb.median)}, the same cell without write-back ${fmtMs(plain.median)}; staging ${wb.phases.stage} ms`,
  });
  trash(ws);
  trash(dest);
}
