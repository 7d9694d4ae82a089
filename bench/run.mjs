#!/usr/bin/env node
// build-cell benchmark: `npm run bench` (node bench/run.mjs [--quick] [--keep] [--only 1,4]).
//
// Builds its own fixtures (the test fixture scripts, cached), serves them from a throw-away
// docker-registry on 127.0.0.1, and measures build-cell against podman, a bare
// unshare+chroot floor, the naive skopeo+umoci pipeline and cp -a. Every row is a median over
// repeated runs, with its reference measured in the same run. Prints a markdown table and
// writes bench/results.json. Must run as root (as build-cell's integration tests do).
//
// Global state is left as it was: build-cell and podman get state dirs under one temp dir, and
// podman gets a private --root/--runroot/--tmpdir and its own containers.conf, registries.conf
// and storage.conf (set through CONTAINERS_* in podman's environment only). What rootful podman
// makes whatever its config says (/run/containers/networks, /run/runc, the libpod_parent
// cgroups) is removed at the end unless it was there before. Only the containers/image
// blob-info cache in /var/lib/containers/cache is shared, as it is with every skopeo. The temp dir
// is removed and the registry stopped by PID. bench/README-table.md explains the rows.
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync, closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync,
  renameSync, rmSync, statSync, writeFileSync, writeSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { cpus, tmpdir, totalmem, release, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(BENCH_DIR, '..');
const T0 = performance.now();

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------
const argv = process.argv.slice(2);
const opt = {
  quick: argv.includes('--quick'),
  keep: argv.includes('--keep'),
  noInstall: argv.includes('--no-install'),
  only: (() => {
    const i = argv.findIndex((a) => a === '--only' || a.startsWith('--only='));
    if (i < 0) return undefined;
    const v = argv[i].includes('=') ? argv[i].split('=')[1] : argv[i + 1];
    return new Set(String(v).split(',').map(Number));
  })(),
  out: (() => {
    const i = argv.findIndex((a) => a.startsWith('--out='));
    return i < 0 ? join(BENCH_DIR, 'results.json') : resolve(argv[i].slice('--out='.length));
  })(),
};
if (argv.includes('--help') || argv.includes('-h')) {
  console.log('usage: node bench/run.mjs [--quick] [--keep] [--no-install] [--only 1,2,...] [--out=FILE]');
  process.exit(0);
}
const want = (row) => !opt.only || opt.only.has(row);
/** Repeat counts: full, or a third (at least 2) with --quick for a smoke run. */
const R = (n) => (opt.quick ? Math.max(2, Math.ceil(n / 3)) : n);
const W = (n) => (opt.quick ? Math.min(n, 1) : n);

// ---------------------------------------------------------------------------------------------
// Small utilities
// ---------------------------------------------------------------------------------------------
const log = (...a) => console.error('[bench]', ...a);
/** POSIX single-quote one word (for hyperfine's shell-words splitting and for sh -c). */
const q = (s) => (/^[A-Za-z0-9_\/.:=@%+,-]+$/.test(s) ? s : `'${String(s).replace(/'/g, `'\\''`)}'`);
const cmdline = (args) => args.map(q).join(' ');
const median = (xs) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
/**
 * Nothing is deleted while the bench runs: on an ext4 without a journal (as here), creating a
 * file scans the inodes freed in the last 5 s (305 s while their inode table is dirty) one by
 * one (recently_deleted() in find_inode_bit), so a copy right after an `rm -rf` of a big tree
 * is many times slower. What a run leaves is renamed into TMP/trash and removed at the end.
 */
const TRASH_FN = () => `t() { [ ! -e "$1" ] || mv "$1" ${q(join(TMP, 'trash'))}/$(date +%s%N); }`;
const trashSh = (...paths) => `${TRASH_FN()}; ${paths.map((p) => `t ${q(p)}`).join('; ')}`;
let trashSeq = 0;
function trash(path) {
  if (existsSync(path)) renameSync(path, join(TMP, 'trash', `js-${++trashSeq}`));
}
const round = (x, d = 1) => (Number.isFinite(x) ? Math.round(x * 10 ** d) / 10 ** d : null);

/**
 * Run a command, throw with its stderr when it fails; returns stdout. With `limitS`, it runs under
 * coreutils `timeout`, which signals the whole process group (build-cell then stops its cell).
 */
function run(cmd, args, { env, cwd, input, allowFail = false, inherit = false, timeout, limitS } = {}) {
  if (limitS) {
    args = ['-k', '15', String(Math.ceil(limitS)), cmd, ...args];
    cmd = 'timeout';
  }
  const r = spawnSync(cmd, args, {
    env: env ?? process.env, cwd, input, encoding: 'utf8', maxBuffer: 64 << 20, timeout,
    stdio: inherit ? ['ignore', 'inherit', 'inherit'] : ['pipe', 'pipe', 'pipe'],
  });
  if (r.error) {
    if (allowFail) return undefined;
    throw new Error(`${cmd} ${cmdline(args)}: ${r.error.message}`);
  }
  if (r.status !== 0 && !allowFail) {
    const how = cmd === 'timeout' && (r.status === 124 || r.status === 137) ? `timed out after ${args[2]} s` : `exited ${r.status ?? r.signal}`;
    throw new Error(`${cmd} ${cmdline(args)} ${how}\n${String(r.stderr ?? '').trim().slice(-3000)}`);
  }
  return r.status === 0 ? r.stdout ?? '' : undefined;
}
/** One untimed run of an argv, under the per-run time limit; returns stdout. */
const once = (args, o = {}) => run(args[0], args.slice(1), { limitS: RUN_LIMIT_S, ...o });
const have = (bin) => spawnSync('sh', ['-c', `command -v ${q(bin)}`], { encoding: 'utf8' }).status === 0;
const version = (cmd, args = ['--version']) => (run(cmd, args, { allowFail: true }) ?? '').split('\n')[0].trim() || undefined;

function fmtMs(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return 'n/a';
  if (ms < 10) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}
const fmtRatio = (r) => (Number.isFinite(r) ? (r >= 10 ? `${r.toFixed(0)}×` : r >= 0.01 ? `${r.toFixed(2)}×` : `${r.toPrecision(1)}×`) : 'n/a');
const fmtPct = (r) => (Number.isFinite(r) ? `${(r * 100).toFixed(r < 0.1 ? 2 : 1)} %` : 'n/a');

// ---------------------------------------------------------------------------------------------
// Cleanup: everything the bench creates lives under TMP; the registry is stopped by PID.
// ---------------------------------------------------------------------------------------------
let TMP;
let registry; // { pid, host, child }
/** Global paths podman (rootful) creates whatever its config says; removed at the end if we made them. */
const GLOBAL_SIDE_EFFECTS = ['/run/containers/networks', '/run/containers', '/run/runc', '/dev/shm/libpod_lock', '/etc/containers/networks'];
const preexisting = new Set(GLOBAL_SIDE_EFFECTS.filter((p) => existsSync(p)));
/** podman --cgroup-manager cgroupfs makes libpod_parent (and libpod_parent/conmon) in every hierarchy. */
const podmanCgroups = () => {
  try {
    return readdirSync('/sys/fs/cgroup').map((c) => join('/sys/fs/cgroup', c, 'libpod_parent')).concat('/sys/fs/cgroup/libpod_parent').filter((p) => existsSync(p));
  } catch {
    return [];
  }
};
const preexistingCgroups = new Set(podmanCgroups());
function removeCgroupTree(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) removeCgroupTree(join(dir, e.name));
  run('rmdir', [dir], { allowFail: true });
}

function mountsUnder(dir) {
  const lines = readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
  const out = [];
  for (const l of lines) {
    const mp = l.split(' ')[4];
    if (mp && (mp === dir || mp.startsWith(`${dir}/`))) out.push(mp.replace(/\\040/g, ' '));
  }
  return out.sort().reverse();
}
function unmountUnder(dir) {
  for (const mp of mountsUnder(dir)) run('umount', ['-l', mp], { allowFail: true });
}
function stopRegistry() {
  if (!registry?.pid) return;
  const { pid } = registry;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    registry = undefined;
    return;
  }
  const deadline = Date.now() + 3000;
  while (Date.now() < deadline) {
    try {
      process.kill(pid, 0);
    } catch {
      break;
    }
    spawnSync('sleep', ['0.05']);
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone
  }
  registry = undefined;
}
let cleanedUp = false;
let cleanupMs;
function cleanup() {
  if (cleanedUp) return;
  cleanedUp = true;
  stopRegistry();
  if (TMP && existsSync(TMP)) {
    unmountUnder(TMP);
    if (opt.keep) log(`--keep: left ${TMP}`);
    else {
      const t = performance.now();
      rmSync(TMP, { recursive: true, force: true });
      // Written back, the freed inodes stop slowing other file creations after 5 s, not 305 s.
      run('sync', [], { allowFail: true });
      cleanupMs = performance.now() - t;
      log(`removed ${TMP} in ${fmtMs(cleanupMs)}`);
    }
  }
  for (const c of podmanCgroups()) if (!preexistingCgroups.has(c)) removeCgroupTree(c);
  // podman (rootful) makes these whatever its config says; leave the machine as it was.
  for (const p of GLOBAL_SIDE_EFFECTS) {
    if (preexisting.has(p) || !existsSync(p)) continue;
    try {
      const st = statSync(p);
      if (st.isDirectory()) {
        const left = readdirSync(p).filter((n) => !/\.lock$|^networks$/.test(n));
        if (left.length === 0) rmSync(p, { recursive: true, force: true });
      } else rmSync(p, { force: true });
    } catch {
      // best effort
    }
  }
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    log(`${sig}: cleaning up`);
    cleanup();
    process.exit(130);
  });
}
process.on('exit', () => cleanup());

// ---------------------------------------------------------------------------------------------
// Timing harness: hyperfine (-N, no shell) when available, else process.hrtime around spawnSync.
// ---------------------------------------------------------------------------------------------
let HYPERFINE = false;
/** No single timed run may take longer (a hung cell fails the bench instead of stalling it). */
const RUN_LIMIT_S = 300;
const measurements = {};

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
  if (HYPERFINE) {
    const jsonFile = join(TMP, `hyperfine-${key.replace(/[^A-Za-z0-9_.-]/g, '_')}.json`);
    const hfArgs = ['-N', '--style', 'none', '--runs', String(runs), '--warmup', String(warmup), '--export-json', jsonFile];
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
        throw new Error(`${error.message}\nrun once more without hyperfine: ${again.message}`);
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
    const files = readdirSync(resultDir).filter((n) => /^r\.\d+\.json$/.test(n)).sort();
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
function measureGroup(specs, { rounds = 1 } = {}) {
  const acc = specs.map(() => ({ times: [], results: [] }));
  const totals = specs.map((sp) => R(sp.runs));
  const nRounds = Math.max(1, Math.min(rounds, ...totals));
  for (const sp of specs) {
    const total = R(sp.runs);
    log(`${sp.key}: ${total} runs (+${W(sp.warmup ?? 1)} warmup${nRounds > 1 ? `, ${nRounds} interleaved rounds` : ''}): ${cmdline(sp.args).slice(0, 150)}`);
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
      command: cmdline(sp.args), runs: times.length, warmup: W(sp.warmup ?? 1), rounds: nRounds,
      median: median(times), min: Math.min(...times), max: Math.max(...times),
      mean: times.reduce((a, b) => a + b, 0) / times.length, times: times.map((t) => round(t, 2)),
    };
    if (sp.resultDir) {
      const keys = new Set(results.flatMap((res) => Object.keys(res.timings ?? {})));
      m.phases = {};
      for (const k of keys) m.phases[k] = round(median(results.map((res) => res.timings?.[k] ?? 0)), 2);
      m.phaseRuns = results.length;
      m.exitCodes = [...new Set(results.map((res) => res.exitCode))];
      m.lastResult = results.at(-1);
    }
    log(`  ${sp.key}: median ${fmtMs(m.median)} (min ${fmtMs(m.min)}, max ${fmtMs(m.max)}, ${m.runs} runs)${m.phases ? ` phases ${JSON.stringify(m.phases)}` : ''}`);
    measurements[sp.key] = m;
    return m;
  });
}
const measure = (key, args, o = {}) => measureGroup([{ key, args, ...o }])[0];

// ---------------------------------------------------------------------------------------------
// Setup: packages, build-cell, fixtures, registry, podman
// ---------------------------------------------------------------------------------------------
function aptInstall(pkgs, { optional = false } = {}) {
  if (!pkgs.length) return true;
  if (opt.noInstall) {
    if (optional) return false;
    throw new Error(`missing packages (and --no-install): ${pkgs.join(' ')}`);
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  log(`apt-get install -y ${pkgs.join(' ')}`);
  if (run('apt-get', ['install', '-y', ...pkgs], { env, allowFail: true }) !== undefined) return true;
  log('install failed: apt-get update, then again');
  run('apt-get', ['update'], { env, allowFail: true });
  if (run('apt-get', ['install', '-y', ...pkgs], { env, allowFail: true }) !== undefined) return true;
  if (optional) return false;
  throw new Error(`apt-get install -y ${pkgs.join(' ')} failed`);
}

function ensureTools() {
  const required = {
    skopeo: 'skopeo', umoci: 'umoci', 'docker-registry': 'docker-registry', unshare: 'util-linux', chroot: 'coreutils',
    'qemu-aarch64-static': 'qemu-user-static', podman: 'podman', runc: 'runc',
  };
  const missing = [...new Set(Object.entries(required).filter(([bin]) => !have(bin)).map(([, pkg]) => pkg))];
  if (!existsSync('/usr/bin/time') || !/GNU/.test(run('/usr/bin/time', ['--version'], { allowFail: true }) ?? '')) missing.push('time');
  aptInstall(missing);
  HYPERFINE = have('hyperfine') || aptInstall(['hyperfine'], { optional: true });
  if (!HYPERFINE) log('hyperfine unavailable: timing with process.hrtime around spawnSync');
}

/** dist/cli.js, built when missing; a snapshot of it is what every row runs (a rebuild meanwhile cannot mix versions). */
function buildCellCli() {
  const dist = join(REPO, 'dist', 'cli.js');
  if (!existsSync(dist)) {
    log('dist/cli.js missing: npm run build');
    run('npm', ['run', 'build'], { cwd: REPO, inherit: true });
  }
  const distTime = statSync(dist).mtimeMs;
  const newer = [];
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (statSync(p).mtimeMs > distTime) newer.push(p.slice(REPO.length + 1));
    }
  };
  if (existsSync(join(REPO, 'src'))) walk(join(REPO, 'src'));
  if (newer.length) log(`WARNING: dist/cli.js is older than ${newer.slice(0, 3).join(', ')}${newer.length > 3 ? ', ...' : ''}: run npm run build for current numbers`);
  // The CLI's files (launcher, bundle, lazily loaded chunks, package.json): a snapshot, so a
  // rebuild meanwhile cannot mix versions. The code cache lives in the bench dir (fresh).
  const snapDir = join(TMP, 'dist');
  mkdirSync(snapDir);
  for (const f of readdirSync(join(REPO, 'dist'))) {
    if (f === 'cli.js' || f === 'cli.bundle.js' || f === 'package.json' || /^\d+\.cli\.js$/.test(f)) copyFileSync(join(REPO, 'dist', f), join(snapDir, f));
  }
  process.env.BUILD_CELL_CODE_CACHE = join(TMP, 'code-cache');
  const snapshot = join(snapDir, 'cli.js');
  const sha = createHash('sha256').update(readFileSync(join(snapDir, 'cli.bundle.js'))).digest('hex');
  return { path: snapshot, sha256: sha, distMtime: new Date(distTime).toISOString(), srcNewerThanDist: newer };
}

function layoutTags(layout) {
  try {
    const idx = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'));
    return new Set(idx.manifests.map((m) => m.annotations?.['org.opencontainers.image.ref.name']).filter(Boolean));
  } catch {
    return new Set();
  }
}

/**
 * The OCI layout of a fixture: the tests' cached one when complete and not being rebuilt,
 * else built (idempotent, cached) under test/.cache/bench-fixtures by the tests' own script.
 * Copied into TMP so that a test run rebuilding its fixtures meanwhile cannot disturb us.
 */
function fixtureLayout(name, script, tags, env = {}) {
  const testOut = join(REPO, 'test', '.cache', 'fixtures', name);
  const benchOut = join(REPO, 'test', '.cache', 'bench-fixtures', name);
  const complete = (l) => tags.every((t) => layoutTags(l).has(t));
  let source;
  if (complete(join(testOut, 'layout')) && !existsSync(join(REPO, 'test', '.cache', 'fixtures', `${name}.lock`))) {
    source = join(testOut, 'layout');
  } else {
    log(`building fixture ${name} with test/fixtures/${script} (cached in test/.cache/bench-fixtures/${name})`);
    mkdirSync(benchOut, { recursive: true });
    run('bash', [join(REPO, 'test', 'fixtures', script), benchOut], { inherit: true, env: { ...process.env, ...env } });
    source = join(benchOut, 'layout');
  }
  const copy = join(TMP, 'fixtures', name);
  mkdirSync(dirname(copy), { recursive: true });
  run('cp', ['-a', source, copy]);
  if (!complete(copy)) throw new Error(`fixture ${name} lacks tags ${tags.join(', ')} (${source})`);
  return { source: source.slice(REPO.length + 1), layout: copy };
}

async function freePort() {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => res(port));
    });
  });
}

async function startRegistry() {
  const dir = join(TMP, 'registry');
  mkdirSync(dir, { recursive: true });
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = await freePort();
    const host = `127.0.0.1:${port}`;
    const config = join(dir, `config-${port}.yml`);
    writeFileSync(config, [
      'version: 0.1', 'log:', '  level: error', '  accesslog:', '    disabled: true',
      'storage:', '  filesystem:', `    rootdirectory: ${JSON.stringify(join(dir, 'storage'))}`,
      '  maintenance:', '    uploadpurging:', '      enabled: false',
      'http:', `  addr: ${JSON.stringify(host)}`, '  secret: build-cell-bench-only', '',
    ].join('\n'));
    // Output to a file, never a pipe: the bench blocks in spawnSync and would never drain one.
    const logFd = openSync(join(dir, `registry-${port}.log`), 'a');
    const child = spawn('docker-registry', ['serve', config], { stdio: ['ignore', logFd, logFd] });
    closeSync(logFd);
    registry = { pid: child.pid, host, child };
    let exited = false;
    child.once('exit', () => (exited = true));
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && !exited) {
      try {
        const r = await fetch(`http://${host}/v2/`, { signal: AbortSignal.timeout(1000) });
        await r.arrayBuffer();
        if (r.status === 200) {
          child.unref();
          return registry;
        }
      } catch {
        // not yet
      }
      await sleep(100);
    }
    stopRegistry();
    log(`registry on ${host} did not come up (attempt ${attempt}): ${readFileSync(join(dir, `registry-${port}.log`), 'utf8').slice(-500)}`);
  }
  throw new Error('docker-registry did not start');
}

