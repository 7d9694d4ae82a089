/**
 * Image handling end to end, through the built CLI (dist/cli.js) against a real local
 * registry (docker-registry), real skopeo and umoci: multi-arch selection, digest pins, every
 * supported transport, store reuse measured by counting tool invocations, pull policies on a
 * moving tag, bad references, registry failures, credentials, and `prepare`.
 *
 * Every test uses its own state dir and ends with the after-check: the host's mounts, binfmt
 * state and build-cell cgroups are as before, and no process mentions the state dir.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeDir, runCli, tempDir, withStateDir, type CliResult } from '../helpers/cli.js';
import { busyboxLayout } from '../helpers/fixtures.js';
import { pushLayout, startRegistry, startRegistryWithAuth, type Registry } from '../helpers/registry.js';

const execFileP = promisify(execFile);
const INDEX_MEDIA_TYPE = 'application/vnd.oci.image.index.v1+json';

// ---------------------------------------------------------------------------------------------
// Helpers local to this file
// ---------------------------------------------------------------------------------------------

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A build-cell failure: exit 125 and exactly one `build-cell: ...` line on stderr matching `pattern`. */
function expectBuildCellError(result: CliResult, pattern: RegExp): void {
  expect(result.code, `stderr: ${result.stderr}`).toBe(125);
  const lines = result.stderr.split('\n').filter((l) => l.trim());
  expect(lines, `stderr: ${result.stderr}`).toHaveLength(1);
  expect(lines[0]).toMatch(/^build-cell: /);
  expect(lines[0]).toMatch(pattern);
}

function expectOk(result: CliResult): void {
  expect(result.code, `exit code; stderr: ${result.stderr}`).toBe(0);
}

function entries(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).sort() : [];
}

/** The image entries (layouts, rootfs) and leftovers (temporary dirs, held locks) in a state dir. */
function storeEntries(stateDir: string): { layouts: string[]; rootfs: string[]; tmp: string[]; locks: string[] } {
  return {
    layouts: entries(join(stateDir, 'images', 'layouts')),
    rootfs: entries(join(stateDir, 'images', 'rootfs')),
    tmp: entries(join(stateDir, 'tmp')),
    locks: entries(join(stateDir, 'locks')),
  };
}

const EMPTY_STORE = { layouts: [], rootfs: [], tmp: [], locks: [] };

const sha256 = (data: Buffer | string) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

/** The raw manifest (bytes) of a registry reference, exactly as skopeo (and build-cell) sees it. */
async function rawManifest(ref: string, creds?: string): Promise<Buffer> {
  const { stdout } = await execFileP(
    'skopeo',
    ['inspect', '--raw', '--tls-verify=false', ...(creds ? ['--creds', creds] : []), ref],
    {
      encoding: 'buffer',
      timeout: 60_000,
      maxBuffer: 16 * 1024 * 1024,
    },
  );
  return stdout;
}

/**
 * A bin dir with `skopeo` and `umoci` wrappers that log their argv (one line per call, tool
 * name first) and exec the real tools. Returns the env to run the CLI with and a log reader.
 */
function toolLog(dir: string): { env: NodeJS.ProcessEnv; lines: () => string[] } {
  const bin = join(dir, 'bin');
  const log = join(dir, 'tools.log');
  writeFileSync(log, '');
  mkdirSync(bin, { recursive: true });
  for (const tool of ['skopeo', 'umoci']) {
    const real = `/usr/bin/${tool}`;
    expect(existsSync(real), `${real} must exist`).toBe(true);
    const script = `#!/bin/sh\nprintf '%s\\n' "${tool} $*" >> '${log}'\nexec ${real} "$@"\n`;
    writeFileSync(join(bin, tool), script);
    chmodSync(join(bin, tool), 0o755);
  }
  return {
    env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}` },
    lines: () => readFileSync(log, 'utf8').split('\n').filter(Boolean),
  };
}

/** A tiny HTTP server that answers every request with 200 and `body` (default: "not a manifest"). */
async function garbageServer(
  body = 'not a manifest',
  contentType = 'text/plain',
): Promise<{ host: string; requests: () => string[]; close: () => Promise<void> }> {
  const seen: string[] = [];
  const server: Server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    res.writeHead(200, { 'content-type': contentType });
    res.end(body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${port}`,
    requests: () => [...seen],
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}

/** Search `root` (a file, or every regular file under a directory) for any of `needles`; returns the files that contain one. */
async function filesContaining(root: string, needles: string[]): Promise<string[]> {
  const hits: string[] = [];
  const visit = async (path: string): Promise<void> => {
    // lstat: never follow a symlink (a rootfs may hold absolute ones that point into the host).
    const info = lstatSync(path, { throwIfNoEntry: false });
    if (!info) return;
    if (info.isDirectory()) {
      for (const name of await readdir(path).catch(() => [] as string[])) await visit(join(path, name));
    } else if (info.isFile()) {
      const content = await readFile(path).catch(() => undefined);
      if (content && needles.some((n) => content.includes(n))) hits.push(path);
    }
  };
  await visit(root);
  return hits;
}

