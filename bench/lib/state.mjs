// The bench's one place for process-wide mutable state, and the paths everything else resolves
// against. Helpers in bench/lib read and update `state`; run.mjs fills in `opt` first and `tmp`
// at the start of main, and the row groups reach the rest through the context run.mjs builds.
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const REPO = resolve(BENCH_DIR, '..');
export const T0 = performance.now();

export const state = {
  /** The parsed options (run.mjs): { quick, keep, noInstall, only, out }. */
  opt: undefined,
  /** The temp dir everything the bench creates lives under (removed at the end unless --keep). */
  tmp: undefined,
  /** The throw-away docker-registry: { pid, host, child }, stopped by PID. */
  registry: undefined,
  /** Whether hyperfine times the runs (else process.hrtime around spawnSync). */
  hyperfine: false,
  /** Every measurement by key (results.json's `measurements`). */
  measurements: {},
  /** The table's rows, in order (results.json's `rows`). */
  rows: [],
  /** What existed before the bench ran (cleanup leaves it): global paths and podman cgroups. */
  preexisting: new Set(),
  preexistingCgroups: new Set(),
  cleanedUp: false,
  /** How long removing the temp dir took. */
  cleanupMs: undefined,
  /** Counters for unique names under the temp dir. */
  trashSeq: 0,
  probeSeq: 0,
};