function push(layout, tag, host, repo) {
  run('skopeo', ['copy', '--quiet', '--all', '--dest-tls-verify=false', `oci:${layout}:${tag}`, `docker://${host}/${repo}:${tag}`]);
}

/** podman confined to TMP: its own config files (through env), --root/--runroot/--tmpdir per "instance". */
function podmanSetup(host) {
  const dir = join(TMP, 'pm');
  mkdirSync(join(dir, 'copy-tmp'), { recursive: true });
  const files = {
    'containers.conf': [
      '[containers]',
      // The machine's hard RLIMIT_NOFILE is below podman's default (1048576): runc cannot set it.
      'default_ulimits=[]',
      '[engine]',
      `tmp_dir=${JSON.stringify(join(dir, 'tmp'))}`,
      'events_logger="file"',
      `events_logfile_path=${JSON.stringify(join(dir, 'events.log'))}`,
      // File locks under tmp_dir instead of the global /dev/shm/libpod_lock.
      'lock_type="file"',
      `image_copy_tmp_dir=${JSON.stringify(join(dir, 'copy-tmp'))}`,
      '[network]',
      `network_config_dir=${JSON.stringify(join(dir, 'networks'))}`,
      '',
    ].join('\n'),
    'registries.conf': ['unqualified-search-registries = []', '[[registry]]', `location = ${JSON.stringify(host)}`, 'insecure = true', ''].join('\n'),
    'storage.conf': ['[storage]', 'driver = "overlay"', `runroot = ${JSON.stringify(join(dir, 'rr'))}`, `graphroot = ${JSON.stringify(join(dir, 'root'))}`, ''].join('\n'),
  };
  for (const [n, c] of Object.entries(files)) writeFileSync(join(dir, n), c);
  const env = {
    ...process.env,
    CONTAINERS_CONF: join(dir, 'containers.conf'),
    CONTAINERS_REGISTRIES_CONF: join(dir, 'registries.conf'),
    CONTAINERS_STORAGE_CONF: join(dir, 'storage.conf'),
  };
  /** Global flags for a podman instance rooted at `base`. */
  const flags = (base) => [
    '--root', join(base, 'root'), '--runroot', join(base, 'rr'), '--tmpdir', join(base, 'tmp'),
    '--runtime', 'runc', '--cgroup-manager', 'cgroupfs',
  ];
  return { dir, env, flags };
}

