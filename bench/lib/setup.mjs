// Setup: packages, the build-cell CLI snapshot, fixtures, the registry, podman's private config,
// and the machine's description.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stopRegistry } from './cleanup.mjs';
import { REPO, state } from './state.mjs';
import { have, log, round, run } from './util.mjs';

function aptInstall(pkgs, { optional = false } = {}) {
  if (!pkgs.length) return true;
  if (state.opt.noInstall) {
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

/** The tools every row needs, installed when missing; hyperfine when it can be had. */
export function ensureTools() {
  const required = {
    skopeo: 'skopeo',
    umoci: 'umoci',
    'docker-registry': 'docker-registry',
    unshare: 'util-linux',
    chroot: 'coreutils',
    'qemu-aarch64-static': 'qemu-user-static',
    podman: 'podman',
    runc: 'runc',
  };
  const missing = [
    ...new Set(
      Object.entries(required)
        .filter(([bin]) => !have(bin))
        .map(([, pkg]) => pkg),
    ),
  ];
  if (!existsSync('/usr/bin/time') || !/GNU/.test(run('/usr/bin/time', ['--version'], { allowFail: true }) ?? ''))
    missing.push('time');
  aptInstall(missing);
  state.hyperfine = have('hyperfine') || aptInstall(['hyperfine'], { optional: true });
  if (!state.hyperfine) log('hyperfine unavailable: timing with process.hrtime around spawnSync');
}

/** dist/cli.js, built when missing; a snapshot of it is what every row runs (a rebuild meanwhile cannot mix versions). */
export function buildCellCli() {
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
  if (newer.length)
    log(
      `WARNING: dist/cli.js is older than ${newer.slice(0, 3).join(', ')}${newer.length > 3 ? ', ...' : ''}: run npm run build for current numbers`,
    );
  // The CLI's files (launcher, bundle, lazily loaded chunks, package.json): a snapshot, so a
  // rebuild meanwhile cannot mix versions. The code cache lives in the bench dir (fresh).
  const snapDir = join(state.tmp, 'dist');
  mkdirSync(snapDir);
  for (const f of readdirSync(join(REPO, 'dist'))) {
    if (f === 'cli.js' || f === 'cli.bundle.js' || f === 'package.json' || /^\d+\.cli\.js$/.test(f))
      copyFileSync(join(REPO, 'dist', f), join(snapDir, f));
  }
  process.env.BUILD_CELL_CODE_CACHE = join(state.tmp, 'code-cache');
  const snapshot = join(snapDir, 'cli.js');
  const sha = createHash('sha256')
    .update(readFileSync(join(snapDir, 'cli.bundle.js')))
    .digest('hex');
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
export function fixtureLayout(name, script, tags, env = {}) {
  const testOut = join(REPO, 'test', '.cache', 'fixtures', name);
  const benchOut = join(REPO, 'test', '.cache', 'bench-fixtures', name);
  const complete = (l) => tags.every((t) => layoutTags(l).has(t));
  let source;
  if (complete(join(testOut, 'layout')) && !existsSync(join(REPO, 'test', '.cache', 'fixtures', `${name}.lock`))) {
    source = join(testOut, 'layout');
  } else {
    // Rebuilt when the script or its environment changed (the script itself exits at once when
    // the layout has the tag), as the tests' fixtures are (test/helpers/fixtures.ts).
    const scriptPath = join(REPO, 'test', 'fixtures', script);
    const stamp = createHash('sha256').update(readFileSync(scriptPath)).update(JSON.stringify(env)).digest('hex');
    const stampFile = join(benchOut, 'stamp');
    if (!existsSync(stampFile) || readFileSync(stampFile, 'utf8').trim() !== stamp)
      rmSync(join(benchOut, 'layout'), { recursive: true, force: true });
    log(`building fixture ${name} with test/fixtures/${script} (cached in test/.cache/bench-fixtures/${name})`);
    mkdirSync(benchOut, { recursive: true });
    run('bash', [scriptPath, benchOut], { inherit: true, env: { ...process.env, ...env } });
    writeFileSync(stampFile, `${stamp}\n`);
    source = join(benchOut, 'layout');
  }
  const copy = join(state.tmp, 'fixtures', name);
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

/** A throw-away docker-registry on 127.0.0.1 (storage under TMP); its PID is in state.registry. */
export async function startRegistry() {
  const dir = join(state.tmp, 'registry');
  mkdirSync(dir, { recursive: true });
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = await freePort();
    const host = `127.0.0.1:${port}`;
    const config = join(dir, `config-${port}.yml`);
    writeFileSync(
      config,
      [
        'version: 0.1',
        'log:',
        '  level: error',
        '  accesslog:',
        '    disabled: true',
        'storage:',
        '  filesystem:',
        `    rootdirectory: ${JSON.stringify(join(dir, 'storage'))}`,
        '  maintenance:',
        '    uploadpurging:',
        '      enabled: false',
        'http:',
        `  addr: ${JSON.stringify(host)}`,
        '  secret: build-cell-bench-only',
        '',
      ].join('\n'),
    );
    // Output to a file, never a pipe: the bench blocks in spawnSync and would never drain one.
    const logFd = openSync(join(dir, `registry-${port}.log`), 'a');
    const child = spawn('docker-registry', ['serve', config], { stdio: ['ignore', logFd, logFd] });
    closeSync(logFd);
    state.registry = { pid: child.pid, host, child };
    let exited = false;
    child.once('exit', () => (exited = true));
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && !exited) {
      try {
        const r = await fetch(`http://${host}/v2/`, { signal: AbortSignal.timeout(1000) });
        await r.arrayBuffer();
        if (r.status === 200) {
          child.unref();
          return state.registry;
        }
      } catch {
        // not yet
      }
      await sleep(100);
    }
    stopRegistry();
    log(
      `registry on ${host} did not come up (attempt ${attempt}): ${readFileSync(join(dir, `registry-${port}.log`), 'utf8').slice(-500)}`,
    );
  }
  throw new Error('docker-registry did not start');
}

export function push(layout, tag, host, repo) {
  run('skopeo', [
    'copy',
    '--quiet',
    '--all',
    '--dest-tls-verify=false',
    `oci:${layout}:${tag}`,
    `docker://${host}/${repo}:${tag}`,
  ]);
}

/** podman confined to TMP: its own config files (through env), --root/--runroot/--tmpdir per "instance". */
export function podmanSetup(host) {
  const dir = join(state.tmp, 'pm');
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
    'registries.conf': [
      'unqualified-search-registries = []',
      '[[registry]]',
      `location = ${JSON.stringify(host)}`,
      'insecure = true',
      '',
    ].join('\n'),
    'storage.conf': [
      '[storage]',
      'driver = "overlay"',
      `runroot = ${JSON.stringify(join(dir, 'rr'))}`,
      `graphroot = ${JSON.stringify(join(dir, 'root'))}`,
      '',
    ].join('\n'),
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
    '--root',
    join(base, 'root'),
    '--runroot',
    join(base, 'rr'),
    '--tmpdir',
    join(base, 'tmp'),
    '--runtime',
    'runc',
    '--cgroup-manager',
    'cgroupfs',
  ];
  return { dir, env, flags };
}

/** The machine's description (results.json's `machine`). */
export function machine() {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? cpus()[0]?.model ?? 'unknown';
  const memKb = Number(/^MemTotal:\s+(\d+)/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0);
  const git = {
    head: run('git', ['-C', REPO, 'rev-parse', '--short', 'HEAD'], { allowFail: true })?.trim(),
    dirty: (run('git', ['-C', REPO, 'status', '--porcelain', '--', 'src', 'dist'], { allowFail: true }) ?? '')
      .trim()
      .split('\n')
      .filter(Boolean).length,
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
