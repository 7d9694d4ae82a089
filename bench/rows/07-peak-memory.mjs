// Row 7: peak RSS (GNU time %M) of a warm cell against `node -e 0`.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { R } from '../lib/harness.mjs';
import { median, once } from '../lib/util.mjs';

export const rows = [7];

export async function addRows(ctx) {
  const { tmp: TMP, bcRun, measurements } = ctx;
  const rss = (args, n) => {
    const f = join(TMP, 'time.out');
    const kb = [];
    for (let i = 0; i < R(n); i++) {
      once(['/usr/bin/time', '-f', '%M', '-o', f, ...args]);
      kb.push(Number(readFileSync(f, 'utf8').trim().split('\n').pop()));
    }
    return { runs: kb.length, medianKiB: median(kb), maxKiB: Math.max(...kb), kib: kb };
  };
  const bc = rss(bcRun([], ['/bin/true']), 10);
  const nd = rss(['node', '-e', '0'], 10);
  measurements['7.rss.buildcell'] = bc;
  measurements['7.rss.node'] = nd;
  ctx.rows.push({
    id: '7',
    what: 'peak RSS (GNU time `%M`) of the warm cell vs `node -e 0`',
    bc: bc.medianKiB / 1024,
    ref: nd.medianKiB / 1024,
    ratio: bc.medianKiB / nd.medianKiB,
    mib: true,
    runs: `${bc.runs} / ${nd.runs}`,
    notes: `max over runs ${(bc.maxKiB / 1024).toFixed(1)} MiB; %M is the largest of the process and its waited-for children`,
  });
}