// ---------------------------------------------------------------------------------------------
// Workspace trees
// ---------------------------------------------------------------------------------------------
/** `count` files of 100 bytes: DIR/d<i/100>/f<i%100>, i.e. directories of 100 files each. */
function makeTree(dir, count) {
  const content = Buffer.alloc(100, 'x');
  content.write('bench\n');
  for (let i = 0; i < count; i++) {
    const d = join(dir, `d${Math.floor(i / 100)}`);
    if (i % 100 === 0) mkdirSync(d, { recursive: true });
    writeFileSync(join(d, `f${i % 100}`), content);
  }
}
function makeBigFile(dir, bytes) {
  mkdirSync(dir, { recursive: true });
  const chunk = randomBytes(1 << 20);
  const fd = openSync(join(dir, 'big.bin'), 'w');
  for (let done = 0; done < bytes; done += chunk.length) writeSync(fd, chunk, 0, Math.min(chunk.length, bytes - done));
  closeSync(fd);
}

/** µs to create one empty file in a fresh directory under TMP (see the trash comment above). */
let probeSeq = 0;
function createProbe(n = 2000) {
  const dir = join(TMP, `probe-${++probeSeq}`);
  mkdirSync(dir);
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) closeSync(openSync(join(dir, `f${i}`), 'w'));
  const us = Number(process.hrtime.bigint() - t) / 1e3 / n;
  trash(dir);
  return round(us, 1);
}

