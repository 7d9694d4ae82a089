/**
 * resolveTools against the real pinned Debian packages, served by a local HTTP server on
 * 127.0.0.1 that plays the tools source (and the snapshot archive). The packages are fetched
 * once with `apt-get download PKG:ARCH=VERSION` into test/.cache/debs (gitignored), which also
 * checks that the pinned table still matches Debian's archive. PATH is stripped of umoci and
 * qemu (through resolveTools' onPath), so they must come from a download, then from the cache.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { arch as osArch, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { resolveArch } from '../../src/emulation/arch.js';
import { which } from '../../src/util/which.js';
import { extractDebMembers } from '../../src/tools/deb.js';
import { PINNED, pinFor, toolCacheVersion } from '../../src/tools/pinned.js';
import { DEBS, debFile, ensureDeb, FLIP_AT, startSource, type Source } from '../helpers/tools-source.js';
import { ChecksumMismatchError, resolveTools } from '../../src/tools/resolve.js';

const ARM64 = resolveArch('arm64');
const qemuPin = pinFor('qemu-user-static');
const umociPin = pinFor('umoci');

/** The real PATH lookup, minus umoci and qemu-* (and minus skopeo when asked). */
const withoutOnPath =
  (...hidden: string[]) =>
  (name: string) =>
    hidden.some((h) => (h.endsWith('*') ? name.startsWith(h.slice(0, -1)) : name === h)) ? undefined : which(name);

