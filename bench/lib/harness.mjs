// Timing harness: hyperfine (-N, no shell) when available, else process.hrtime around spawnSync.
// Every measurement lands in state.measurements under its key (results.json's `measurements`).
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { trash } from './files.mjs';
import { state } from './state.mjs';
import { RUN_LIMIT_S, cmdline, fmtMs, log, median, q, round, run } from './util.mjs';

/** Repeat counts: full, or a third (at least 2) with --quick for a smoke run. */
export const R = (n) => (state.opt.quick ? Math.max(2, Math.ceil(n / 3)) : n);
export const W = (n) => (state.opt.quick ? Math.min(n, 1) : n);

/**
 * One batch of `runs` timed runs of `spec.args` after `warmup` untimed ones. `spec.prepare` is a
 * shell snippet run before every run (warmups included), untimed. With `spec.resultDir`, the
 * command writes `resultDir/r.json` (build-cell --result-file): they are collected per run
 * (warmups dropped). Returns { times (ms), results }.
 */
function batch(spec, runs, warmup) {
  const { key, args, env, resultDir } = spec;
  let prep = spec.prepare ?? '';
  if (resultDir) {
    mkdirSync(resultDir, { recursive: true });
    // Rotate the previous run's result file away under a sortable name.
    prep += `${prep ? '; ' : ''}f=${q(join(resultDir, 'r.json'))}; if [ -f "$f" ]; then mv "$f" ${q(resultDir)}/r.$(date +%s%N).json; fi`;
  }
  const command = cmdline(args);
  let times;
  if (state.hyperfine) {
    const jsonFile = join(state.tmp, `hyperfine-${key.replace(/[^A-Za-z0-9_.-]/g, '_')}.json`);
    const hfArgs = [
      '-N',
      '--style',
      'none',
      '--runs',
      String(runs),
      '--warmup',
      String(warmup),
      '--export-json',
      jsonFile,
    ];
    if (prep) hfArgs.push('--prepare', cmdline(['sh', '-c', prep]));
    hfArgs.push('--', command);
    try {
      run('hyperfine', hfArgs, { env, limitS: (runs + warmup) * RUN_LIMIT_S + 60 });
    } catch (error) {
      // hyperfine hides the command's output: run it once more directly for the message.
      if (prep) run('sh', ['-c', prep], { env, allowFail: true });
      try {
        run(args[0], args.slice(1), { env, limitS: RUN_LIMIT_S });
      } catch (again) {
        throw new Error(`${error.message}\nrun once more without hyperfine: ${again.message}`, { cause: again });
      }
      throw error;
    }
    times = JSON.parse(readFileSync(jsonFile, 'utf8')).results[0].times.map((sec) => sec * 1000);
  } else {
    times = [];
    for (let i = 0; i < warmup + runs; i++) {
      if (prep) run('sh', ['-c', prep], { env, limitS: RUN_LIMIT_S });
      const t = process.hrtime.bigint();
      run(args[0], args.slice(1), { env, limitS: RUN_LIMIT_S });
      const dt = Number(process.hrtime.bigint() - t) / 1e6;
      if (i >= warmup) times.push(dt);
    }
  }
  let results = [];
  if (resultDir) {
    const files = readdirSync(resultDir)
      .filter((n) => /^r\.\d+\.json$/.test(n))
      .sort();
    if (existsSync(join(resultDir, 'r.json'))) files.push('r.json');
    results = files.slice(warmup).map((n) => JSON.parse(readFileSync(join(resultDir, n), 'utf8')));
    trash(resultDir);
  }
  return { times, results };
}

/**
 * Measure several commands in `rounds` interleaved rounds (A B C, A B C, ...), so that a slow
 * drift of the machine (other jobs, writeback) spreads over all of them instead of biasing the
 * one measured last. Each spec: { key, args, runs, warmup (first round), rewarm (later rounds,
 * default 0), prepare, env, resultDir }. Returns the summaries in spec order.
 */
export function measureGroup(specs, { rounds = 1 } = {}) {
  const acc = specs.map(() => ({ times: [], results: [] }));
  const totals = specs.map((sp) => R(sp.runs));
  const nRounds = Math.max(1, Math.min(rounds, ...totals));
  for (const sp of specs) {
    const total = R(sp.runs);
    log(
      `${sp.key}: ${total} runs (+${W(sp.warmup ?? 1)} warmup${nRounds > 1 ? `, ${nRounds} interleaved rounds` : ''}): ${cmdline(sp.args).slice(0, 150)}`,
    );
  }
  for (let r = 0; r < nRounds; r++) {
    specs.forEach((sp, i) => {
      const total = totals[i];
      const n = Math.floor(total / nRounds) + (r < total % nRounds ? 1 : 0);
      if (!n) return;
      const warm = r === 0 ? W(sp.warmup ?? 1) : W(sp.rewarm ?? 0);
      const b = batch(sp, n, warm);
      acc[i].times.push(...b.times);
      acc[i].results.push(...b.results);
    });
  }
  return specs.map((sp, i) => {
    const { times, results } = acc[i];
    const m = {
      command: cmdline(sp.args),
      runs: times.length,
      warmup: W(sp.warmup ?? 1),
      rounds: nRounds,
      median: median(times),
      min: Math.min(...times),
      max: Math.max(...times),
      mean: times.reduce((a, b) => a + b, 0) / times.length,
      times: times.map((t) => round(t, 2)),
    };
    if (sp.resultDir) {
      const keys = new Set(results.flatMap((res) => Object.keys(res.timings ?? {})));
      m.phases = {};
      for (const k of keys) m.phases[k] = round(median(results.map((res) => res.timings?.[k] ?? 0)), 2);
      m.phaseRuns = results.length;
      m.exitCodes = [...new Set(results.map((res) => res.exitCode))];
      m.lastResult = results.at(-1);
    }
    log(
      `  ${sp.key}: median ${fmtMs(m.median)} (min ${fmtMs(m.min)}, max ${fmtMs(m.max)}, ${m.runs} runs)${m.phases ? ` phases ${JSON.stringify(m.phases)}` : ''}`,
    );
    state.measurements[sp.key] = m;
    return m;
  });
}
/** One command measured alone (see measureGroup for the spec's fields). */
export const measure = (key, args, o = {}) => measureGroup([{ key, args, ...o }])[0];