// ---------------------------------------------------------------------------------------------
// Machine description
// ---------------------------------------------------------------------------------------------
function machine() {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? cpus()[0]?.model ?? 'unknown';
  const memKb = Number(/^MemTotal:\s+(\d+)/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0);
  const git = {
    head: run('git', ['-C', REPO, 'rev-parse', '--short', 'HEAD'], { allowFail: true })?.trim(),
    dirty: (run('git', ['-C', REPO, 'status', '--porcelain', '--', 'src', 'dist'], { allowFail: true }) ?? '').trim().split('\n').filter(Boolean).length,
  };
  return {
    date: new Date().toISOString(),
    nproc: Number(run('nproc', []).trim()),
    memoryGiB: round(memKb / 1048576, 1) ?? round(totalmem() / 2 ** 30, 1),
    kernel: release(),
    cpu: model,
    loadavgAtStart: loadavg().map((x) => round(x, 2)),
    node: process.version,
    git,
  };
}

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------
async function main() {
  if (process.getuid?.() !== 0) throw new Error('run as root (build-cell cells, umoci unpack with owners, podman as root)');
  // Short: podman refuses a --runroot longer than 50 characters.
  TMP = mkdtempSync(join(tmpdir().length > 20 ? '/tmp' : tmpdir(), 'bcb-'));
  mkdirSync(join(TMP, 'trash'));
  log(`temp dir ${TMP}`);
  const mach = machine();
  ensureTools();
  const cli = buildCellCli();
  const tools = {
    hyperfine: HYPERFINE ? version('hyperfine') : 'none (process.hrtime)',
    podman: version('podman'), runc: version('runc'), skopeo: version('skopeo'), umoci: version('umoci'),
    registry: version('docker-registry', ['--version']), qemu: version('qemu-aarch64-static', ['--version']),
  };
  // Executed as the installed `build-cell` command is: through the bundle's shebang (which also
  // drops NODE_EXTRA_CA_CERTS, see src/cli.ts).
  const BC = [cli.path];
  const extraCa = process.env.NODE_EXTRA_CA_CERTS;

  // Fixtures and the registry.
  const busybox = fixtureLayout('busybox', 'build-busybox-images.sh', ['amd64', 'arm64']);
  const debian = want(2) || want(3) ? fixtureLayout('debian', 'build-debian-image.sh', ['bookworm']) : undefined;
  mach.fileCreateUsAtStart = createProbe();
  log(`file creation in ${TMP}: ${mach.fileCreateUsAtStart} µs per empty file`);
  const reg = await startRegistry();
  log(`registry ${reg.host} (pid ${reg.pid})`);
  push(busybox.layout, 'amd64', reg.host, 'busybox');
  push(busybox.layout, 'arm64', reg.host, 'busybox');
  if (debian) push(debian.layout, 'bookworm', reg.host, 'debian');
  const IMG = {
    amd64: `${reg.host}/busybox:amd64`,
    arm64: `${reg.host}/busybox:arm64`,
    debian: `${reg.host}/debian:bookworm`,
  };

  const STATE = join(TMP, 'state'); // the warm state dir of rows 1, 4, 5, 6, 7
  const bcRun = (extra, cmd, state = STATE) => [...BC, 'run', '--image', IMG.amd64, '--tls-verify', 'false', '--state-dir', state, ...extra, '--', ...cmd];
  const bcPrepare = (image, state, extra = []) => [...BC, 'prepare', '--image', image, '--tls-verify', 'false', '--state-dir', state, ...extra];
  const prepared = once(bcPrepare(IMG.amd64, STATE)).trim().split(/\s+/);
  const [bbDigest, ROOTFS] = prepared;
  if (!/^sha256:/.test(bbDigest) || !existsSync(join(ROOTFS, 'bin', 'true'))) throw new Error(`prepare printed ${prepared.join(' ')}`);
  // Fail fast (not after minutes of timeouts) when this dist/cli.js cannot run a cell at all.
  once([...BC, 'run', '--image', IMG.amd64, '--tls-verify', 'false', '--state-dir', STATE, '--', '/bin/true'], { limitS: 60 });
  const results = join(TMP, 'results'); // per-measurement --result-file dirs
  const rf = (name) => join(results, name);
  const rfArgs = (name) => ['--result-file', join(rf(name), 'r.json')];
  const podman = podmanSetup(reg.host);
  const PM = (base, ...args) => ['podman', ...podman.flags(base), ...args];
  const rows = [];

  // ---- 1. Warm cell overhead ------------------------------------------------------------------
  if (want(1)) {
    const pmBase = join(podman.dir, 'w');
    once(['podman', ...podman.flags(pmBase), 'pull', '-q', '--tls-verify=false', IMG.amd64], { env: podman.env });
    {
      const [warm, pmRun, floor, nodeBare, nodeVersion, ...viaNode] = measureGroup([
        { key: '1.buildcell.warm', args: bcRun(rfArgs('warm'), ['/bin/true']), runs: 30, warmup: 3, rewarm: 1, resultDir: rf('warm') },
        {
          key: '1.podman.run', env: podman.env, runs: 30, warmup: 3, rewarm: 1,
          args: PM(pmBase, 'run', '--rm', '--pull', 'missing', '--tls-verify=false', '--network', 'host',
            '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024', IMG.amd64, '/bin/true'),
        },
        { key: '1.floor', args: ['unshare', '--fork', '--pid', '--mount', '--uts', '--ipc', '--', 'chroot', ROOTFS, '/bin/true'], runs: 60, warmup: 5, rewarm: 2 },
        { key: '1.node.bare', args: ['env', '-u', 'NODE_EXTRA_CA_CERTS', 'node', '-e', '0'], runs: 30, warmup: 3, rewarm: 1 },
        { key: '1.cli.version', args: [...BC, '--version'], runs: 30, warmup: 3, rewarm: 1 },
        // With NODE_EXTRA_CA_CERTS set (as on this machine), what `node dist/cli.js` (no launcher) pays.
        ...(extraCa ? [
          { key: '1.buildcell.warm.node', args: ['node', cli.path, ...bcRun([], ['/bin/true']).slice(BC.length)], runs: 30, warmup: 3, rewarm: 1 },
          { key: '1.node.bare.extraCa', args: ['node', '-e', '0'], runs: 30, warmup: 3, rewarm: 1 },
        ] : []),
      ], { rounds: 3 });
      const ph = warm.phases;
      // image's own parts (resolve, pull, unpack) do not run on a warm cell; counted once anyway.
      const phaseSum = round(['image', 'setup', 'stage', 'run', 'export', 'cache', 'release', 'cleanup'].reduce((a, k) => a + (ph[k] ?? 0), 0), 1);
      const outside = warm.median - nodeVersion.median - phaseSum;
      rows.push(
        { id: '1a', what: 'warm cell `run -- /bin/true` vs `podman run --rm` (image pulled, `--network host`)', bc: warm.median, ref: pmRun.median, ratio: warm.median / pmRun.median, runs: `${warm.runs} / ${pmRun.runs}` },
        { id: '1b', what: 'warm cell vs floor `unshare --fork --pid --mount --uts --ipc -- chroot ROOTFS /bin/true`', bc: warm.median, ref: floor.median, ratio: warm.median / floor.median, runs: `${warm.runs} / ${floor.runs}` },
        {
          id: '1c', what: 'where the warm cell\'s time goes', bc: warm.median, ref: null, ratio: null, runs: `${warm.runs}`,
          notes: `\`node -e 0\` ${fmtMs(nodeBare.median)}; \`cli.js --version\` ${fmtMs(nodeVersion.median)} (+${fmtMs(nodeVersion.median - nodeBare.median)} loading the bundle); ` +
            `phases ${Object.entries(ph).map(([k, v]) => `${k} ${v}`).join(', ')} ms (sum ${phaseSum}; run − floor = ${fmtMs(ph.run - floor.median)}); ` +
            `outside any phase (argument parsing, privilege, process exit) ≈ ${fmtMs(outside)}`,
        },
      );
      if (extraCa) {
        const [warmNode, bareCa] = viaNode;
        rows.push({
          id: '1d', what: `the same warm cell as \`node dist/cli.js\` (not through its shebang), NODE_EXTRA_CA_CERTS=${extraCa} set`, bc: warmNode.median, ref: pmRun.median, ratio: warmNode.median / pmRun.median, runs: `${warmNode.runs} / ${pmRun.runs}`,
          notes: `Node parses that file at every start: \`node -e 0\` ${fmtMs(bareCa.median)} with it, ${fmtMs(nodeBare.median)} without; the \`build-cell\` command (dist/cli.js's shebang) drops it`,
        });
      }
    }
  }

  // ---- 2. Cold image preparation ----------------------------------------------------------------
  // Before each run: the previous run's output removed and written back (sync), so every run starts
  // from the same place; no page cache is dropped.
  const cold = {};
  if (want(2) || want(3)) {
    const images = [['busybox', IMG.amd64, 'amd64', 12], ...(debian ? [['debian', IMG.debian, 'bookworm', 6]] : [])];
    for (const [name, image, tag, n] of images) {
      const st = join(TMP, `cold-${name}`);
      const bcSpec = { key: `2.${name}.buildcell.prepare`, args: bcPrepare(image, st), runs: n, warmup: 1, prepare: `${trashSh(st)}; sync` };
      if (!want(2)) {
        cold[name] = measure(bcSpec.key, bcSpec.args, bcSpec);
        continue;
      }
      const pb = join(podman.dir, `p${name[0]}`);
      const nv = join(TMP, `naive-${name}`);
      const [bc, pm, naive] = measureGroup([
        bcSpec,
        {
          key: `2.${name}.podman.pull`, args: PM(pb, 'pull', '-q', '--tls-verify=false', image), runs: n, warmup: 1, env: podman.env,
          prepare: `awk -v d=${q(pb)} 'index($2, d "/") == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do umount -l "$m"; done; ${trashSh(pb)}; sync`,
        },
        {
          key: `2.${name}.naive`, runs: n, warmup: 1, prepare: `${trashSh(nv)}; mkdir -p ${q(nv)}; sync`,
          args: ['sh', '-c', `skopeo copy --quiet --src-tls-verify=false docker://${image} oci:${nv}/layout:${tag} && umoci --log error raw unpack --image ${nv}/layout:${tag} ${nv}/rootfs`],
        },
      ], { rounds: 3 });
      cold[name] = bc;
      rows.push(
        { id: `2${name === 'busybox' ? 'a' : 'c'}`, what: `cold prepare, ${name} (registry → rootfs) vs \`podman pull\` (fresh --root)`, bc: bc.median, ref: pm.median, ratio: bc.median / pm.median, runs: `${bc.runs} / ${pm.runs}` },
        { id: `2${name === 'busybox' ? 'b' : 'd'}`, what: `cold prepare, ${name} vs naive \`skopeo copy\` + \`umoci raw unpack\``, bc: bc.median, ref: naive.median, ratio: bc.median / naive.median, runs: `${bc.runs} / ${naive.runs}` },
      );
    }
    // Phase split of one cold run per image (resolve / pull / unpack), from --result-file.
    for (const [name, image] of images) {
      const st = join(TMP, `split-${name}`);
      const f = join(TMP, `split-${name}.json`);
      once([...BC, 'run', '--image', image, '--tls-verify', 'false', '--state-dir', st, '--result-file', f, '--', '/bin/true']);
      const t = JSON.parse(readFileSync(f, 'utf8')).timings;
      measurements[`2.${name}.cold.phases`] = t;
      trash(st);
      for (const r of rows) {
        if (r.id.startsWith('2') && r.what.includes(`, ${name} `)) r.notes = `one cold run: resolve ${t.resolve} ms, pull ${t.pull} ms, unpack ${t.unpack} ms`;
      }
    }
  }

  // ---- 3. Warm image preparation ----------------------------------------------------------------
  if (want(3)) {
    const images = [['busybox', IMG.amd64], ...(debian ? [['debian', IMG.debian]] : [])];
    for (const [name, image] of images) {
      const warmState = join(TMP, `warm-${name}`);
      once(bcPrepare(image, warmState));
      const again = measure(`3.${name}.store`, bcPrepare(image, warmState), { runs: 20, warmup: 2 });
      // The engine's own image phase (timings.image of --result-file) on a warm run, against the
      // same phase of a cold run (row 2's split run): the preparation work, without Node's start.
      const inEngine = measure(`3.${name}.store.engine`, [...BC, 'run', '--image', image, '--tls-verify', 'false', '--state-dir', warmState, '--result-file', join(rf(`warm3-${name}`), 'r.json'), '--', '/bin/true'], { runs: 10, warmup: 1, resultDir: rf(`warm3-${name}`) });
      const fresh = join(TMP, `restored-${name}`);
      const restore = `${trashSh(fresh)}; mkdir -p ${q(fresh)}/images; cp -a ${q(warmState)}/images/layouts ${q(warmState)}/images/refs ${q(fresh)}/images/; sync`;
      const restored = measure(`3.${name}.layout`, bcPrepare(image, fresh), { runs: name === 'debian' ? 5 : 10, warmup: 1, prepare: restore });
      // Check that the restored layout really spared the pull (no network: copied = false).
      run('sh', ['-c', restore]);
      const chk = join(TMP, `restored-${name}.json`);
      once([...BC, 'run', '--image', image, '--tls-verify', 'false', '--state-dir', fresh, '--result-file', chk, '--', '/bin/true']);
      const img = JSON.parse(readFileSync(chk, 'utf8')).image;
      measurements[`3.${name}.layout.check`] = { copied: img.copied, unpacked: img.unpacked, resolved: img.resolved, timings: img.timings };
      const c = cold[name].median;
      const coldImage = measurements[`2.${name}.cold.phases`]?.image;
      if (coldImage) {
        const w = inEngine.phases.image;
        rows.push({ id: `3${name === 'busybox' ? 'a' : 'c'}0`, what: `warm prepare inside the engine, ${name}: store lookup (timings.image) vs a cold run's image phase`, bc: w, ref: coldImage, ratio: w / coldImage, pct: true, runs: `${inEngine.phaseRuns} / 1`, notes: `target < 2 % of cold: ${w / coldImage < 0.02 ? 'met' : 'missed'}; no resolve, pull or unpack ran` });
      }
      rows.push(
        { id: `3${name === 'busybox' ? 'a' : 'c'}`, what: `warm prepare, ${name}: store present (same digest again), whole \`build-cell prepare\` process`, bc: again.median, ref: c, ratio: again.median / c, pct: true, runs: `${again.runs} / ${cold[name].runs}`, notes: `mostly starting Node and loading the CLI (\`cli.js --version\`: ${fmtMs(measurements['1.cli.version']?.median ?? NaN)})` },
        { id: `3${name === 'busybox' ? 'b' : 'd'}`, what: `warm prepare, ${name}: layout restored (store absent)`, bc: restored.median, ref: c, ratio: restored.median / c, pct: true, runs: `${restored.runs} / ${cold[name].runs}`, notes: `a new machine whose Actions cache restored the layout: no pull (${img.copied ? 'pulled (!)' : 'none'}), but the unpack (${img.timings?.unpack ?? '?'} ms) is inherent` },
      );
    }
  }

  // ---- 4. Staging cost against workspace size ------------------------------------------------------
  if (want(4)) {
    const sizes = [
      ['1k', 1_000, 10, 10, 1], ['10k', 10_000, 10, 10, 1], ['100k', 100_000, 5, 3, 0], ['500MB', 0, 5, 3, 0],
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
      const [bc, cp, bare] = measureGroup([
        {
          key: `4.${label}.buildcell`, runs: n, warmup: 1, prepare: 'sync', resultDir: rf(`ws-${label}`),
          args: bcRun([...rfArgs(`ws-${label}`), '--workspace', ws, '--export', `/workspace/marker:${join(out, 'marker')}`], ['sh', '-c', 'echo x > marker']),
        },
        { key: `4.${label}.cp`, args: ['cp', '-a', ws, dest], runs: nCp, warmup: wCp, prepare: `${trashSh(dest)}; sync` },
        // The same cell without --workspace and --export, interleaved: what staging + export add.
        { key: `4.${label}.bare`, args: bcRun(rfArgs(`ws-${label}-bare`), ['sh', '-c', 'echo x > marker']), runs: n, warmup: 1, prepare: 'sync', resultDir: rf(`ws-${label}-bare`) },
      ], { rounds: 2 });
      if (readFileSync(join(out, 'marker'), 'utf8') !== 'x\n') throw new Error(`export of ${label} is wrong`);
      trash(dest);
      per[label] = { bc, cp, count };
      const ph = bc.phases;
      // What the workspace and the export cost: their phases, less the same phases of the same
      // cell without them (a whole-run difference is mostly noise at these sizes).
      const own = (m) => ['stage', 'export', 'cleanup'].reduce((a, k) => a + (m.phases[k] ?? 0), 0);
      const cost = round(own(bc) - own(bare), 1);
      per[label].cost = cost;
      rows.push({
        id: `4${'abcd'[sizes.findIndex((s) => s[0] === label)]}`,
        what: `workspace ${label === '500MB' ? 'one 500 MB file' : `${count.toLocaleString('en')} files × 100 B`}: staging + export (their phases, less the bare cell's) vs \`cp -a\``,
        bc: Math.max(cost, 0.1), ref: cp.median, ratio: Math.max(cost, 0.1) / cp.median, runs: `${bc.runs} / ${cp.runs}`,
        notes: `whole run ${fmtMs(bc.median)} (phases stage ${ph.stage}, export ${ph.export}, cleanup ${ph.cleanup} ms); the same cell without workspace and export ${fmtMs(bare.median)}`,
      });
      if (label !== '1k' && label !== '10k') trash(ws);
    }
    const slope = (k) => (per['100k'][k].median - per['1k'][k].median) / 99;
    rows.push({
      id: '4e', what: 'growth of the whole run, 1k → 100k files, per 1,000 more files', bc: slope('bc'), ref: slope('cp'),
      ratio: slope('bc') > 0.5 ? slope('bc') / slope('cp') : null, runs: '',
      notes: `staging + export: ${per['1k'].cost} ms at 1k files, ${per['100k'].cost} ms at 100k (whole-run differences are noise)`,
    });
  }

  // ---- 5. Cache sync-back -------------------------------------------------------------------------------
  if (want(5)) {
    const cache = join(TMP, 'cache10k');
    makeTree(cache, 10_000);
    run('sync', []);
    const dest = join(TMP, 'cache-copy');
    const [changed, untouched, cp] = measureGroup([
      {
        key: '5.cache.changed', runs: 10, warmup: 1, prepare: 'sync', resultDir: rf('cache-changed'),
        args: bcRun([...rfArgs('cache-changed'), '--cache', `${cache}:/cache`], ['sh', '-c', 'echo changed > /cache/d0/f0']),
      },
      { key: '5.cache.untouched', runs: 10, warmup: 1, prepare: 'sync', resultDir: rf('cache-untouched'), args: bcRun([...rfArgs('cache-untouched'), '--cache', `${cache}:/cache`], ['/bin/true']) },
      { key: '5.cache.cp', args: ['cp', '-a', cache, dest], runs: 10, warmup: 1, prepare: `${trashSh(dest)}; sync` },
    ], { rounds: 2 });
    if (readFileSync(join(cache, 'd0', 'f0'), 'utf8') !== 'changed\n') throw new Error('the cache change did not come back');
    const count = run('sh', ['-c', `find ${q(cache)} -type f | wc -l`]).trim();
    const p = (m) => `stage ${m.phases.stage} ms, cache ${m.phases.cache} ms`;
    rows.push(
      { id: '5a', what: `cache of ${Number(count).toLocaleString('en')} files, one file changed vs untouched cache`, bc: changed.median, ref: untouched.median, ratio: changed.median / untouched.median, runs: `${changed.runs} / ${untouched.runs}`, notes: `changed: ${p(changed)}; untouched: ${p(untouched)}` },
      { id: '5b', what: 'cache, one file changed vs `cp -a` of the cache dir', bc: changed.median, ref: cp.median, ratio: changed.median / cp.median, runs: `${changed.runs} / ${cp.runs}` },
    );
  }

  // ---- 6. Foreign architecture -----------------------------------------------------------------------------
  if (want(6)) {
    const bcArch = (arch, cmd) => [...BC, 'run', '--image', IMG[arch], '--arch', arch, '--tls-verify', 'false', '--state-dir', STATE, '--', ...cmd];
    once(bcPrepare(IMG.arm64, STATE, ['--arch', 'arm64']));
    const um = once(bcArch('arm64', ['uname', '-m'])).trim();
    if (um !== 'aarch64') throw new Error(`arm64 cell says uname -m = ${um}`);
    const loop = ['sh', '-c', 'i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done'];
    const [armTrue, amdTrue] = measureGroup([
      { key: '6.arm64.true', args: bcArch('arm64', ['/bin/true']), runs: 15, warmup: 2, rewarm: 1 },
      { key: '6.amd64.true', args: bcArch('amd64', ['/bin/true']), runs: 15, warmup: 2, rewarm: 1 },
    ], { rounds: 3 });
    const [armLoop, amdLoop] = measureGroup([
      { key: '6.arm64.loop', args: bcArch('arm64', loop), runs: 6, warmup: 1 },
      { key: '6.amd64.loop', args: bcArch('amd64', loop), runs: 6, warmup: 1 },
    ], { rounds: 3 });
    const base = amdTrue.median;
    rows.push(
      { id: '6a', what: 'arm64 (qemu-user) `/bin/true` vs amd64', bc: armTrue.median, ref: amdTrue.median, ratio: armTrue.median / amdTrue.median, runs: `${armTrue.runs} / ${amdTrue.runs}` },
      { id: '6b', what: 'arm64 `sh` loop of 200,000 iterations vs amd64', bc: armLoop.median, ref: amdLoop.median, ratio: armLoop.median / amdLoop.median, runs: `${armLoop.runs} / ${amdLoop.runs}`, notes: `loop alone (minus /bin/true cell): ${fmtMs(armLoop.median - armTrue.median)} vs ${fmtMs(amdLoop.median - base)} = ${fmtRatio((armLoop.median - armTrue.median) / (amdLoop.median - base))}` },
    );
  }

  // ---- 7. Peak memory ---------------------------------------------------------------------------------------
  if (want(7)) {
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
    rows.push({ id: '7', what: 'peak RSS (GNU time `%M`) of the warm cell vs `node -e 0`', bc: bc.medianKiB / 1024, ref: nd.medianKiB / 1024, ratio: bc.medianKiB / nd.medianKiB, mib: true, runs: `${bc.runs} / ${nd.runs}`, notes: `max over runs ${(bc.maxKiB / 1024).toFixed(1)} MiB; %M is the largest of the process and its waited-for children` });
  }

  // ---- 8. A real job: arm64 Debian, apt-get install gcc + a compile, with and without the install step --------
  if (want(8)) {
    const arm = fixtureLayout('debian-bookworm-arm64', 'build-debian-image.sh', ['bookworm'], { DEBIAN_ARCH: 'arm64' });
    const amd = debian ?? fixtureLayout('debian', 'build-debian-image.sh', ['bookworm']);
    const ws = join(TMP, 'job-ws');
    mkdirSync(ws, { recursive: true });
    writeFileSync(join(ws, 'hello.c'), '#include <stdio.h>\nint main(void) { puts("hello"); return 0; }\n');
    const INSTALL = 'apt-get update -qq && apt-get install -y -qq --no-install-recommends gcc libc6-dev >/dev/null';
    const COMPILE = 'gcc -O2 -o /tmp/hello hello.c && /tmp/hello';
    for (const [label, layout, arch, n] of [['arm64', arm.layout, 'arm64', 3], ['amd64', amd.layout, 'amd64', 3]]) {
      const image = `oci:${layout}:bookworm`;
      const st = join(TMP, `job-${label}`);
      const job = (state, extra, script, name) => [...BC, 'run', '--image', image, '--arch', arch, '--state-dir', state, '--workspace', ws, ...(name ? rfArgs(name) : []), ...extra, '--run', script];
      once(bcPrepare(image, st, ['--arch', arch]));
      // The install's first run makes the derived image (and is what (a) costs, plus the layer).
      const first = join(TMP, `job-${label}-first.json`);
      once(job(st, ['--install', INSTALL, '--result-file', first], COMPILE), { limitS: 1800 });
      const install = JSON.parse(readFileSync(first, 'utf8')).install;
      const derivedEntry = `${arch}-${install.digest.slice(7)}`;
      const fresh = join(TMP, `job-${label}-fresh`);
      const refName = readdirSync(join(st, 'images', 'refs')).find((n) => n.includes('build-cell-install'));
      const restore = `${trashSh(fresh)}; mkdir -p ${q(join(fresh, 'images', 'layouts'))} ${q(join(fresh, 'images', 'refs'))}; cp -a ${q(join(st, 'images', 'layouts', derivedEntry))} ${q(join(fresh, 'images', 'layouts'))}/; cp ${q(join(st, 'images', 'refs', refName))} ${q(join(fresh, 'images', 'refs'))}/; sync`;
      const [uncached, reused, restored] = measureGroup([
        { key: `8.${label}.uncached`, args: job(st, [], `${INSTALL} && ${COMPILE}`), runs: n, warmup: 0, prepare: 'sync' },
        { key: `8.${label}.reused`, args: job(st, ['--install', INSTALL], COMPILE, `job-${label}-reused`), runs: 5, warmup: 1, resultDir: rf(`job-${label}-reused`) },
        { key: `8.${label}.restored`, args: job(fresh, ['--install', INSTALL], COMPILE, `job-${label}-restored`), runs: n, warmup: 0, prepare: restore, resultDir: rf(`job-${label}-restored`) },
      ]);
      const a = uncached.median;
      rows.push(
        { id: `8${label === 'arm64' ? 'a' : 'e'}`, what: `real job, ${label} Debian bookworm: apt-get install gcc libc6-dev + compile, uncached (in every run)`, bc: a, ref: null, ratio: null, runs: `${uncached.runs}`, notes: `the install's first run: ${fmtMs(install.seconds * 1000)} (the install cell, its layer and rootfs)` },
        { id: `8${label === 'arm64' ? 'b' : 'f'}`, what: `real job, ${label}: \`--install\` reused from the store vs uncached`, bc: reused.median, ref: a, ratio: reused.median / a, runs: `${reused.runs} / ${uncached.runs}`, notes: `target ≤ 0.1×: ${reused.median / a <= 0.1 ? 'met' : 'missed'}; phases ${Object.entries(reused.phases).map(([k, v]) => `${k} ${v}`).join(', ')} ms` },
        { id: `8${label === 'arm64' ? 'c' : 'g'}`, what: `real job, ${label}: a fresh state dir with the derived layout restored (a new hosted runner) vs uncached`, bc: restored.median, ref: a, ratio: restored.median / a, runs: `${restored.runs} / ${uncached.runs}`, notes: `target ≤ 0.25×: ${restored.median / a <= 0.25 ? 'met' : 'missed'}; unpack ${restored.phases.unpack} ms (umoci for the base, GNU tar for the install's layer), run ${restored.phases.run} ms` },
      );
      if (label === 'amd64') {
        // The same derived image as podman runs it: pushed to the local registry, pulled into a fresh --root.
        push(join(st, 'images', 'layouts', derivedEntry), 'image', reg.host, 'derived');
        const pb = join(podman.dir, 'pjob');
        const pmJob = ['sh', '-c', `${cmdline(PM(pb, 'pull', '-q', '--tls-verify=false', `${reg.host}/derived:image`))} >/dev/null && ${cmdline(PM(pb, 'run', '--rm', '--network', 'host', '-v', `${ws}:/workspace`, '-w', '/workspace', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024', `${reg.host}/derived:image`, 'sh', '-c', COMPILE))}`];
        const pmPrepare = `awk -v d=${q(pb)} 'index($2, d "/") == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do umount -l "$m"; done; ${trashSh(pb)}; sync`;
        const [bcC, pm] = measureGroup([
          { key: '8.amd64.restored.again', args: job(fresh, ['--install', INSTALL], COMPILE), runs: n, warmup: 0, prepare: restore },
          { key: '8.amd64.podman', args: pmJob, runs: n, warmup: 1, env: podman.env, prepare: pmPrepare },
        ], { rounds: n });
        rows.push({ id: '8h', what: 'the derived amd64 image as podman runs it: `podman pull` (fresh --root) + `podman run` of the compile vs build-cell from a restored layout', bc: bcC.median, ref: pm.median, ratio: bcC.median / pm.median, runs: `${bcC.runs} / ${pm.runs}`, notes: `target ≤ 1.0×: ${bcC.median / pm.median <= 1 ? 'met' : 'missed'}` });
      }
      trash(fresh);
    }
  }

  // ---- 9. Rootless: a warm cell as an unprivileged user vs as root ------------------------------------------
  if (want(9)) {
    const user = 'bc-bench-rootless';
    run('useradd', ['--no-create-home', '--home-dir', join(TMP, 'rl-home'), user], { allowFail: true });
    try {
      const home = join(TMP, 'rl-home');
      mkdirSync(home, { recursive: true });
      run('cp', ['-a', busybox.layout, join(home, 'layout')]);
      run('chown', ['-R', `${user}:${user}`, home]);
      chmodSync(TMP, 0o755);
      const asUser = ['runuser', '-u', user, '--', 'env', `HOME=${home}`, cli.path];
      const rootless = [...asUser, 'run', '--privilege', 'rootless', '--image', `oci:${join(home, 'layout')}:amd64`, '--state-dir', join(home, 'state'), '--', '/bin/true'];
      const asRoot = ['runuser', '-u', 'root', '--', cli.path, 'run', '--image', `oci:${join(home, 'layout')}:amd64`, '--state-dir', join(TMP, 'rl-root-state'), '--', '/bin/true'];
      once(rootless);
      once(asRoot);
      const [rl, rt] = measureGroup([
        { key: '9.rootless.warm', args: rootless, runs: 30, warmup: 3, rewarm: 1 },
        { key: '9.root.warm', args: asRoot, runs: 30, warmup: 3, rewarm: 1 },
      ], { rounds: 3 });
      rows.push({ id: '9', what: 'warm cell as an unprivileged user (rootless, /etc/subuid range mapped) vs as root, both through runuser', bc: rl.median, ref: rt.median, ratio: rl.median / rt.median, runs: `${rl.runs} / ${rt.runs}`, notes: 'rootless adds the user-namespace probe (one unshare with the full mapping, newuidmap/newgidmap) and the owner hand-back (one find)' });
    } finally {
      run('userdel', [user], { allowFail: true });
    }
  }

  // ---- 10. Write-back: one changed file in a 100,000-file workspace ------------------------------------------
  if (want(10)) {
    const ws = join(TMP, 'wb-ws');
    makeTree(ws, 100_000);
    run('sync', []);
    const dest = join(TMP, 'wb-copy');
    const [wb, plain, cp] = measureGroup([
      { key: '10.writeback', args: bcRun([...rfArgs('wb'), '--workspace', ws, '--write-back'], ['sh', '-c', 'echo changed > d7/f7']), runs: 10, warmup: 1, prepare: 'sync', resultDir: rf('wb') },
      { key: '10.plain', args: bcRun([...rfArgs('wb-plain'), '--workspace', ws], ['sh', '-c', 'echo changed > d7/f7']), runs: 10, warmup: 1, prepare: 'sync', resultDir: rf('wb-plain') },
      { key: '10.cp', args: ['cp', '-a', ws, dest], runs: 3, warmup: 0, prepare: `${trashSh(dest)}; sync` },
    ], { rounds: 2 });
    if (readFileSync(join(ws, 'd7', 'f7'), 'utf8') !== 'changed\n') throw new Error('write-back did not write the change back');
    const cost = wb.phases['write-back'];
    rows.push(
      { id: '10a', what: 'write-back of one changed file in a 100,000-file workspace (its phase) vs `cp -a` of the workspace', bc: Math.max(cost, 0.1), ref: cp.median, ratio: Math.max(cost, 0.1) / cp.median, runs: `${wb.runs} / ${cp.runs}`, notes: `target ≤ 0.01×: ${cost / cp.median <= 0.01 ? 'met' : 'missed'}; whole run ${fmtMs(wb.median)}, the same cell without write-back ${fmtMs(plain.median)}; staging ${wb.phases.stage} ms` },
    );
    trash(ws);
    trash(dest);
  }

  // ---- 11. Sessions: a step vs a warm run -------------------------------------------------------------------
  if (want(11)) {
    const sessions = join(STATE, 'sessions');
    once([...BC, 'session', 'start', '--name', 'bench', '--image', IMG.amd64, '--tls-verify', 'false', '--state-dir', STATE]);
    const script = join(TMP, 'step.sh');
    writeFileSync(script, '/bin/true\n');
    const [step, exec, warm] = measureGroup([
      { key: '11.session.step', args: [...BC, 'session', 'step', '--sessions', sessions, '--session', 'bench', script], runs: 30, warmup: 3, rewarm: 1 },
      { key: '11.session.exec', args: [...BC, 'session', 'exec', '--name', 'bench', '--state-dir', STATE, '--', '/bin/true'], runs: 30, warmup: 3, rewarm: 1 },
      { key: '11.run.warm', args: bcRun([], ['/bin/true']), runs: 30, warmup: 3, rewarm: 1 },
    ], { rounds: 3 });
    once([...BC, 'session', 'end', '--name', 'bench', '--state-dir', STATE]);
    rows.push(
      { id: '11a', what: 'a session step as the runner runs it (`build-cell {0}`: script file, env filter, file commands) vs a warm `build-cell run -- /bin/true`', bc: step.median, ref: warm.median, ratio: step.median / warm.median, runs: `${step.runs} / ${warm.runs}`, notes: `target ≤ 1.2×: ${step.median / warm.median <= 1.2 ? 'met' : 'missed'}` },
      { id: '11b', what: '`build-cell session exec -- /bin/true` vs a warm `build-cell run -- /bin/true`', bc: exec.median, ref: warm.median, ratio: exec.median / warm.median, runs: `${exec.runs} / ${warm.runs}` },
    );
  }

  // ---- Report -----------------------------------------------------------------------------------------------------
  mach.loadavgAtEnd = loadavg().map((x) => round(x, 2));
  mach.fileCreateUsAtEnd = createProbe();
  const podmanConf = readFileSync(join(podman.dir, 'containers.conf'), 'utf8');
  const measuredS = (performance.now() - T0) / 1000;
  cleanup();
  const totalS = (performance.now() - T0) / 1000;
  const val = (r, v) => (v === null || v === undefined ? '' : r.mib ? `${v.toFixed(1)} MiB` : fmtMs(v));
  const lines = [
    `build-cell bench, ${mach.date}: ${mach.nproc} × ${mach.cpu}, ${mach.memoryGiB} GiB, Linux ${mach.kernel}, node ${mach.node}; ` +
      `load average ${mach.loadavgAtStart.join('/')} at start, ${mach.loadavgAtEnd.join('/')} at end; ` +
      `creating an empty file in the bench dir: ${mach.fileCreateUsAtStart} µs at start, ${mach.fileCreateUsAtEnd} µs at end`,
    `build-cell ${mach.git.head ?? '?'}${mach.git.dirty ? ` (+${mach.git.dirty} uncommitted files in src/ or dist/)` : ''}, dist/cli.bundle.js sha256 ${cli.sha256.slice(0, 12)}; ` +
      `timing: ${HYPERFINE ? `${tools.hyperfine} (-N)` : 'process.hrtime'}; ${tools.podman}, runc ${tools.runc?.replace(/^runc version /, '')}; total bench time ${totalS.toFixed(0)} s (${(totalS - measuredS).toFixed(0)} s of it removing the temp dir)`,
    '',
    '| # | measurement | build-cell | reference | ratio | runs | notes |',
    '|---|---|---:|---:|---:|---:|---|',
    ...rows.map((r) => `| ${r.id} | ${r.what} | ${val(r, r.bc)} | ${val(r, r.ref)} | ${r.ratio === null || r.ratio === undefined ? '' : r.pct ? fmtPct(r.ratio) : fmtRatio(r.ratio)} | ${r.runs} | ${r.notes ?? ''} |`),
    '',
    'Medians; "ratio" is build-cell / reference (for rows 3, build-cell warm / build-cell cold); runs: timed runs of each side (warmups not counted).',
  ];
  const markdown = lines.join('\n');
  console.log(markdown);
  const out = {
    machine: mach, tools, buildCell: { dist: 'dist/cli.js', sha256: cli.sha256, distMtime: cli.distMtime, srcNewerThanDist: cli.srcNewerThanDist },
    fixtures: { busybox: busybox.source, debian: debian?.source },
    podman: {
      flags: '--root/--runroot/--tmpdir under the bench temp dir, --runtime runc, --cgroup-manager cgroupfs',
      run: '--rm --pull missing --tls-verify=false --network host --ulimit nofile=1024:1024 --ulimit nproc=1024:1024',
      containersConf: podmanConf,
    },
    totalSeconds: round(totalS, 1), cleanupSeconds: round((cleanupMs ?? 0) / 1000, 1), rows, measurements, markdown,
  };
  writeFileSync(opt.out, `${JSON.stringify(out, null, 2)}\n`);
  log(`wrote ${opt.out}`);
}

main()
  .catch((error) => {
    console.error(`[bench] FAILED: ${error.stack ?? error}`);
    process.exitCode = 1;
  })
  .finally(() => cleanup());