describe.skipIf(!qemuPin || !umociPin || !which('apt-get') || !which('skopeo'))(
  'resolveTools with the pinned Debian packages',
  () => {
    let scratch: string;
    let source: Source;
    const saved = { cache: process.env.RUNNER_TOOL_CACHE, temp: process.env.RUNNER_TEMP };

    beforeAll(async () => {
      const files = new Map<string, string>();
      for (const pin of [umociPin!, qemuPin!]) files.set(pin.pool, await ensureDeb(pin));
      scratch = await mkdtemp(join(tmpdir(), 'build-cell-tools-it-'));
      source = await startSource(files);
      process.env.RUNNER_TEMP = join(scratch, 'temp');
      await mkdir(process.env.RUNNER_TEMP, { recursive: true });
    }, 600_000);

    afterAll(async () => {
      await source?.close();
      if (scratch) await rm(scratch, { recursive: true, force: true });
      if (saved.cache === undefined) delete process.env.RUNNER_TOOL_CACHE;
      else process.env.RUNNER_TOOL_CACHE = saved.cache;
      if (saved.temp === undefined) delete process.env.RUNNER_TEMP;
      else process.env.RUNNER_TEMP = saved.temp;
    });

    afterEach(() => {
      source.modes.clear();
    });

    it('the pinned table agrees with apt-cache show for both runner architectures', () => {
      const pins = (['qemu-user-static', 'umoci'] as const).flatMap((pkg) => Object.values(PINNED[pkg]));
      const output = execFileSync(
        'apt-cache',
        ['show', ...pins.map((pin) => `${pin.package}:${pin.arch}=${pin.version}`)],
        { maxBuffer: 1 << 24 },
      ).toString();
      const records = output
        .split(/\n\n+/)
        .map((record) => (name: string) => new RegExp(`^${name}: (.*)$`, 'm').exec(record)?.[1]);
      for (const pin of pins) {
        const field = records.find(
          (f) => f('Package') === pin.package && f('Architecture') === pin.arch && f('Version') === pin.version,
        );
        expect(field, `apt-cache has no ${pin.package}:${pin.arch}=${pin.version}`).toBeDefined();
        expect([field!('Filename'), field!('Size'), field!('SHA256')]).toEqual([
          pin.pool,
          String(pin.size),
          pin.sha256,
        ]);
      }
    });

    const cacheA = () => join(scratch, 'toolcache-a');

    it('downloads, verifies and caches umoci and qemu-aarch64-static, which then run', async () => {
      process.env.RUNNER_TOOL_CACHE = cacheA();
      const logs: string[] = [];
      const started = source.requests.length;
      const tools = await resolveTools({
        qemu: [ARM64],
        source: `${source.url}/debian`,
        snapshotSource: `${source.url}/snapshot`,
        log: (m) => logs.push(m),
        onPath: withoutOnPath('umoci', 'qemu-*'),
      });

      const umociDir = join(cacheA(), 'umoci', toolCacheVersion(umociPin!.version), osArch());
      const qemuDir = join(cacheA(), 'qemu-aarch64-static', toolCacheVersion(qemuPin!.version), osArch());
      expect(tools).toEqual({
        skopeo: which('skopeo'),
        umoci: join(umociDir, 'umoci'),
        qemu: { 'qemu-aarch64-static': join(qemuDir, 'qemu-aarch64-static') },
        dirsToAddToPath: [umociDir, qemuDir],
      });
      expect(source.requests.slice(started)).toEqual([`/debian/${umociPin!.pool}`, `/debian/${qemuPin!.pool}`]);
      expect(existsSync(`${umociDir}.complete`) && existsSync(`${qemuDir}.complete`)).toBe(true);
      // Only the one binary of the 35 in qemu-user-static is kept.
      expect(await readdir(qemuDir)).toEqual(['qemu-aarch64-static']);
      expect(logs).toContain(
        `qemu-user-static: downloading ${source.url}/debian/${qemuPin!.pool} (${(qemuPin!.size / 1e6).toFixed(1)} MB)`,
      );
      expect(logs).toContain(`qemu-user-static: sha256 ${qemuPin!.sha256} verified`);
      expect(logs).toContain(`umoci: sha256 ${umociPin!.sha256} verified`);

      const qemuVersion = execFileSync(tools.qemu['qemu-aarch64-static']!, ['--version']).toString();
      expect(qemuVersion).toContain(`(Debian ${qemuPin!.version})`);
      expect(execFileSync(tools.umoci, ['--version']).toString()).toMatch(/umoci version 0\.4\.7/);
      // Nothing left behind in the temp dir.
      expect(await readdir(process.env.RUNNER_TEMP!)).toEqual([]);
    });

    const busybox = join(DEBS, 'busybox-static_1%3a1.35.0-4+deb12u1+b1_arm64.deb');
    it.skipIf(!existsSync(busybox))('the cached qemu-aarch64-static runs an arm64 program', async () => {
      const root = join(scratch, 'busybox');
      const { 'bin/busybox': bin } = await extractDebMembers(busybox, root, ['bin/busybox']);
      const qemu = join(
        cacheA(),
        'qemu-aarch64-static',
        toolCacheVersion(qemuPin!.version),
        osArch(),
        'qemu-aarch64-static',
      );
      expect(execFileSync(qemu, [bin!, 'uname', '-m']).toString().trim()).toBe('aarch64');
    });

    it('a second run takes both from the tool cache without a request', async () => {
      process.env.RUNNER_TOOL_CACHE = cacheA();
      const logs: string[] = [];
      const before = source.requests.length;
      const tools = await resolveTools({
        qemu: [ARM64],
        source: `${source.url}/debian`,
        log: (m) => logs.push(m),
        onPath: withoutOnPath('umoci', 'qemu-*'),
      });
      expect(source.requests.length).toBe(before);
      expect(tools.dirsToAddToPath).toHaveLength(2);
      expect(logs.slice(1)).toEqual([
        `umoci: using ${tools.umoci} (from the tool cache, Debian umoci ${umociPin!.version})`,
        `qemu-aarch64-static: using ${tools.qemu['qemu-aarch64-static']} (from the tool cache, Debian qemu-user-static ${qemuPin!.version})`,
      ]);
    });

    it('a corrupted download is a hard error naming both sha256s, and nothing is cached', async () => {
      const cache = join(scratch, 'toolcache-corrupt');
      process.env.RUNNER_TOOL_CACHE = cache;
      source.modes.set(qemuPin!.pool, 'corrupt');
      const bytes = readFileSync(debFile(qemuPin!));
      bytes[FLIP_AT] = bytes[FLIP_AT]! ^ 0x01;
      const corruptSha = createHash('sha256').update(bytes).digest('hex');
      const before = source.requests.length;

      const error = await resolveTools({
        qemu: [ARM64],
        source: `${source.url}/debian`,
        snapshotSource: `${source.url}/snapshot`,
        log: () => undefined,
        onPath: withoutOnPath('qemu-*'),
      }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ChecksumMismatchError);
      const message = (error as Error).message;
      expect(message).toContain(`checksum mismatch for ${source.url}/debian/${qemuPin!.pool}`);
      expect(message).toContain(`expected sha256 ${qemuPin!.sha256}, got sha256 ${corruptSha}`);
      // Hard error: the snapshot archive (which has the right file) is not tried.
      expect(source.requests.slice(before)).toEqual([`/debian/${qemuPin!.pool}`]);
      expect(existsSync(cache) ? await readdir(cache) : []).toEqual([]);
      expect(await readdir(process.env.RUNNER_TEMP!)).toEqual([]);
    });

    it('falls back to the snapshot archive when the tools source no longer has the version', async () => {
      const cache = join(scratch, 'toolcache-snapshot');
      process.env.RUNNER_TOOL_CACHE = cache;
      source.modes.set(umociPin!.pool, 'missing');
      const logs: string[] = [];
      const before = source.requests.length;
      const tools = await resolveTools({
        source: `${source.url}/debian`,
        snapshotSource: `${source.url}/snapshot`,
        log: (m) => logs.push(m),
        onPath: withoutOnPath('umoci'),
      });
      expect(source.requests.slice(before)).toEqual([
        `/debian/${umociPin!.pool}`,
        `/snapshot/${umociPin!.snapshot}/${umociPin!.pool}`,
      ]);
      expect(tools.umoci).toBe(join(cache, 'umoci', toolCacheVersion(umociPin!.version), osArch(), 'umoci'));
      expect(logs).toContain(
        `umoci: downloading ${source.url}/snapshot/${umociPin!.snapshot}/${umociPin!.pool} (${(umociPin!.size / 1e6).toFixed(1)} MB)`,
      );
      expect(execFileSync(tools.umoci, ['--version']).toString()).toMatch(/umoci version 0\.4\.7/);
    });
  },
);
