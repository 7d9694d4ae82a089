// Row 5: cache sync-back of a 10,000-file cache, one file changed, vs untouched and vs cp -a.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeTree, trashSh } from '../lib/files.mjs';
import { measureGroup } from '../lib/harness.mjs';
import { q, run } from '../lib/util.mjs';

export const rows = [5];

export async function addRows(ctx) {
  const { tmp: TMP, bcRun, rf, rfArgs } = ctx;
  const cache = join(TMP, 'cache10k');
  makeTree(cache, 10_000);
  run('sync', []);
  const dest = join(TMP, 'cache-copy');
  const [changed, untouched, cp] = measureGroup(
    [
      {
        key: '5.cache.changed',
        runs: 10,
        warmup: 1,
        prepare: 'sync',
        resultDir: rf('cache-changed'),
        args: bcRun(
          [...rfArgs('cache-changed'), '--cache', `${cache}:/cache`],
          ['sh', '-c', 'echo changed > /cache/d0/f0'],
        ),
      },
      {
        key: '5.cache.untouched',
        runs: 10,
        warmup: 1,
        prepare: 'sync',
        resultDir: rf('cache-untouched'),
        args: bcRun([...rfArgs('cache-untouched'), '--cache', `${cache}:/cache`], ['/bin/true']),
      },
      { key: '5.cache.cp', args: ['cp', '-a', cache, dest], runs: 10, warmup: 1, prepare: `${trashSh(dest)}; sync` },
    ],
    { rounds: 2 },
  );
  if (readFileSync(join(cache, 'd0', 'f0'), 'utf8') !== 'changed\n')
    throw new Error('the cache change did not come back');
  const count = run('sh', ['-c', `find ${q(cache)} -type f | wc -l`]).trim();
  const p = (m) => `stage ${m.phases.stage} ms, cache ${m.phases.cache} ms`;
  ctx.rows.push(
    {
      id: '5a',
      what: `cache of ${Number(count).toLocaleString('en')} files, one file changed vs untouched cache`,
      bc: changed.median,
      ref: untouched.median,
      ratio: changed.median / untouched.median,
      runs: `${changed.runs} / ${untouched.runs}`,
      notes: `changed: ${p(changed)}; untouched: ${p(untouched)}`,
    },
    {
      id: '5b',
      what: 'cache, one file changed vs `cp -a` of the cache dir',
      bc: changed.median,
      ref: cp.median,
      ratio: changed.median / cp.median,
      runs: `${changed.runs} / ${cp.runs}`,
    },
  );
}
