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
//
// Layout: this file parses the options, sets up (tools, CLI snapshot, fixtures, registry,
// podman), runs the row groups in ROW_GROUPS order and writes the report. bench/lib/ holds the
// shared parts: state.mjs (the process-wide mutable state: temp dir, registry, measurements,
// rows), util.mjs (log, quoting, median, formatting, running commands), files.mjs (the trash,
// workspace trees, the file-creation probe), harness.mjs (hyperfine batches, measureGroup,
// measure), setup.mjs and cleanup.mjs; erofs-entry.mjs (a store image as the action's EROFS
// cache entry, rows 1, 3, 8), hosted-job.mjs (rows 13: jobs through the action in the tests'
// runner emulation, run in a process of its own) and ts-register.mjs / ts-hooks.mjs (which let
// that process import the test helpers' TypeScript). bench/rows/ holds one module per row group.
//
// Adding a row group: write bench/rows/NN-name.mjs exporting `rows` (the row numbers it adds,
// what --only selects it by) and `async addRows(ctx)` (measure with measureGroup/measure from
// lib/harness.mjs, push the table's rows onto ctx.rows; see the context built in main below),
// then add it to ROW_GROUPS where its rows belong in the table. A group that needs a fixture or
// image of its own makes it itself (fixtureLayout, push from lib/setup.mjs).
import { mkdirSync, mkdtempSync, readFileSync, existsSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { cleanup, installCleanup } from './lib/cleanup.mjs';
import { createProbe } from './lib/files.mjs';
import { buildCellCli, ensureTools, fixtureLayout, machine, podmanSetup, push, startRegistry } from './lib/setup.mjs';
import { BENCH_DIR, T0, state } from './lib/state.mjs';
import { fmtMs, fmtPct, fmtRatio, log, once, round, version } from './lib/util.mjs';
import * as warmCell from './rows/01-warm-cell.mjs';
import * as imagePrepare from './rows/02-image-prepare.mjs';
import * as workspace from './rows/04-workspace.mjs';
import * as cache from './rows/05-cache.mjs';
import * as foreignArch from './rows/06-foreign-arch.mjs';
import * as peakMemory from './rows/07-peak-memory.mjs';
import * as realJob from './rows/08-real-job.mjs';
import * as rootless from './rows/09-rootless.mjs';
import * as writeBack from './rows/10-write-back.mjs';
import * as sessions from './rows/11-sessions.mjs';
import * as emulation from './rows/12-emulation.mjs';
import * as hostedRunner from './rows/13-hosted-runner.mjs';
import * as storeCap from './rows/14-store-cap.mjs';

/** The row groups, in table order; each runs when --only names any of its `rows` (or no --only). */
const ROW_GROUPS = [
  warmCell, // 1: warm cell overhead
  imagePrepare, // 2, 3: cold and warm image preparation
  workspace, // 4: staging cost against workspace size
  cache, // 5: cache sync-back
  foreignArch, // 6: foreign architecture
  peakMemory, // 7: peak memory
  realJob, // 8: a real job (arm64 and amd64 Debian, with and without the install step)
  rootless, // 9: rootless vs root
  writeBack, // 10: write-back
  sessions, // 11: sessions
  emulation, // 12: which qemu to pin (per architecture, conformance, apt in arm64 bookworm and trixie)
  hostedRunner, // 13: a fresh hosted runner's main step through the action (warm Actions cache)
  storeCap, // 14: the store's size cap on a persistent runner (a soak over 10 images)
];

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
state.opt = opt;
if (argv.includes('--help') || argv.includes('-h')) {
  console.log('usage: node bench/run.mjs [--quick] [--keep] [--no-install] [--only 1,2,...] [--out=FILE]');
  process.exit(0);
}
const want = (row) => !opt.only || opt.only.has(row);
installCleanup();

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------
async function main() {
  if (process.getuid?.() !== 0)
    throw new Error('run as root (build-cell cells, umoci unpack with owners, podman as root)');
  // Short: podman refuses a --runroot longer than 50 characters.
  const TMP = (state.tmp = mkdtempSync(join(tmpdir().length > 20 ? '/tmp' : tmpdir(), 'bcb-')));
  mkdirSync(join(TMP, 'trash'));
  log(`temp dir ${TMP}`);
  const mach = machine();
  ensureTools();
  const cli = buildCellCli();
  const tools = {
    hyperfine: state.hyperfine ? version('hyperfine') : 'none (process.hrtime)',
    podman: version('podman'),
    runc: version('runc'),
    skopeo: version('skopeo'),
    umoci: version('umoci'),
    registry: version('docker-registry', ['--version']),
    qemu: version('qemu-aarch64-static', ['--version']),
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

  const STATE = join(TMP, 'state'); // the warm state dir of rows 1, 4, 5, 6, 7, 10, 11
  const bcRun = (extra, cmd, state = STATE) => [
    ...BC,
    'run',
    '--image',
    IMG.amd64,
    '--tls-verify',
    'false',
    '--state-dir',
    state,
    ...extra,
    '--',
    ...cmd,
  ];
  const bcPrepare = (image, state, extra = []) => [
    ...BC,
    'prepare',
    '--image',
    image,
    '--tls-verify',
    'false',
    '--state-dir',
    state,
    ...extra,
  ];
  const prepared = once(bcPrepare(IMG.amd64, STATE)).trim().split(/\s+/);
  const [bbDigest, ROOTFS] = prepared;
  if (!/^sha256:/.test(bbDigest) || !existsSync(join(ROOTFS, 'bin', 'true')))
    throw new Error(`prepare printed ${prepared.join(' ')}`);
  // Fail fast (not after minutes of timeouts) when this dist/cli.js cannot run a cell at all.
  once([...BC, 'run', '--image', IMG.amd64, '--tls-verify', 'false', '--state-dir', STATE, '--', '/bin/true'], {
    limitS: 60,
  });
  const results = join(TMP, 'results'); // per-measurement --result-file dirs
  const rf = (name) => join(results, name);
  const rfArgs = (name) => ['--result-file', join(rf(name), 'r.json')];
  const podman = podmanSetup(reg.host);
  const PM = (base, ...args) => ['podman', ...podman.flags(base), ...args];

  /** What every row group gets: the options, paths, the CLI, images, podman, argv builders, the accumulators. */
  const ctx = {
    opt,
    want,
    tmp: TMP,
    cli,
    BC,
    extraCa,
    busybox,
    debian,
    reg,
    IMG,
    STATE,
    ROOTFS,
    /** bcRun(extra, cmd, state?): a warm `build-cell run` of busybox amd64; bcPrepare(image, state, extra?). */
    bcRun,
    bcPrepare,
    /** rf(name): a --result-file dir for measureGroup's resultDir; rfArgs(name): the flag pointing into it. */
    rf,
    rfArgs,
    /** podman: { dir, env, flags(base) }; PM(base, ...args): a podman argv rooted at `base`. */
    podman,
    PM,
    rows: state.rows,
    measurements: state.measurements,
  };
  for (const group of ROW_GROUPS) if (group.rows.some(want)) await group.addRows(ctx);

  // ---- Report -----------------------------------------------------------------------------------------------------
  const { rows } = state;
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
      `timing: ${state.hyperfine ? `${tools.hyperfine} (-N)` : 'process.hrtime'}; ${tools.podman}, runc ${tools.runc?.replace(/^runc version /, '')}; total bench time ${totalS.toFixed(0)} s (${(totalS - measuredS).toFixed(0)} s of it removing the temp dir)`,
    '',
    '| # | measurement | build-cell | reference | ratio | runs | notes |',
    '|---|---|---:|---:|---:|---:|---|',
    ...rows.map(
      (r) =>
        `| ${r.id} | ${r.what} | ${val(r, r.bc)} | ${val(r, r.ref)} | ${r.ratio === null || r.ratio === undefined ? '' : r.pct ? fmtPct(r.ratio) : fmtRatio(r.ratio)} | ${r.runs} | ${r.notes ?? ''} |`,
    ),
    '',
    'Medians; "ratio" is build-cell / reference (for rows 3, build-cell warm / build-cell cold); runs: timed runs of each side (warmups not counted).',
  ];
  const markdown = lines.join('\n');
  console.log(markdown);
  const out = {
    machine: mach,
    tools,
    buildCell: {
      dist: 'dist/cli.js',
      sha256: cli.sha256,
      distMtime: cli.distMtime,
      srcNewerThanDist: cli.srcNewerThanDist,
    },
    fixtures: { busybox: busybox.source, debian: debian?.source },
    podman: {
      flags: '--root/--runroot/--tmpdir under the bench temp dir, --runtime runc, --cgroup-manager cgroupfs',
      run: '--rm --pull missing --tls-verify=false --network host --ulimit nofile=1024:1024 --ulimit nproc=1024:1024',
      containersConf: podmanConf,
    },
    totalSeconds: round(totalS, 1),
    cleanupSeconds: round((state.cleanupMs ?? 0) / 1000, 1),
    rows,
    measurements: state.measurements,
    markdown,
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
