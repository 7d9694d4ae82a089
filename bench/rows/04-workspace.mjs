// Row 4: staging cost against workspace size (1k, 10k, 100k small files, one 500 MB file) vs cp -a.
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { makeBigFile, makeTree, trash, trashSh } from '../lib/files.mjs';
import { measureGroup } from '../lib/harness.mjs';
import { fmtMs, log, round, run } from '../lib/util.mjs';

export const rows = [4];

export async function addRows(ctx) {
  const { tmp: TMP, bcRun, rf, rfArgs } = ctx;
  const sizes = [
    ['1k', 1_000, 10, 10, 1],
    ['10k', 10_000, 10, 10, 1],
    ['100k', 100_000, 5, 3, 0],
    ['500MB', 0, 5, 3, 0],
  ];
  const per = {};
  for (const [label, count, n, nCp, wCp] of sizes) {
    const ws = join(TMP, 'ws', label);
    const t = performance.now();
    if (count) makeTree(ws, count);
    else makeBigFile(ws, 500 * 1024 * 1024);
    run('sync', []);
    log(`workspace ${label}: made in ${fmtMs(performance.now() - t)}`);
    const out = join(TMP, 'ws-out', label);
    mkdirSync(out, { recursive: true });
    const dest = join(TMP, 'ws-copy', label);
    mkdirSync(dirname(dest), { recursive: true });
    const [bc, cp, bare] = measureGroup(
      [
        {
          key: `4.${label}.buildcell`,
          runs: n,
          warmup: 1,
          prepare: 'sync',
          resultDir: rf(`ws-${label}`),
          args: bcRun(
            [...rfArgs(`ws-${label}`), '--workspace', ws, '--export', `/workspace/marker:${join(out, 'marker')}`],
            ['sh', '-c', 'echo x > marker'],
          ),
        },
        {
          key: `4.${label}.cp`,
          args: ['cp', '-a', ws, dest],
          runs: nCp,
          warmup: wCp,
          prepare: `${trashSh(dest)}; sync`,
        },
        // The same cell without --workspace and --export, interleaved: what staging + export add.
        {
          key: `4.${label}.bare`,
          args: bcRun(rfArgs(`ws-${label}-bare`), ['sh', '-c', 'echo x > marker']),
          runs: n,
          warmup: 1,
          prepare: 'sync',
          resultDir: rf(`ws-${label}-bare`),
        },
      ],
      { rounds: 2 },
    );
    if (readFileSync(join(out, 'marker'), 'utf8') !== 'x\n') throw new Error(`export of ${label} is wrong`);
    trash(dest);
    per[label] = { bc, cp, count };
    const ph = bc.phases;
    // What the workspace and the export cost: their phases, less the same phases of the same
    // cell without them (a whole-run difference is mostly noise at these sizes).
    const own = (m) => ['stage', 'export', 'cleanup'].reduce((a, k) => a + (m.phases[k] ?? 0), 0);
    const cost = round(own(bc) - own(bare), 1);
    per[label].cost = cost;
    ctx.rows.push({
      id: `4${'abcd'[sizes.findIndex((s) => s[0] === label)]}`,
      what: `workspace ${label === '500MB' ? 'one 500 MB file' : `${count.toLocaleString('en')} files × 100 B`}: staging + export (their phases, less the bare cell's) vs \`cp -a\``,
      bc: Math.max(cost, 0.1),
      ref: cp.median,
      ratio: Math.max(cost, 0.1) / cp.median,
      runs: `${bc.runs} / ${cp.runs}`,
      notes: `whole run ${fmtMs(bc.median)} (phases stage ${ph.stage}, export ${ph.export}, cleanup ${ph.cleanup} ms); the same cell without workspace and export ${fmtMs(bare.median)}`,
    });
    if (label !== '1k' && label !== '10k') trash(ws);
  }
  const slope = (k) => (per['100k'][k].median - per['1k'][k].median) / 99;
  ctx.rows.push({
    id: '4e',
    what: 'growth of the whole run, 1k → 100k files, per 1,000 more files',
    bc: slope('bc'),
    ref: slope('cp'),
    ratio: slope('bc') > 0.5 ? slope('bc') / slope('cp') : null,
    runs: '',
    notes: `staging + export: ${per['1k'].cost} ms at 1k files, ${per['100k'].cost} ms at 100k (whole-run differences are noise)`,
  });
}
