// Rows 14: the store's size cap (--store-max-size) on a self-hosted runner's persistent store.
//   14a: a soak: 40 runs over 10 distinct images (busybox amd64 under 10 configs: 10 digests,
//        each pulled and unpacked on its own) in a fixed shuffled order, with a cap of three
//        images' size. After every run the store must be within the cap plus one image, and no
//        run may fail. Reported: the cap's own cost per run (the result file's store.ms) against
//        the run's wall time.
//   14b: a warm run whose store fits the cap vs the same run without a cap.
import { execFileSync } from 'node:child_process';
import { readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { measureGroup, R } from '../lib/harness.mjs';
import { log, median, once, round } from '../lib/util.mjs';

export const rows = [14];

const IMAGES = 10;
const RUNS = 40;

export async function addRows(ctx) {
  const { tmp: TMP, busybox, bcRun } = ctx;
  const layout = join(TMP, 'soak-layout');
  for (let i = 0; i < IMAGES; i++) {
    once(['skopeo', 'copy', '--quiet', `oci:${busybox.layout}:amd64`, `oci:${layout}:v${i}`]);
    // Another config: another manifest digest, so another image in the store.
    once(['umoci', 'config', '--image', `${layout}:v${i}`, '--config.env', `SOAK=${i}`]);
  }
  const soak = soakRuns(ctx, layout, join(TMP, 'soak-state'));
  const [capped, plain] = measureGroup(
    [
      { key: '14.warm.capped', args: bcRun(['--store-max-size', '100G'], ['/bin/true']), runs: R(30), warmup: 3 },
      { key: '14.warm.plain', args: bcRun([], ['/bin/true']), runs: R(30), warmup: 3 },
    ],
    { rounds: 3 },
  );
  ctx.rows.push(
    {
      id: '14a',
      what: `the size cap's own cost per run in a soak of ${RUNS} runs over ${IMAGES} images (cap: three images' size) vs the run`,
      bc: soak.capMs,
      ref: soak.runMs,
      ratio: soak.capMs / soak.runMs,
      runs: `${RUNS}`,
      notes: `store at most ${mb(soak.maxBytes)} against cap ${mb(soak.cap)} + one image ${mb(soak.image)}: ${soak.maxBytes <= soak.cap + soak.image ? 'held' : 'EXCEEDED'}; ${soak.removed} images removed; ${soak.failed} runs failed`,
    },
    {
      id: '14b',
      what: 'a warm `build-cell run -- /bin/true` with `--store-max-size 100G` (the store fits) vs without',
      bc: capped.median,
      ref: plain.median,
      ratio: capped.median / plain.median,
      runs: `${capped.runs} / ${plain.runs}`,
    },
  );
  if (soak.failed || soak.maxBytes > soak.cap + soak.image) throw new Error(`the soak failed: ${JSON.stringify(soak)}`);
}

/** The soak: every run through the CLI with its result file, the store's size read after each. */
function soakRuns(ctx, layout, stateDir) {
  const { BC, tmp: TMP } = ctx;
  const result = join(TMP, 'soak-result.json');
  mkdirSync(stateDir, { recursive: true });
  const list = () => JSON.parse(once([...BC, 'store', 'list', '--json', '--state-dir', stateDir]));
  const run = (i, cap) => {
    const args = [...BC, 'run', '--image', `oci:${layout}:v${i}`, '--state-dir', stateDir, '--result-file', result];
    const start = performance.now();
    once([...args, ...(cap ? ['--store-max-size', String(cap)] : []), '--', '/bin/true']);
    return { ms: performance.now() - start, result: JSON.parse(readFileSync(result, 'utf8')) };
  };
  run(0);
  const image = list().total;
  const cap = 3 * image;
  const capMs = [];
  const runMs = [];
  let maxBytes = 0;
  let removed = 0;
  let failed = 0;
  // A fixed shuffle (a linear congruential sequence): repeats and misses mixed.
  let seed = 7;
  for (let n = 0; n < RUNS; n++) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    try {
      const { ms, result: r } = run(seed % IMAGES, cap);
      runMs.push(ms);
      capMs.push(r.store.ms);
      removed += r.store.removed.length;
    } catch (error) {
      failed++;
      log(`soak run ${n + 1} failed: ${error.message}`);
    }
    maxBytes = Math.max(maxBytes, list().total);
  }
  execFileSync('rm', ['-rf', stateDir]);
  return { capMs: round(median(capMs), 2), runMs: median(runMs), maxBytes, cap, image, removed, failed };
}

const mb = (bytes) => `${(bytes / 1e6).toFixed(1)} MB`;