function authDirs(): string[] {
  const roots = [...new Set([tmpdir(), '/tmp'])];
  return roots.flatMap((root) =>
    entries(root)
      .filter((n) => n.startsWith('build-cell-auth-'))
      .map((n) => join(root, n)),
  );
}

// ---------------------------------------------------------------------------------------------

describe('images: registry, transports, store reuse, pull policies, credentials', () => {
  let layout: string;
  let registry: Registry;
  let host: string;

  beforeAll(async () => {
    layout = await busyboxLayout();
    registry = await startRegistry();
    host = registry.host;
    await pushLayout(layout, 'multi', host, 'busybox', 'multi');
    await pushLayout(layout, 'amd64', host, 'busybox', 'amd64');
    await pushLayout(layout, 'arm64', host, 'busybox', 'arm64');
  }, 15 * 60_000);

  afterAll(async () => {
    if (!registry) return;
    await registry.stop();
    expect(pidAlive(registry.pid), `docker-registry pid ${registry.pid} still alive after stop()`).toBe(false);
  });

  // -------------------------------------------------------------------------------------------
  it('multi-arch index from a registry: host arch by default, --arch arm64 and its alias aarch64', async () => {
    await withStateDir(async (state) => {
      const ref = `${host}/busybox:multi`;
      const native = await runCli([
        'run',
        '--image',
        ref,
        '--tls-verify',
        'false',
        '--state-dir',
        state,
        '--',
        'uname',
        '-m',
      ]);
      expectOk(native);
      expect(native.stdout).toBe('x86_64\n');

      const arm = await runCli([
        'run',
        '--image',
        ref,
        '--tls-verify',
        'false',
        '--arch',
        'arm64',
        '--state-dir',
        state,
        '--',
        'uname',
        '-m',
      ]);
      expectOk(arm);
      expect(arm.stdout).toBe('aarch64\n');

      const alias = await runCli([
        'run',
        '--image',
        ref,
        '--tls-verify',
        'false',
        '--arch',
        'aarch64',
        '--state-dir',
        state,
        '--',
        'uname',
        '-m',
      ]);
      expectOk(alias);
      expect(alias.stdout).toBe('aarch64\n');

      // One entry per platform: the alias reused the arm64 entry instead of adding a third.
      const store = storeEntries(state);
      expect(store.rootfs).toHaveLength(2);
      expect(store.rootfs.map((e) => e.split('-')[0]).sort()).toEqual(['amd64', 'arm64']);
      expect(store.layouts).toEqual(store.rootfs);
      expect(store.tmp).toEqual([]);

      // The arm64 entry is the manifest the index lists for linux/arm64.
      const index = JSON.parse((await rawManifest(`docker://${ref}`)).toString()) as {
        manifests: Array<{ digest: string; platform: { architecture: string } }>;
      };
      const armDigest = index.manifests.find((m) => m.platform.architecture === 'arm64')!.digest;
      expect(store.rootfs).toContain(`arm64-${armDigest.slice('sha256:'.length)}`);
    });
  });

  // -------------------------------------------------------------------------------------------
  it('digest-pinned references: the index digest (per arch) and a per-arch manifest digest', async () => {
    await withStateDir(async (state) => {
      const raw = await rawManifest(`docker://${host}/busybox:multi`);
      const indexDigest = sha256(raw);
      const index = JSON.parse(raw.toString()) as {
        mediaType?: string;
        manifests: Array<{ digest: string; platform: { architecture: string } }>;
      };
      expect(index.mediaType).toBe(INDEX_MEDIA_TYPE);
      const byArch = Object.fromEntries(index.manifests.map((m) => [m.platform.architecture, m.digest]));
      expect(Object.keys(byArch).sort()).toEqual(['amd64', 'arm64']);
      // Cross-check our digest with the registry's own Docker-Content-Digest.
      const head = await fetch(`http://${host}/v2/busybox/manifests/multi`, {
        method: 'HEAD',
        headers: { accept: INDEX_MEDIA_TYPE },
      });
      expect(head.headers.get('docker-content-digest')).toBe(indexDigest);

      const pinnedIndex = `${host}/busybox@${indexDigest}`;
      const native = await runCli([
        'run',
        '--image',
        pinnedIndex,
        '--tls-verify',
        'false',
        '--state-dir',
        state,
        '--',
        'uname',
        '-m',
      ]);
      expectOk(native);
      expect(native.stdout).toBe('x86_64\n');
      const arm = await runCli([
        'run',
        '--image',
        pinnedIndex,
        '--tls-verify',
        'false',
        '--arch',
        'arm64',
        '--state-dir',
        state,
        '--',
        'uname',
        '-m',
      ]);
      expectOk(arm);
      expect(arm.stdout).toBe('aarch64\n');

      // `prepare` names exactly the per-arch manifest the index points at.
      const prepared = await runCli([
        'prepare',
        '--image',
        pinnedIndex,
        '--tls-verify',
        'false',
        '--arch',
        'arm64',
        '--state-dir',
        state,
      ]);
      expectOk(prepared);
      expect(prepared.stdout.split(' ')[0]).toBe(byArch.arm64);

      // A per-arch manifest pin, in a fresh state dir so that it really pulls by that digest.
      await withStateDir(async (state2) => {
        const pinnedArm = `docker://${host}/busybox@${byArch.arm64}`;
        const r = await runCli([
          'run',
          '--image',
          pinnedArm,
          '--tls-verify',
          'false',
          '--arch',
          'arm64',
          '--state-dir',
          state2,
          '--',
          'uname',
          '-m',
        ]);
        expectOk(r);
        expect(r.stdout).toBe('aarch64\n');
        expect(storeEntries(state2).rootfs).toEqual([`arm64-${byArch.arm64!.slice('sha256:'.length)}`]);

        const pinnedAmd = `${host}/busybox@${byArch.amd64}`;
        const a = await runCli([
          'run',
          '--image',
          pinnedAmd,
          '--tls-verify',
          'false',
          '--state-dir',
          state2,
          '--',
          'uname',
          '-m',
        ]);
        expectOk(a);
        expect(a.stdout).toBe('x86_64\n');

        // A single-arch pin asked for another arch is refused, not run under the wrong arch.
        const wrong = await runCli([
          'run',
          '--image',
          pinnedArm,
          '--tls-verify',
          'false',
          '--state-dir',
          state2,
          '--',
          'uname',
          '-m',
        ]);
        expectBuildCellError(wrong, /arm64/);
        expect(wrong.stdout).toBe('');
      });
    });
  });

  // -------------------------------------------------------------------------------------------
  it('a reference with both tag and digest (name:tag@sha256:...) runs by the digest as docker does, or is refused up front as --image', async () => {
    await withStateDir(async (state) => {
      const indexDigest = sha256(await rawManifest(`docker://${host}/busybox:multi`));
      // The tag is only a label here: even a tag that names another image must not matter.
      for (const tag of ['multi', 'amd64']) {
        const ref = `${host}/busybox:${tag}@${indexDigest}`;
        const r = await runCli([
          'run',
          '--image',
          ref,
          '--tls-verify',
          'false',
          '--arch',
          'arm64',
          '--state-dir',
          state,
          '--',
          'uname',
          '-m',
        ]);
        if (r.code === 0) {
          expect(r.stdout).toBe('aarch64\n');
        } else {
          // The parser accepts this form (and dockerReferenceByDigest handles it), so a refusal
          // must come from build-cell's own --image validation, not from skopeo midway.
          expectBuildCellError(r, /^build-cell: --image: /);
        }
      }
    });
  });

  // -------------------------------------------------------------------------------------------
  it('oci:, oci-archive:, docker-archive: and dir: transports each run', async () => {
    const work = tempDir('bc-transports-');
    try {
      const ociArchive = join(work, 'busybox-oci.tar');
      const dockerArchive = join(work, 'busybox-docker.tar');
      const dirImage = join(work, 'busybox-dir');
      await execFileP(
        'skopeo',
        ['--insecure-policy', 'copy', '--quiet', `oci:${layout}:amd64`, `oci-archive:${ociArchive}`],
        { timeout: 120_000 },
      );
      await execFileP(
        'skopeo',
        [
          '--insecure-policy',
          'copy',
          '--quiet',
          `oci:${layout}:amd64`,
          `docker-archive:${dockerArchive}:busybox:latest`,
        ],
        { timeout: 120_000 },
      );
      await execFileP('skopeo', ['--insecure-policy', 'copy', '--quiet', `oci:${layout}:amd64`, `dir:${dirImage}`], {
        timeout: 120_000,
      });

      await withStateDir(async (state) => {
        const refs = [
          `oci:${layout}:amd64`,
          `oci-archive:${ociArchive}`,
          `docker-archive:${dockerArchive}`,
          `dir:${dirImage}`,
        ];
        for (const ref of refs) {
          const r = await runCli(['run', '--image', ref, '--state-dir', state, '--', 'uname', '-m']);
          expect(r.code, `${ref}: ${r.stderr}`).toBe(0);
          expect(r.stdout, ref).toBe('x86_64\n');
        }
        // Every run ended as a ready store entry; nothing half-written is left in STATE/tmp.
        const store = storeEntries(state);
        expect(store.rootfs.length).toBeGreaterThanOrEqual(1);
        expect(store.layouts).toEqual(store.rootfs);
        expect(store.tmp).toEqual([]);
        for (const entry of store.rootfs)
          expect(existsSync(join(state, 'images', 'rootfs', entry, 'bin', 'busybox'))).toBe(true);

        // An OCI layout index (oci:LAYOUT:multi) selects the platform too.
        const multiArm = await runCli([
          'run',
          '--image',
          `oci:${layout}:multi`,
          '--arch',
          'arm64',
          '--state-dir',
          state,
          '--',
          'uname',
          '-m',
        ]);
        expectOk(multiArm);
        expect(multiArm.stdout).toBe('aarch64\n');
      });
    } finally {
      await removeDir(work);
    }
  });

  // -------------------------------------------------------------------------------------------
  it('store reuse measured by tool calls; --pull missing/always/never on a moving tag', async () => {
    const work = tempDir('bc-reuse-');
    try {
      const tools = toolLog(work);
      await withStateDir(async (state) => {
        const run = (ref: string, pull: string | undefined, args: string[]) =>
          runCli(
            [
              'run',
              '--image',
              ref,
              '--tls-verify',
              'false',
              ...(pull ? ['--pull', pull] : []),
              '--state-dir',
              state,
              ...args,
            ],
            { env: tools.env },
          );

        // Cold: one manifest read, one copy, one unpack.
        const ref = `${host}/busybox:amd64`;
        const first = await run(ref, undefined, ['--', 'uname', '-m']);
        expectOk(first);
        expect(first.stdout).toBe('x86_64\n');
        const cold = tools.lines();
        expect(cold.filter((l) => l.startsWith('skopeo inspect'))).toHaveLength(1);
        expect(cold.filter((l) => l.startsWith('skopeo copy'))).toHaveLength(1);
        expect(cold.filter((l) => l.startsWith('umoci '))).toHaveLength(1);
        expect(cold.every((l) => l.includes(host) || l.startsWith('umoci '))).toBe(true);

        // Warm, default --pull missing: no tool runs at all.
        const second = await run(ref, undefined, ['--', 'uname', '-m']);
        expectOk(second);
        expect(second.stdout).toBe('x86_64\n');
        expect(tools.lines()).toEqual(cold);

        // --pull always on an unchanged tag: exactly one manifest read, nothing copied or unpacked.
        const always = await run(ref, 'always', ['--', 'uname', '-m']);
        expectOk(always);
        expect(always.stdout).toBe('x86_64\n');
        const afterAlways = tools.lines().slice(cold.length);
        expect(afterAlways).toHaveLength(1);
        expect(afterAlways[0]).toMatch(/^skopeo inspect /);
        expect(storeEntries(state).rootfs).toHaveLength(1);

        // A tag that moves: first it holds the plain amd64 image...
        const moving = `${host}/busybox:moving`;
        await pushLayout(layout, 'amd64', host, 'busybox', 'moving');
        const probe = ['--run', 'if [ -e /marker ]; then cat /marker; else echo no-marker; fi'];
        const old = await run(moving, undefined, probe);
        expectOk(old);
        expect(old.stdout).toBe('no-marker\n');
        const oldDigest = (
          await runCli(['prepare', '--image', moving, '--pull', 'never', '--state-dir', state], { env: tools.env })
        ).stdout.split(' ')[0];
        expect(oldDigest).toMatch(/^sha256:[0-9a-f]{64}$/);

        // ...then an image with an extra file /marker is pushed under the same tag.
        const modified = join(work, 'modified');
        const bundle = join(work, 'bundle');
        await execFileP(
          'skopeo',
          ['--insecure-policy', 'copy', '--quiet', `oci:${layout}:amd64`, `oci:${modified}:amd64`],
          { timeout: 120_000 },
        );
        await execFileP('/usr/bin/umoci', ['--log', 'error', 'unpack', '--image', `${modified}:amd64`, bundle], {
          timeout: 120_000,
        });
        await writeFile(join(bundle, 'rootfs', 'marker'), 'new-image\n', { mode: 0o644 });
        await execFileP('/usr/bin/umoci', ['--log', 'error', 'repack', '--image', `${modified}:moving`, bundle], {
          timeout: 120_000,
        });
        await pushLayout(modified, 'moving', host, 'busybox', 'moving');
        const newDigest = sha256(await rawManifest(`docker://${moving}`));
        expect(newDigest).not.toBe(oldDigest);

        // --pull missing still uses the stored (old) image and asks nobody.
        const before = tools.lines().length;
        const stale = await run(moving, 'missing', probe);
        expectOk(stale);
        expect(stale.stdout).toBe('no-marker\n');
        expect(tools.lines()).toHaveLength(before);

        // --pull always re-resolves, copies and unpacks the new digest, and runs it.
        const fresh = await run(moving, 'always', probe);
        expectOk(fresh);
        expect(fresh.stdout).toBe('new-image\n');
        const pulled = tools.lines().slice(before);
        expect(pulled.filter((l) => l.startsWith('skopeo inspect'))).toHaveLength(1);
        expect(pulled.filter((l) => l.startsWith('skopeo copy'))).toHaveLength(1);
        expect(pulled.find((l) => l.startsWith('skopeo copy'))).toContain(newDigest);
        expect(pulled.filter((l) => l.startsWith('umoci '))).toHaveLength(1);

        // The reference now resolves to the new digest, also for --pull missing (no tool calls).
        const nowDigest = await runCli(['prepare', '--image', moving, '--pull', 'never', '--state-dir', state], {
          env: tools.env,
        });
        expectOk(nowDigest);
        expect(nowDigest.stdout.split(' ')[0]).toBe(newDigest);
        const again = await run(moving, 'missing', probe);
        expectOk(again);
        expect(again.stdout).toBe('new-image\n');
        expect(tools.lines()).toHaveLength(before + pulled.length);

        // The old image's entry is untouched; both digests are in the store.
        expect(storeEntries(state).rootfs).toEqual(
          expect.arrayContaining([`amd64-${oldDigest!.slice(7)}`, `amd64-${newDigest.slice(7)}`]),
        );

        // --pull never on a reference the store has never seen: 125, names pull, runs no tool.
        const count = tools.lines().length;
        const never = await run(`${host}/busybox:never-pulled`, 'never', ['--', 'uname', '-m']);
        expectBuildCellError(never, /pull/);
        expect(never.stderr).toMatch(/never-pulled/);
        expect(never.stdout).toBe('');
        expect(tools.lines()).toHaveLength(count);
      });
    } finally {
      await removeDir(work);
    }
  });

  // -------------------------------------------------------------------------------------------
  it('bad --arch, missing platform, unsupported transport and unreachable registry: 125 with a clear message', async () => {
    await withStateDir(async (state) => {
      const sparc = await runCli([
        'run',
        '--image',
        `${host}/busybox:multi`,
        '--tls-verify',
        'false',
        '--arch',
        'sparc',
        '--state-dir',
        state,
        '--',
        'uname',
        '-m',
      ]);
      expectBuildCellError(sparc, /--arch/);
      expect(sparc.stderr).toMatch(/sparc/);
      for (const name of ['amd64', 'arm64', 'aarch64', 'riscv64', 's390x', 'ppc64le'])
        expect(sparc.stderr).toContain(name);

      // A single-platform amd64 image asked for as arm64.
      const single = await runCli([
        'run',
        '--image',
        `${host}/busybox:amd64`,
        '--tls-verify',
        'false',
        '--arch',
        'arm64',
        '--state-dir',
        state,
        '--',
        'uname',
        '-m',
      ]);
      expectBuildCellError(single, /arch/);
      expect(single.stderr).toMatch(/arm64/);
      expect(single.stderr).toMatch(/amd64/);

      // A multi-arch index without the requested platform lists what it has.
      const s390 = await runCli([
        'run',
        '--image',
        `${host}/busybox:multi`,
        '--tls-verify',
        'false',
        '--arch',
        's390x',
        '--state-dir',
        state,
        '--',
        'uname',
        '-m',
      ]);
      expectBuildCellError(s390, /s390x/);
      expect(s390.stderr).toMatch(/amd64/);
      expect(s390.stderr).toMatch(/arm64/);

      const http = await runCli(['run', '--image', 'http://x/y', '--state-dir', state, '--', 'uname', '-m']);
      expectBuildCellError(http, /--image/);
      expect(http.stderr).toMatch(/http:\/\/x\/y/);

      const closed = await runCli([
        'run',
        '--image',
        '127.0.0.1:1/busybox:amd64',
        '--tls-verify',
        'false',
        '--state-dir',
        state,
        '--',
        'uname',
        '-m',
      ]);
      expectBuildCellError(closed, /127\.0\.0\.1:1\/busybox:amd64/);
      expect(closed.stderr).toMatch(/cannot read the manifest/);
      expect(closed.stderr).toMatch(/connection refused/);

      // TLS verification is on by default: this plain-HTTP registry is refused over HTTPS.
      const tls = await runCli(['run', '--image', `${host}/busybox:amd64`, '--state-dir', state, '--', 'uname', '-m']);
      expectBuildCellError(tls, /busybox:amd64/);
      expect(tls.stderr).toMatch(/https/i);

      // A well-formed digest the registry does not have.
      const unknown = await runCli([
        'run',
        '--image',
        `${host}/busybox@sha256:${'0'.repeat(64)}`,
        '--tls-verify',
        'false',
        '--state-dir',
        state,
        '--',
        'uname',
        '-m',
      ]);
      expectBuildCellError(unknown, /sha256:0{64}/);
      expect(unknown.stderr).toMatch(/manifest unknown/);

      // A malformed digest is refused before anything runs.
      const malformed = await runCli([
        'run',
        '--image',
        `${host}/busybox@sha256:abc`,
        '--tls-verify',
        'false',
        '--state-dir',
        state,
        '--',
        'uname',
        '-m',
      ]);
      expectBuildCellError(malformed, /--image.*digest/);

      // None of these left a store entry or a temporary directory behind.
      expect(storeEntries(state)).toEqual(EMPTY_STORE);
    });
  });

  // -------------------------------------------------------------------------------------------
  it('a "registry" that answers garbage: 125 and no half-written store entry', async () => {
    const garbage = await garbageServer();
    try {
      await withStateDir(async (state) => {
        for (const pull of ['missing', 'always']) {
          const r = await runCli([
            'run',
            '--image',
            `${garbage.host}/busybox:latest`,
            '--tls-verify',
            'false',
            '--pull',
            pull,
            '--state-dir',
            state,
            '--',
            'uname',
            '-m',
          ]);
          expectBuildCellError(r, /not a manifest/);
          expect(r.stderr).toContain(`${garbage.host}/busybox:latest`);
          expect(r.stdout).toBe('');
        }
        // build-cell really talked to it.
        expect(garbage.requests().some((q) => q.includes('/v2/'))).toBe(true);
        expect(storeEntries(state)).toEqual(EMPTY_STORE);
        expect(entries(join(state, 'images', 'refs'))).toEqual([]);
      });
    } finally {
      await garbage.close();
    }
  });

  // -------------------------------------------------------------------------------------------
  it('a "registry" that answers `{}` as an OCI manifest: 125 and no store entry that a later run would reuse', async () => {
    // JSON, served with a manifest media type, but not an image: nothing to unpack.
    const garbage = await garbageServer('{}', 'application/vnd.oci.image.manifest.v1+json');
    try {
      await withStateDir(async (state) => {
        const ref = `${garbage.host}/busybox:latest`;
        const first = await runCli([
          'run',
          '--image',
          ref,
          '--tls-verify',
          'false',
          '--state-dir',
          state,
          '--',
          'uname',
          '-m',
        ]);
        expectBuildCellError(first, /./);
        expect(first.stdout).toBe('');
        expect(storeEntries(state), 'store after a failed pull of `{}`').toEqual(EMPTY_STORE);
        expect(entries(join(state, 'images', 'refs'))).toEqual([]);

        // A second attempt must fetch again rather than trust anything the first one kept.
        const seen = garbage.requests().length;
        const second = await runCli([
          'run',
          '--image',
          ref,
          '--tls-verify',
          'false',
          '--state-dir',
          state,
          '--',
          'uname',
          '-m',
        ]);
        expectBuildCellError(second, /./);
        expect(
          garbage
            .requests()
            .slice(seen)
            .some((q) => /\/manifests\/sha256:/.test(q)),
          'second run copied again',
        ).toBe(true);
        expect(storeEntries(state)).toEqual(EMPTY_STORE);
        // The message names the image the user asked for (not only a path inside the store).
        expect(first.stderr).toContain(ref);
      });
    } finally {
      await garbage.close();
    }
  });

  // -------------------------------------------------------------------------------------------
  it('registry credentials: password on stdin, wrong password, --authfile; the secret is never stored, printed or in argv', async () => {
    const password = 's3cret-PASS';
    const username = 'user';
    const basic = Buffer.from(`${username}:${password}`).toString('base64');
    const needles = [password, basic];
    const authRegistry = await startRegistryWithAuth(username, password);
    const work = tempDir('bc-auth-');
    try {
      // A skopeo wrapper that logs its argv and, for every authfile it is given, the file's mode
      // and whether it exists: what `ps` could show, and how the credentials were handed over.
      const bin = join(work, 'bin');
      const log = join(work, 'skopeo.log');
      mkdirSync(bin);
      writeFileSync(log, '');
      writeFileSync(
        join(bin, 'skopeo'),
        [
          '#!/bin/sh',
          `log='${log}'`,
          'printf "argv %s\\n" "$*" >> "$log"',
          'prev=',
          'for a in "$@"; do',
          '  case $prev in --authfile|--src-authfile) printf "authfile %s %s\\n" "$(stat -c %a "$a" 2>&1)" "$a" >> "$log" ;; esac',
          '  prev=$a',
          'done',
          'exec /usr/bin/skopeo "$@"',
          '',
        ].join('\n'),
      );
      chmodSync(join(bin, 'skopeo'), 0o755);
      const env = { ...process.env, PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}` };
      const logLines = () => readFileSync(log, 'utf8').split('\n').filter(Boolean);

      // Self-check of the search used below: it does find the secret where it is.
      const probe = join(work, 'probe', 'nested');
      mkdirSync(probe, { recursive: true });
      writeFileSync(join(probe, 'secret.txt'), `x${password}x`);
      expect(await filesContaining(join(work, 'probe'), needles)).toEqual([join(probe, 'secret.txt')]);
      expect(await filesContaining(join(probe, 'secret.txt'), needles)).toEqual([join(probe, 'secret.txt')]);
      await removeDir(join(work, 'probe'));

      await pushLayout(layout, 'multi', authRegistry.host, 'private/busybox', 'multi', authRegistry.credentials);
      const ref = `${authRegistry.host}/private/busybox:multi`;
      const outputs: CliResult[] = [];

      // No credentials at all: refused by the registry.
      await withStateDir(async (state) => {
        const anon = await runCli(
          ['run', '--image', ref, '--tls-verify', 'false', '--state-dir', state, '--', 'uname', '-m'],
          { env },
        );
        outputs.push(anon);
        expectBuildCellError(anon, /private\/busybox/);
        expect(anon.stderr).toMatch(/unauthorized|authentication required/);
        expect(storeEntries(state)).toEqual(EMPTY_STORE);
      });

      // A wrong password: refused, nothing stored, the wrong password not echoed either.
      await withStateDir(async (state) => {
        const wrong = await runCli(
          [
            'run',
            '--image',
            ref,
            '--tls-verify',
            'false',
            '--registry-username',
            username,
            '--registry-password-stdin',
            '--state-dir',
            state,
            '--',
            'uname',
            '-m',
          ],
          { input: 'wrong-PASS\n', env },
        );
        outputs.push(wrong);
        expectBuildCellError(wrong, /private\/busybox/);
        expect(wrong.stderr).toMatch(/unauthorized|authentication required/);
        expect(wrong.stderr).not.toContain('wrong-PASS');
        expect(storeEntries(state)).toEqual(EMPTY_STORE);
      });

      // The right password on stdin: pulls (manifest read and copy both authenticated) and runs.
      await withStateDir(async (state) => {
        // Verbose, with build-cell's debug log of every tool command line, and a result file.
        const resultFile = join(work, 'result.json');
        const ok = await runCli(
          [
            'run',
            '--image',
            ref,
            '--tls-verify',
            'false',
            '--registry-username',
            username,
            '--registry-password-stdin',
            '--arch',
            'arm64',
            '--verbose',
            '--result-file',
            resultFile,
            '--state-dir',
            state,
            '--',
            'uname',
            '-m',
          ],
          { input: `${password}\n`, env: { ...env, BUILD_CELL_DEBUG: '1' } },
        );
        outputs.push(ok);
        expectOk(ok);
        expect(ok.stdout).toBe('aarch64\n');
        expect(ok.stderr, 'the debug log shows the skopeo calls').toMatch(/skopeo/);
        expect(existsSync(resultFile)).toBe(true);
        expect(await filesContaining(resultFile, needles)).toEqual([]);
        const prep = await runCli(
          [
            'prepare',
            '--image',
            ref,
            '--tls-verify',
            'false',
            '--registry-username',
            username,
            '--registry-password-stdin',
            '--pull',
            'always',
            '--state-dir',
            state,
          ],
          { input: `${password}\n`, env },
        );
        outputs.push(prep);
        expectOk(prep);
        expect(prep.stdout).toMatch(/^sha256:[0-9a-f]{64} \//);
        // The password from the environment (no stdin) works as well.
        const fromEnv = await runCli(
          [
            'prepare',
            '--image',
            ref,
            '--tls-verify',
            'false',
            '--registry-username',
            username,
            '--pull',
            'always',
            '--state-dir',
            state,
          ],
          { env: { ...env, BUILD_CELL_REGISTRY_PASSWORD: password } },
        );
        outputs.push(fromEnv);
        expectOk(fromEnv);
        // Nowhere in the state dir: not the password, not its base64 basic-auth form.
        expect(await filesContaining(state, needles)).toEqual([]);
      });

      // --authfile with a containers-auth.json written here.
      const authFile = join(work, 'auth.json');
      await withStateDir(async (state) => {
        await writeFile(authFile, JSON.stringify({ auths: { [authRegistry.host]: { auth: basic } } }), { mode: 0o600 });
        const viaFile = await runCli(
          [
            'run',
            '--image',
            ref,
            '--tls-verify',
            'false',
            '--authfile',
            authFile,
            '--state-dir',
            state,
            '--',
            'uname',
            '-m',
          ],
          { env },
        );
        outputs.push(viaFile);
        expectOk(viaFile);
        expect(viaFile.stdout).toBe('x86_64\n');
        expect(await filesContaining(state, needles)).toEqual([]);
        // The auth file is read, never rewritten.
        expect(JSON.parse(await readFile(authFile, 'utf8'))).toEqual({
          auths: { [authRegistry.host]: { auth: basic } },
        });

        // An authfile with wrong credentials is refused.
        const badFile = join(work, 'bad-auth.json');
        await writeFile(
          badFile,
          JSON.stringify({
            auths: { [authRegistry.host]: { auth: Buffer.from(`${username}:nope`).toString('base64') } },
          }),
          { mode: 0o600 },
        );
        const refused = await runCli(
          [
            'run',
            '--image',
            ref,
            '--tls-verify',
            'false',
            '--authfile',
            badFile,
            '--pull',
            'always',
            '--state-dir',
            state,
            '--',
            'uname',
            '-m',
          ],
          { env },
        );
        outputs.push(refused);
        expectBuildCellError(refused, /private\/busybox/);
        expect(refused.stderr).toMatch(/unauthorized|authentication required/);
      });

      // How skopeo got the credentials: never in argv; a password became an owner-only
      // temporary auth file (which existed while skopeo ran), --authfile was passed as is.
      const lines = logLines();
      const argvLines = lines.filter((l) => l.startsWith('argv '));
      expect(argvLines.filter((l) => / (inspect|copy) /.test(l)).length).toBeGreaterThanOrEqual(8);
      for (const line of lines) for (const needle of [...needles, 'wrong-PASS']) expect(line).not.toContain(needle);
      const authLines = lines.filter((l) => l.startsWith('authfile '));
      const temporary = authLines.filter((l) => !l.includes(work));
      expect(temporary.length).toBeGreaterThanOrEqual(4); // wrong + right (inspect, copy) + 2 prepares
      for (const line of temporary)
        expect(line, line).toMatch(/^authfile 600 \/\S+\/build-cell-auth-[^/]+\/auth\.json$/);
      expect(authLines.some((l) => l === `authfile 600 ${authFile}`)).toBe(true);

      // The temporary auth files are gone again.
      for (const line of temporary) {
        const file = line.split(' ')[2]!;
        expect(existsSync(file), file).toBe(false);
        expect(existsSync(join(file, '..')), file).toBe(false);
      }
      // Any other build-cell-auth-* dir (another run's) does not hold our secret.
      for (const dir of authDirs()) expect(await filesContaining(dir, needles), dir).toEqual([]);
      for (const out of outputs) {
        for (const needle of needles) {
          expect(out.stdout).not.toContain(needle);
          expect(out.stderr).not.toContain(needle);
        }
      }
    } finally {
      await authRegistry.stop();
      expect(pidAlive(authRegistry.pid)).toBe(false);
      await removeDir(work);
    }
  });

  // -------------------------------------------------------------------------------------------
  it('prepare prints DIGEST ROOTFS, and a later run --pull never works offline', async () => {
    const work = tempDir('bc-prepare-');
    try {
      const tools = toolLog(work);
      await withStateDir(async (state) => {
        const ref = `${host}/busybox:arm64`;
        const prep = await runCli(
          ['prepare', '--image', ref, '--tls-verify', 'false', '--arch', 'arm64', '--state-dir', state],
          { env: tools.env },
        );
        expectOk(prep);
        const match = /^(sha256:[0-9a-f]{64}) (\/\S+)\n$/.exec(prep.stdout);
        expect(match, `stdout: ${JSON.stringify(prep.stdout)}`).not.toBeNull();
        const [, digest, rootfs] = match!;
        expect(digest).toBe(sha256(await rawManifest(`docker://${ref}`)));
        expect(rootfs).toBe(join(state, 'images', 'rootfs', `arm64-${digest!.slice(7)}`));
        expect(statSync(join(rootfs!, 'bin', 'busybox')).isFile()).toBe(true);
        const prepared = tools.lines();
        expect(prepared.some((l) => l.startsWith('skopeo copy'))).toBe(true);
        expect(prepared.some((l) => l.startsWith('umoci '))).toBe(true);

        // A second prepare reuses everything.
        const again = await runCli(
          ['prepare', '--image', ref, '--tls-verify', 'false', '--arch', 'arm64', '--state-dir', state],
          { env: tools.env },
        );
        expectOk(again);
        expect(again.stdout).toBe(prep.stdout);
        expect(tools.lines()).toEqual(prepared);

        const offline = await runCli(
          [
            'run',
            '--image',
            ref,
            '--arch',
            'arm64',
            '--pull',
            'never',
            '--network',
            'disabled',
            '--state-dir',
            state,
            '--',
            'uname',
            '-m',
          ],
          { env: tools.env },
        );
        expectOk(offline);
        expect(offline.stdout).toBe('aarch64\n');
        expect(tools.lines()).toEqual(prepared);

        // prepare --pull never of what is stored prints the same line without any tool call.
        const never = await runCli(
          ['prepare', '--image', ref, '--arch', 'arm64', '--pull', 'never', '--state-dir', state],
          { env: tools.env },
        );
        expectOk(never);
        expect(never.stdout).toBe(prep.stdout);
        expect(tools.lines()).toEqual(prepared);
      });
    } finally {
      await removeDir(work);
    }
  });
});
