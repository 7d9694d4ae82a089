/**
 * src/tools: the pinned table, .deb parsing and extraction, sha256 checks, and the order in
 * which resolveTools looks for tools (PATH, tool cache, download), all without network: a
 * local HTTP server on 127.0.0.1 plays the tools source, tiny packages are built here with
 * dpkg-deb (or written byte by byte), and fake tools are shell scripts.
 *
 * @actions/tool-cache 4 reads RUNNER_TOOL_CACHE and RUNNER_TEMP from process.env when called
 * (find/cacheFile/downloadTool), not at import, so each test just points RUNNER_TOOL_CACHE at a
 * fresh directory.
 */
import * as tc from '@actions/tool-cache';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { arch as osArch, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { resolveArch } from '../../src/emulation/arch.js';
import { UserError } from '../../src/util/errors.js';
import { which } from '../../src/util/which.js';
import { AR_MAGIC, extractDebMembers, findDataMember, readArMembers } from '../../src/tools/deb.js';
import {
  DEFAULT_TOOLS_SOURCE,
  PINNED,
  QEMU_PINS,
  checkToolsSource,
  debianArch,
  describeQemuChoice,
  parseQemuVersion,
  qemuMember,
  qemuPinFor,
  pinFor,
  poolUrl,
  snapshotUrl,
  toolCacheVersion,
  type PinnedDeb,
} from '../../src/tools/pinned.js';
import {
  ChecksumMismatchError,
  defaultToolCacheDir,
  provisionFromDeb,
  resolveTools,
  sha256File,
  verifySha256,
} from '../../src/tools/resolve.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CACHED_DEBS = join(REPO_ROOT, 'test', '.cache', 'debs');
const hasDpkgDeb = !!which('dpkg-deb');
const hasTar = !!which('tar');
const ARM64 = resolveArch('arm64');
const hostPins = !!pinFor('umoci');

let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'build-cell-tools-unit-'));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

let counter = 0;
async function freshDir(label: string): Promise<string> {
  const dir = join(scratch, `${label}-${++counter}`);
  await mkdir(dir, { recursive: true });
  return dir;
}

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

// --- building packages ---------------------------------------------------------------------

/** Build a .deb with dpkg-deb from `files` (path -> [content, mode]). */
async function buildDeb(
  files: Record<string, [string, number]>,
  compression: 'xz' | 'gzip' | 'zstd' | 'none' = 'xz',
): Promise<string> {
  const dir = await freshDir('debroot');
  await mkdir(join(dir, 'DEBIAN'));
  await writeFile(
    join(dir, 'DEBIAN', 'control'),
    'Package: tiny\nVersion: 1.0-1\nArchitecture: all\nMaintainer: Test <test@example.invalid>\nDescription: tiny test package\n',
  );
  for (const [path, [content, mode]] of Object.entries(files)) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), content);
    await chmod(join(dir, path), mode);
  }
  const out = join(await freshDir('deb'), `tiny-${compression}.deb`);
  execFileSync('dpkg-deb', ['--root-owner-group', `-Z${compression}`, '--build', dir, out], { stdio: 'pipe' });
  return out;
}

/** Write an ar archive by hand (optionally with GNU-style "name/" member names). */
async function writeAr(path: string, members: { name: string; data: Buffer }[], gnuNames = false): Promise<void> {
  const parts: Buffer[] = [Buffer.from(AR_MAGIC, 'latin1')];
  for (const { name, data } of members) {
    const field = (value: string, width: number) => value.padEnd(width, ' ').slice(0, width);
    const header =
      field(gnuNames ? `${name}/` : name, 16) +
      field('0', 12) +
      field('0', 6) +
      field('0', 6) +
      field('100644', 8) +
      field(String(data.length), 10) +
      '`\n';
    parts.push(Buffer.from(header, 'latin1'), data);
    if (data.length % 2) parts.push(Buffer.from('\n'));
  }
  await writeFile(path, Buffer.concat(parts));
}

const SCRIPT = (text: string) => `#!/bin/sh\necho "${text}"\n`;

// --- a local tools source ------------------------------------------------------------------

interface Source {
  url: string;
  requests: string[];
  routes: Map<string, Buffer | number>;
  close(): Promise<void>;
}

async function startSource(): Promise<Source> {
  const requests: string[] = [];
  const routes = new Map<string, Buffer | number>();
  const server: Server = createServer((req, res) => {
    const path = req.url ?? '/';
    requests.push(path);
    const route = routes.get(path) ?? 404;
    if (typeof route === 'number') {
      res.writeHead(route).end();
      return;
    }
    res
      .writeHead(200, { 'content-length': route.length, 'content-type': 'application/vnd.debian.binary-package' })
      .end(route);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    routes,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

// --- environment ---------------------------------------------------------------------------

const savedEnv = { ...process.env };
let toolCache: string;
beforeEach(async () => {
  toolCache = await freshDir('toolcache');
  process.env.RUNNER_TOOL_CACHE = toolCache;
  process.env.RUNNER_TEMP = await freshDir('runnertemp');
});
afterEach(() => {
  for (const name of ['RUNNER_TOOL_CACHE', 'RUNNER_TEMP', 'XDG_CACHE_HOME', 'GITHUB_ACTIONS']) {
    if (savedEnv[name] === undefined) delete process.env[name];
    else process.env[name] = savedEnv[name];
  }
});

/** A PATH lookup restricted to `dirs` (util/which always adds /usr/bin and friends). */
function lookupIn(...dirs: string[]): (name: string) => string | undefined {
  return (name) =>
    dirs.map((dir) => join(dir, name)).find((file) => existsSync(file) && (statSync(file).mode & 0o111) !== 0);
}

async function fakeTools(names: Record<string, string>): Promise<string> {
  const dir = await freshDir('bin');
  for (const [name, body] of Object.entries(names)) {
    await writeFile(join(dir, name), body);
    await chmod(join(dir, name), 0o755);
  }
  return dir;
}

/** Run a direct tool-cache call without its "::debug::" lines on the test output. */
async function quietly<T>(fn: () => Promise<T> | T): Promise<T> {
  // eslint-disable-next-line @typescript-eslint/unbound-method -- put back afterwards; called with stdout as `this`
  const write = process.stdout.write;
  process.stdout.write = (chunk: unknown, ...rest: unknown[]) =>
    typeof chunk === 'string' && chunk.startsWith('::debug::')
      ? true
      : (write as (...a: unknown[]) => boolean).call(process.stdout, chunk, ...rest);
  try {
    return await fn();
  } finally {
    process.stdout.write = write;
  }
}

/** Put a fake `name` into the tool cache under the version of its pin, as a download would. */
async function seedToolCache(name: string, pin: PinnedDeb, body = SCRIPT(`${name} from tool cache`)): Promise<string> {
  const file = join(await freshDir('seed'), name);
  await writeFile(file, body);
  await chmod(file, 0o755);
  return quietly(() => tc.cacheFile(file, name, name, toolCacheVersion(pin.version), osArch()));
}

// -------------------------------------------------------------------------------------------

describe('pinned table', () => {
  it('has a version, pool path, sha256, size and snapshot per package and runner architecture', () => {
    for (const pkg of ['qemu-user-static', 'umoci'] as const) {
      for (const arch of ['amd64', 'arm64'] as const) {
        const pin = PINNED[pkg][arch];
        expect(pin.package).toBe(pkg);
        expect(pin.arch).toBe(arch);
        expect(pin.sha256).toMatch(/^[0-9a-f]{64}$/);
        expect(pin.size).toBeGreaterThan(100_000);
        expect(pin.snapshot).toMatch(/^\d{8}T\d{6}Z$/);
        const upstreamAndRevision = pin.version.replace(/^\d+:/, '');
        expect(pin.pool).toBe(
          `pool/main/${pkg === 'umoci' ? 'u/umoci' : 'q/qemu'}/${pkg}_${upstreamAndRevision}_${arch}.deb`,
        );
      }
    }
    expect(PINNED.umoci.amd64.needsGlibc).toBe('2.34');
    expect(PINNED['qemu-user-static'].amd64.needsGlibc).toBeUndefined();
  });

  it('pins two qemu builds per runner architecture, each with a tool-cache version of its own', () => {
    expect(QEMU_PINS['7.2']).toBe(PINNED['qemu-user-static']);
    for (const arch of ['amd64', 'arm64'] as const) {
      const pin = QEMU_PINS['10.0'][arch];
      expect(pin).toMatchObject({ package: 'qemu-user', arch, qemuSuffix: '' });
      expect(pin.version).toMatch(/^1:10\.0\./);
      expect(pin.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(pin.pool).toBe(`pool/main/q/qemu/qemu-user_${pin.version.replace(/^\d+:/, '')}_${arch}.deb`);
      expect(toolCacheVersion(pin.version)).not.toBe(toolCacheVersion(QEMU_PINS['7.2'][arch].version));
      expect(qemuMember(pin, 'qemu-aarch64-static')).toBe('usr/bin/qemu-aarch64');
      expect(qemuMember(QEMU_PINS['7.2'][arch], 'qemu-aarch64-static')).toBe('usr/bin/qemu-aarch64-static');
    }
    expect(qemuPinFor('10.0', 'arm64')).toBe(QEMU_PINS['10.0'].arm64);
    expect(qemuPinFor('7.2', 's390x')).toBeUndefined();
    expect(describeQemuChoice('10.0')).toMatch(/^10\.0 \(Debian qemu-user 1:10\.0\./);
    expect(describeQemuChoice('path')).toMatch(/^path /);
  });

  it('parses --qemu / the qemu input: 7.2, 10.0 or path, naming the field otherwise', () => {
    expect(parseQemuVersion(undefined, 'qemu')).toBeUndefined();
    expect(parseQemuVersion(' ', 'qemu')).toBeUndefined();
    expect(parseQemuVersion('7.2', 'qemu')).toBe('7.2');
    expect(parseQemuVersion(' 10.0\n', '--qemu')).toBe('10.0');
    expect(parseQemuVersion('path', 'qemu')).toBe('path');
    for (const bad of ['10', '9.2', 'latest', 'PATH', '/usr/bin/qemu-aarch64-static']) {
      const error = (() => {
        try {
          parseQemuVersion(bad, '--qemu');
        } catch (e) {
          return e as UserError;
        }
      })();
      expect(error).toBeInstanceOf(UserError);
      expect(error!.message).toContain('--qemu');
      expect(error!.message).toContain('7.2');
      expect(error!.message).toContain('10.0');
    }
  });

  it('checks a tools source once for the action, the CLI and the resolver', () => {
    expect(checkToolsSource(' http://127.0.0.1:9/debian// ', '--tools-source')).toBe('http://127.0.0.1:9/debian');
    for (const bad of ['ftp://mirror/debian', 'http:///debian', 'https://mirror/de bian', 'deb.debian.org']) {
      expect(() => checkToolsSource(bad, 'tools-source')).toThrow(/^tools-source: must be an http\(s\) URL/);
    }
  });

  it('maps Node architectures to Debian ones', () => {
    expect(debianArch('x64')).toBe('amd64');
    expect(debianArch('arm64')).toBe('arm64');
    expect(debianArch('arm')).toBe('armhf');
    expect(debianArch('ppc64')).toBe('ppc64el');
    expect(() => debianArch('sparc')).toThrow(UserError);
    expect(pinFor('umoci', 'x64')).toBe(PINNED.umoci.amd64);
    expect(pinFor('qemu-user-static', 'arm64')).toBe(PINNED['qemu-user-static'].arm64);
    expect(pinFor('umoci', 's390x')).toBeUndefined();
  });

  it('builds URLs on the tools source and on the snapshot archive', () => {
    const pin = PINNED.umoci.amd64;
    expect(poolUrl(`${DEFAULT_TOOLS_SOURCE}/`, pin)).toBe(`https://deb.debian.org/debian/${pin.pool}`);
    expect(snapshotUrl(pin)).toBe(`https://snapshot.debian.org/archive/debian/${pin.snapshot}/${pin.pool}`);
    expect(snapshotUrl(pin, 'http://127.0.0.1:1/snap/')).toBe(`http://127.0.0.1:1/snap/${pin.snapshot}/${pin.pool}`);
  });

  it('turns Debian versions into semver that tool-cache can find', async () => {
    expect(toolCacheVersion('1:7.2+dfsg-7+deb12u18+b3')).toBe('7.2.0-deb-1-7-2-dfsg-7-deb12u18-b3');
    expect(toolCacheVersion('0.4.7+ds-3+b7')).toBe('0.4.7-deb-0-4-7-ds-3-b7');
    expect(toolCacheVersion('2')).toBe('2.0.0-deb-2');
    expect(toolCacheVersion('1.02~rc1-1')).toBe('1.2.0-deb-1-02-rc1-1');
    for (const version of ['1:7.2+dfsg-7+deb12u18+b3', '0.4.7+ds-3+b7', '1.02~rc1-1']) {
      expect(await quietly(() => tc.isExplicitVersion(toolCacheVersion(version)))).toBe(true);
      const file = join(await freshDir('v'), 'tool');
      await writeFile(file, 'x');
      const dir = await quietly(() => tc.cacheFile(file, 'tool', 'semver-check', toolCacheVersion(version), osArch()));
      expect(await quietly(() => tc.find('semver-check', toolCacheVersion(version), osArch()))).toBe(dir);
    }
  });
});

describe('.deb parsing and extraction', () => {
  const compressions = ['xz', 'gzip', 'zstd', 'none'] as const;
  const dataName = { xz: 'data.tar.xz', gzip: 'data.tar.gz', zstd: 'data.tar.zst', none: 'data.tar' };

  it.skipIf(!hasDpkgDeb || !hasTar).each(compressions)(
    'reads the ar members of a dpkg-deb package (%s) and extracts chosen files',
    async (compression) => {
      const deb = await buildDeb(
        {
          'usr/bin/hello': [SCRIPT('hello'), 0o755],
          'usr/share/doc/tiny/README': ['readme\n', 0o644],
          'usr/bin/other': [SCRIPT('other'), 0o755],
        },
        compression,
      );
      const members = await readArMembers(deb);
      expect(members.map((m) => m.name)).toEqual([
        'debian-binary',
        `control.${dataName[compression].slice(5)}`,
        dataName[compression],
      ]);
      const bytes = readFileSync(deb);
      expect(bytes.subarray(members[0]!.offset, members[0]!.offset + members[0]!.size).toString()).toBe('2.0\n');
      // The member boundaries agree with binutils' ar where it is installed.
      if (which('ar')) {
        for (const member of members) {
          const viaAr = execFileSync('ar', ['p', deb, member.name], { maxBuffer: 1 << 26 });
          expect(sha256(bytes.subarray(member.offset, member.offset + member.size))).toBe(sha256(viaAr));
        }
      }
      expect((await findDataMember(deb)).name).toBe(dataName[compression]);

      const dest = await freshDir('extract');
      const out = await extractDebMembers(deb, dest, ['usr/bin/hello', './usr/share/doc/tiny/README']);
      expect(out).toEqual({
        'usr/bin/hello': join(dest, 'usr/bin/hello'),
        'usr/share/doc/tiny/README': join(dest, 'usr/share/doc/tiny/README'),
      });
      expect(execFileSync(join(dest, 'usr/bin/hello')).toString()).toBe('hello\n');
      expect(readFileSync(join(dest, 'usr/share/doc/tiny/README'), 'utf8')).toBe('readme\n');
      expect(existsSync(join(dest, 'usr/bin/other'))).toBe(false);
    },
  );

  it.skipIf(!hasDpkgDeb || !hasTar)('names the files a package does not have', async () => {
    const deb = await buildDeb({ 'usr/bin/hello': [SCRIPT('hello'), 0o755] });
    await expect(extractDebMembers(deb, await freshDir('x'), ['usr/bin/nope'])).rejects.toThrow(
      `${deb} has no file usr/bin/nope`,
    );
    await expect(extractDebMembers(deb, await freshDir('x'), ['usr/bin/hello', 'usr/bin/nope'])).rejects.toThrow(
      /has no file usr\/bin\/nope$/,
    );
    await expect(extractDebMembers(deb, await freshDir('x'), ['../etc/passwd'])).rejects.toThrow(
      /invalid package member path/,
    );
  });

  it.skipIf(!hasDpkgDeb)('falls back to dpkg-deb -x when tar cannot decompress the data tarball', async () => {
    const deb = await buildDeb({ 'usr/bin/hello': [SCRIPT('hello'), 0o755] }, 'zstd');
    const dest = await freshDir('extract');
    const noZstd = (name: string) => (name === 'zstd' ? undefined : which(name));
    await extractDebMembers(deb, dest, ['usr/bin/hello'], { which: noZstd });
    expect(execFileSync(join(dest, 'usr/bin/hello')).toString()).toBe('hello\n');
    expect(statSync(join(dest, 'usr/bin/hello')).mode & 0o777).toBe(0o755);
    await expect(extractDebMembers(deb, await freshDir('x'), ['usr/bin/nope'], { which: noZstd })).rejects.toThrow(
      /has no file usr\/bin\/nope/,
    );
    await expect(
      extractDebMembers(deb, await freshDir('x'), ['usr/bin/hello'], { which: () => undefined }),
    ).rejects.toThrow(/needs `tar` and `zstd` \(or `dpkg-deb`\)/);
  });

  it.skipIf(!hasTar)('handles GNU-style member names, odd sizes and tarballs without "./" names', async () => {
    const root = await freshDir('root');
    await mkdir(join(root, 'usr/bin'), { recursive: true });
    await writeFile(join(root, 'usr/bin/odd'), SCRIPT('odd'));
    await chmod(join(root, 'usr/bin/odd'), 0o755);
    const tarball = join(await freshDir('t'), 'data.tar.gz');
    execFileSync('tar', ['-czf', tarball, '-C', root, 'usr']);
    const deb = join(await freshDir('deb'), 'odd.deb');
    await writeAr(
      deb,
      [
        { name: 'debian-binary', data: Buffer.from('2.0\n') },
        { name: 'control.tar.gz', data: Buffer.from('abc') }, // odd length: one padding byte follows
        { name: 'data.tar.gz', data: readFileSync(tarball) },
      ],
      true,
    );
    const members = await readArMembers(deb);
    expect(members.map((m) => [m.name, m.size])).toEqual([
      ['debian-binary', 4],
      ['control.tar.gz', 3],
      ['data.tar.gz', statSync(tarball).size],
    ]);
    const dest = await freshDir('extract');
    await extractDebMembers(deb, dest, ['usr/bin/odd']);
    expect(execFileSync(join(dest, 'usr/bin/odd')).toString()).toBe('odd\n');
  });

  it('rejects files that are not packages, and truncated ones', async () => {
    const dir = await freshDir('bad');
    await writeFile(join(dir, 'text.deb'), 'hello world, not an archive');
    await expect(readArMembers(join(dir, 'text.deb'))).rejects.toThrow(
      /text\.deb is not a Debian package: it does not start with the ar magic/,
    );
    await writeAr(join(dir, 'whole.deb'), [
      { name: 'debian-binary', data: Buffer.from('2.0\n') },
      { name: 'data.tar.xz', data: Buffer.alloc(1000, 1) },
    ]);
    const whole = readFileSync(join(dir, 'whole.deb'));
    await writeFile(join(dir, 'cut.deb'), whole.subarray(0, whole.length - 10));
    await expect(readArMembers(join(dir, 'cut.deb'))).rejects.toThrow(
      /truncated: member "data.tar.xz" needs 1000 bytes/,
    );
    await writeFile(join(dir, 'cuthdr.deb'), whole.subarray(0, 8 + 60 + 4 + 30));
    await expect(readArMembers(join(dir, 'cuthdr.deb'))).rejects.toThrow(/truncated ar header at byte 72/);
    await writeAr(join(dir, 'nodata.deb'), [
      { name: 'debian-binary', data: Buffer.from('2.0\n') },
      { name: 'control.tar.xz', data: Buffer.from('x') },
    ]);
    await expect(findDataMember(join(dir, 'nodata.deb'))).rejects.toThrow(
      /has no data\.tar member \(members: debian-binary, control\.tar\.xz\)/,
    );
    await writeAr(join(dir, 'other.a'), [{ name: 'foo.o', data: Buffer.from('x') }]);
    await expect(findDataMember(join(dir, 'other.a'))).rejects.toThrow(/first ar member is "foo.o", not debian-binary/);
    await expect(readArMembers(join(dir, 'missing.deb'))).rejects.toThrow(/cannot open Debian package/);
  });

  const cachedUmoci = join(CACHED_DEBS, `umoci_${PINNED.umoci.amd64.version.replace(/:/g, '%3a')}_amd64.deb`);
  it.skipIf(!existsSync(cachedUmoci))('reads a real Debian package (cached under test/.cache/debs)', async () => {
    const members = await readArMembers(cachedUmoci);
    expect(members.map((m) => m.name)).toEqual(['debian-binary', 'control.tar.xz', 'data.tar.xz']);
    expect(members.reduce((sum, m) => sum + 60 + m.size + (m.size % 2), 8)).toBe(statSync(cachedUmoci).size);
  });
});

describe('sha256 checks', () => {
  it('hashes files by streaming', async () => {
    const file = join(await freshDir('h'), 'f');
    const data = Buffer.alloc(3 * 1024 * 1024 + 7, 'ab');
    await writeFile(file, data);
    expect(await sha256File(file)).toBe(sha256(data));
  });

  it('a mismatch names the URL, both sha256s and the path, and deletes the file', async () => {
    const file = join(await freshDir('h'), 'download.deb');
    await writeFile(file, 'not the package');
    const expected = 'a'.repeat(64);
    const error = await verifySha256(file, expected.toUpperCase(), {
      url: 'https://mirror.example/debian/pool/x.deb',
      expectedSize: 1234,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ChecksumMismatchError);
    const mismatch = error as ChecksumMismatchError;
    expect(mismatch.message).toBe(
      `checksum mismatch for https://mirror.example/debian/pool/x.deb: expected sha256 ${expected}, got sha256 ${sha256('not the package')} ` +
        `(15 bytes instead of 1234; downloaded to ${file}, now deleted). The tools source did not serve the pinned Debian package: refusing to use it. ` +
        'Check the tools-source mirror and any proxy in between.',
    );
    expect([mismatch.expected, mismatch.actual, mismatch.url, mismatch.path]).toEqual([
      expected,
      sha256('not the package'),
      'https://mirror.example/debian/pool/x.deb',
      file,
    ]);
    expect(existsSync(file)).toBe(false);
    await writeFile(file, 'ok');
    await expect(verifySha256(file, sha256('ok'), { url: 'u' })).resolves.toBeUndefined();
  });
});

describe.skipIf(!hasDpkgDeb || !hasTar)('provisionFromDeb (download, verify, extract, cache)', () => {
  let source: Source;
  let deb: Buffer;
  let pin: PinnedDeb;
  beforeAll(async () => {
    source = await startSource();
    deb = readFileSync(
      await buildDeb({
        'usr/bin/tinytool': [SCRIPT('tinytool 1.0'), 0o755],
        'usr/bin/broken': ['#!/bin/sh\nexit 3\n', 0o755],
      }),
    );
    pin = {
      package: 'umoci',
      version: '1:1.0-1+b1',
      arch: 'amd64',
      pool: 'pool/main/t/tiny/tiny_1.0-1+b1_amd64.deb',
      sha256: sha256(deb),
      size: deb.length,
      snapshot: '20240101T000000Z',
    };
  });
  afterAll(() => source.close());
  beforeEach(() => {
    source.routes.clear();
    source.requests.length = 0;
  });

  it('caches the extracted binary under its name and the Debian version, marked complete', async () => {
    source.routes.set(`/debian/${pin.pool}`, deb);
    const logs: string[] = [];
    const out = await provisionFromDeb(pin, [{ name: 'tinytool', member: 'usr/bin/tinytool' }], {
      source: `${source.url}/debian/`,
      snapshotSource: false,
      log: (m) => logs.push(m),
    });
    const dir = join(toolCache, 'tinytool', toolCacheVersion(pin.version), osArch());
    expect(out).toEqual({ tinytool: join(dir, 'tinytool') });
    expect(existsSync(`${dir}.complete`)).toBe(true);
    expect(await quietly(() => tc.find('tinytool', toolCacheVersion(pin.version)))).toBe(dir);
    expect(execFileSync(out.tinytool!).toString()).toBe('tinytool 1.0\n');
    expect(source.requests).toEqual([`/debian/${pin.pool}`]);
    expect(logs).toEqual([
      `umoci: downloading ${source.url}/debian/${pin.pool} (0.0 MB)`,
      `umoci: sha256 ${pin.sha256} verified`,
      `tinytool: cached ${out.tinytool} (Debian umoci 1:1.0-1+b1, tool cache version 1.0.0-deb-1-1-0-1-b1)`,
    ]);
    // Nothing is left in the temp dir.
    expect(await readdir(process.env.RUNNER_TEMP!)).toEqual([]);
  });

  it('falls back to the snapshot archive when the tools source lacks the file', async () => {
    source.routes.set(`/snapshot/${pin.snapshot}/${pin.pool}`, deb);
    const logs: string[] = [];
    const out = await provisionFromDeb(pin, [{ name: 'tinytool', member: 'usr/bin/tinytool' }], {
      source: `${source.url}/debian`,
      snapshotSource: `${source.url}/snapshot`,
      log: (m) => logs.push(m),
    });
    expect(existsSync(out.tinytool!)).toBe(true);
    expect(source.requests).toEqual([`/debian/${pin.pool}`, `/snapshot/${pin.snapshot}/${pin.pool}`]);
    expect(logs[1]).toBe(
      `umoci: download from ${source.url}/debian/${pin.pool} failed (Unexpected HTTP response: 404); trying ${source.url}/snapshot/${pin.snapshot}/${pin.pool}`,
    );
  });

  it('a checksum mismatch is a hard error: no fallback, nothing cached', async () => {
    const bad = Buffer.from(deb);
    bad[bad.length - 100] = bad[bad.length - 100]! ^ 0xff;
    source.routes.set(`/debian/${pin.pool}`, bad);
    source.routes.set(`/snapshot/${pin.snapshot}/${pin.pool}`, deb);
    const error = await provisionFromDeb(pin, [{ name: 'tinytool', member: 'usr/bin/tinytool' }], {
      source: `${source.url}/debian`,
      snapshotSource: `${source.url}/snapshot`,
      log: () => undefined,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ChecksumMismatchError);
    expect((error as Error).message).toContain(
      `checksum mismatch for ${source.url}/debian/${pin.pool}: expected sha256 ${pin.sha256}, got sha256 ${sha256(bad)}`,
    );
    expect(source.requests).toEqual([`/debian/${pin.pool}`]);
    expect(await readdir(toolCache)).toEqual([]);
    expect(await readdir(process.env.RUNNER_TEMP!)).toEqual([]);
  });

  it('reports every source that failed', async () => {
    const error = await provisionFromDeb(pin, [{ name: 'tinytool', member: 'usr/bin/tinytool' }], {
      source: `${source.url}/debian`,
      snapshotSource: `${source.url}/snapshot`,
      log: () => undefined,
    }).catch((e: unknown) => e);
    expect((error as Error).message).toBe(
      `cannot download Debian's umoci 1:1.0-1+b1 (amd64): ${source.url}/debian/${pin.pool}: Unexpected HTTP response: 404; ` +
        `${source.url}/snapshot/${pin.snapshot}/${pin.pool}: Unexpected HTTP response: 404. ` +
        `Set tools-source to a Debian archive mirror that has ${pin.pool}, or put the tools on PATH.`,
    );
    expect(await readdir(toolCache)).toEqual([]);
  });

  it('does not cache a binary that does not run', async () => {
    source.routes.set(`/debian/${pin.pool}`, deb);
    await expect(
      provisionFromDeb(
        pin,
        [
          { name: 'tinytool', member: 'usr/bin/tinytool' },
          { name: 'broken', member: 'usr/bin/broken' },
        ],
        { source: `${source.url}/debian`, snapshotSource: false, log: () => undefined },
      ),
    ).rejects.toThrow(
      /^broken from Debian's umoci 1:1.0-1\+b1 does not run on this host: `.*\/usr\/bin\/broken --version` exited with 3; install broken with the system package manager instead$/,
    );
    expect(await readdir(toolCache)).toEqual([]);
  });

  it('refuses a package whose glibc requirement the host does not meet', async () => {
    source.routes.set(`/debian/${pin.pool}`, deb);
    await expect(
      provisionFromDeb({ ...pin, needsGlibc: '99.1' }, [{ name: 'tinytool', member: 'usr/bin/tinytool' }], {
        source: `${source.url}/debian`,
        snapshotSource: false,
        log: () => undefined,
      }),
    ).rejects.toThrow(/tinytool: Debian's umoci 1:1.0-1\+b1 needs glibc >= 99\.1, this host has 2\.\d+/);
    expect(source.requests).toEqual([]);
  });
});

describe.skipIf(!hostPins)('resolveTools: PATH, then tool cache, then download', () => {
  let source: Source;
  beforeAll(async () => {
    source = await startSource();
  });
  afterAll(() => source.close());
  beforeEach(() => {
    source.routes.clear();
    source.requests.length = 0;
  });
  const umociPin = () => pinFor('umoci')!;
  const qemuPin = () => pinFor('qemu-user-static')!;

  it('takes tools from PATH first, and needs no tool-cache dirs on PATH', async () => {
    const bin = await fakeTools({
      skopeo: SCRIPT('skopeo'),
      umoci: SCRIPT('umoci'),
      'qemu-aarch64-static': SCRIPT('qemu'),
    });
    await seedToolCache('umoci', umociPin());
    const logs: string[] = [];
    const tools = await resolveTools({
      qemu: [ARM64, ARM64],
      source: source.url,
      log: (m) => logs.push(m),
      onPath: lookupIn(bin),
    });
    expect(tools).toEqual({
      skopeo: join(bin, 'skopeo'),
      umoci: join(bin, 'umoci'),
      qemu: { 'qemu-aarch64-static': join(bin, 'qemu-aarch64-static') },
      dirsToAddToPath: [],
    });
    expect(logs).toEqual([
      `skopeo: using ${join(bin, 'skopeo')} (from PATH)`,
      `umoci: using ${join(bin, 'umoci')} (from PATH)`,
      `qemu-aarch64-static: using ${join(bin, 'qemu-aarch64-static')} (from PATH)`,
    ]);
    expect(source.requests).toEqual([]);
  });

  it('then the tool cache (entries under the pinned Debian version), whose dirs are to be added to PATH', async () => {
    const bin = await fakeTools({ skopeo: SCRIPT('skopeo') });
    const umociDir = await seedToolCache('umoci', umociPin());
    const qemuDir = await seedToolCache('qemu-aarch64-static', qemuPin());
    const logs: string[] = [];
    const tools = await resolveTools({
      qemu: [ARM64],
      source: source.url,
      log: (m) => logs.push(m),
      onPath: lookupIn(bin),
    });
    expect(tools).toEqual({
      skopeo: join(bin, 'skopeo'),
      umoci: join(umociDir, 'umoci'),
      qemu: { 'qemu-aarch64-static': join(qemuDir, 'qemu-aarch64-static') },
      dirsToAddToPath: [umociDir, qemuDir],
    });
    expect(umociDir).toBe(join(toolCache, 'umoci', toolCacheVersion(umociPin().version), osArch()));
    expect(logs[1]).toBe(
      `umoci: using ${join(umociDir, 'umoci')} (from the tool cache, Debian umoci ${umociPin().version})`,
    );
    expect(logs[2]).toBe(
      `qemu-aarch64-static: using ${join(qemuDir, 'qemu-aarch64-static')} (from the tool cache, Debian qemu-user-static ${qemuPin().version})`,
    );
    expect(source.requests).toEqual([]);
  });

  it('skips a PATH binary or a tool-cache entry that does not run', async () => {
    const bin = await fakeTools({
      skopeo: SCRIPT('skopeo'),
      umoci: '#!/bin/sh\necho "umoci: GLIBC_2.99 not found" >&2\nexit 1\n',
    });
    const good = await seedToolCache('umoci', umociPin());
    await seedToolCache('qemu-aarch64-static', qemuPin(), '#!/bin/sh\nexit 7\n');
    const logs: string[] = [];
    source.routes.set(`/debian/${qemuPin().pool}`, 404);
    const error = await resolveTools({
      qemu: [ARM64],
      source: `${source.url}/debian`,
      snapshotSource: false,
      log: (m) => logs.push(m),
      onPath: lookupIn(bin),
    }).catch((e: unknown) => e);
    expect(logs[1]).toBe(
      `umoci: ${join(bin, 'umoci')} is on PATH but does not run (\`${join(bin, 'umoci')} --version\` exited with 1: umoci: GLIBC_2.99 not found); looking further`,
    );
    expect(logs[2]).toBe(
      `umoci: using ${join(good, 'umoci')} (from the tool cache, Debian umoci ${umociPin().version})`,
    );
    expect(logs[3]).toMatch(
      /^qemu-aarch64-static: the tool cache entry .* does not run \(`.*` exited with 7\); not using it$/,
    );
    expect((error as Error).message).toMatch(
      /^cannot download Debian's qemu-user-static .*Unexpected HTTP response: 404\. Set tools-source to a Debian archive mirror/,
    );
    expect(source.requests).toEqual([`/debian/${qemuPin().pool}`]);
  });

  it('then downloads from the tools source, then from the snapshot archive', async () => {
    const bin = await fakeTools({ skopeo: SCRIPT('skopeo') });
    const logs: string[] = [];
    const error = await resolveTools({
      source: `${source.url}/mirror/debian/`,
      snapshotSource: `${source.url}/snap`,
      log: (m) => logs.push(m),
      onPath: lookupIn(bin),
    }).catch((e: unknown) => e);
    const pin = umociPin();
    expect(source.requests).toEqual([`/mirror/debian/${pin.pool}`, `/snap/${pin.snapshot}/${pin.pool}`]);
    expect(logs.slice(1, 3)).toEqual([
      `umoci: not on PATH or in the tool cache (${toolCache}); fetching Debian's umoci ${pin.version} (${pin.arch})`,
      `umoci: downloading ${source.url}/mirror/debian/${pin.pool} (${(pin.size / 1e6).toFixed(1)} MB)`,
    ]);
    expect((error as Error).message).toContain(
      `cannot download Debian's umoci ${pin.version} (${pin.arch}): ${source.url}/mirror/debian/${pin.pool}: Unexpected HTTP response: 404; ${source.url}/snap/${pin.snapshot}/${pin.pool}: Unexpected HTTP response: 404.`,
    );
  });

  it('stops at a checksum mismatch, naming both sha256s, and caches nothing', async () => {
    const bin = await fakeTools({ skopeo: SCRIPT('skopeo') });
    const pin = umociPin();
    const bogus = Buffer.from('this is not umoci');
    source.routes.set(`/debian/${pin.pool}`, bogus);
    const error = await resolveTools({
      source: `${source.url}/debian`,
      snapshotSource: `${source.url}/snap`,
      log: () => undefined,
      onPath: lookupIn(bin),
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ChecksumMismatchError);
    expect((error as Error).message).toMatch(
      new RegExp(
        `^checksum mismatch for ${source.url}/debian/${pin.pool.replace(/[.+]/g, '\\$&')}: expected sha256 ${pin.sha256}, got sha256 ${sha256(bogus)} \\(17 bytes instead of ${pin.size}; downloaded to /.*, now deleted\\)`,
      ),
    );
    expect(source.requests).toEqual([`/debian/${pin.pool}`]);
    expect(await readdir(toolCache)).toEqual([]);
  });

  it('rejects a tools source that is not an http(s) URL, and odd qemu names', async () => {
    await expect(resolveTools({ source: 'ftp://mirror/debian' })).rejects.toThrow(UserError);
    await expect(resolveTools({ source: 'ftp://mirror/debian' })).rejects.toThrow(
      /^tools-source: must be an http\(s\) URL/,
    );
    const bin = await fakeTools({ skopeo: SCRIPT('skopeo'), umoci: SCRIPT('umoci') });
    await expect(
      resolveTools({
        source: source.url,
        qemu: [{ ...ARM64, qemu: '../../bin/sh' }],
        onPath: lookupIn(bin),
        log: () => undefined,
      }),
    ).rejects.toThrow(/^qemu: not a qemu-user-static program name/);
  });
});

describe.skipIf(!hostPins)('resolveTools: skopeo', () => {
  it('without skopeo anywhere, says how to install it', async () => {
    const bin = await fakeTools({ umoci: SCRIPT('umoci') });
    await expect(
      resolveTools({ source: DEFAULT_TOOLS_SOURCE, onPath: lookupIn(bin), systemInstall: false, log: () => undefined }),
    ).rejects.toThrow(
      /^skopeo was not found on PATH or in the tool cache\. build-cell cannot download skopeo .*Debian\/Ubuntu: sudo apt-get install -y skopeo/,
    );
    await expect(
      resolveTools({ source: DEFAULT_TOOLS_SOURCE, onPath: lookupIn(bin), log: () => undefined }),
    ).rejects.toThrow(
      /^skopeo was not found on PATH or in the tool cache \(no apt-get to install it with\)\. build-cell cannot download skopeo/,
    );
  });

  it('finds skopeo in the tool cache (any version)', async () => {
    const bin = await fakeTools({ umoci: SCRIPT('umoci') });
    const file = join(await freshDir('s'), 'skopeo');
    await writeFile(file, SCRIPT('skopeo 1.13'));
    await chmod(file, 0o755);
    await quietly(() => tc.cacheFile(file, 'skopeo', 'skopeo', '1.9.3', osArch()));
    const dir = await quietly(() => tc.cacheFile(file, 'skopeo', 'skopeo', '1.13.3', osArch()));
    const tools = await resolveTools({
      source: DEFAULT_TOOLS_SOURCE,
      onPath: lookupIn(bin),
      systemInstall: false,
      log: () => undefined,
    });
    expect(tools.skopeo).toBe(join(dir, 'skopeo'));
    expect(tools.dirsToAddToPath).toEqual([dir]);
  });

  it('as a last resort installs it with apt-get (through sudo -n when not root)', async () => {
    const bin = await freshDir('bin');
    const argsLog = join(bin, 'apt-get.args');
    await writeFile(join(bin, 'umoci'), SCRIPT('umoci'));
    // A fake apt-get: "install" fails until "update" ran (stale lists), then drops a skopeo on PATH.
    await writeFile(
      join(bin, 'apt-get'),
      `#!/bin/sh
echo "$@ DEBIAN_FRONTEND=$DEBIAN_FRONTEND" >> '${argsLog}'
case "$1" in
  update) touch '${bin}/updated' ;;
  install) [ -e '${bin}/updated' ] || { echo "E: Unable to locate package skopeo" >&2; exit 100; }
           printf '#!/bin/sh\\necho skopeo version 1.9.3\\n' > '${bin}/skopeo'; chmod 755 '${bin}/skopeo' ;;
esac
`,
    );
    await writeFile(join(bin, 'sudo'), '#!/bin/sh\n[ "$1" = -n ] && shift\nexec "$@"\n');
    for (const name of ['umoci', 'apt-get', 'sudo']) await chmod(join(bin, name), 0o755);
    const logs: string[] = [];
    const tools = await resolveTools({ source: DEFAULT_TOOLS_SOURCE, onPath: lookupIn(bin), log: (m) => logs.push(m) });
    expect(tools.skopeo).toBe(join(bin, 'skopeo'));
    const viaSudo = process.getuid?.() === 0 ? '' : `${join(bin, 'sudo')} -n `;
    expect(logs[0]).toBe(
      `skopeo: not on PATH or in the tool cache; installing it with the system package manager: ${viaSudo}${join(bin, 'apt-get')} install -y --no-install-recommends skopeo`,
    );
    expect(logs[1]).toBe(
      'skopeo: apt-get install failed (E: Unable to locate package skopeo); running apt-get update and trying again',
    );
    expect(logs[2]).toBe(`skopeo: using ${join(bin, 'skopeo')} (from PATH)`);
    const calls = (await readFile(argsLog, 'utf8')).trim().split('\n');
    expect(calls).toEqual([
      'install -y --no-install-recommends skopeo DEBIAN_FRONTEND=noninteractive',
      'update -q DEBIAN_FRONTEND=noninteractive',
      'install -y --no-install-recommends skopeo DEBIAN_FRONTEND=noninteractive',
    ]);
  });

  it.skipIf(process.getuid?.() === 0)('does not run apt-get when sudo wants a password', async () => {
    const bin = await fakeTools({
      umoci: SCRIPT('umoci'),
      'apt-get': 'exit 1',
      sudo: '#!/bin/sh\necho "sudo: a password is required" >&2\nexit 1\n',
    });
    await expect(
      resolveTools({ source: DEFAULT_TOOLS_SOURCE, onPath: lookupIn(bin), log: () => undefined }),
    ).rejects.toThrow(/\(`sudo -n` needs a password, so apt-get cannot be run\)/);
  });
});

describe.skipIf(!hostPins)('the tool-cache environment outside Actions', () => {
  it('defaults RUNNER_TOOL_CACHE under $XDG_CACHE_HOME/build-cell/tools only during the call, and keeps ::debug:: off stdout', async () => {
    const xdg = await freshDir('xdg');
    delete process.env.RUNNER_TOOL_CACHE;
    delete process.env.RUNNER_TEMP;
    delete process.env.GITHUB_ACTIONS;
    process.env.XDG_CACHE_HOME = xdg;
    expect(defaultToolCacheDir()).toBe(join(xdg, 'build-cell', 'tools'));
    // Seed the default location (tool-cache itself needs the variable for that).
    process.env.RUNNER_TOOL_CACHE = defaultToolCacheDir();
    const dir = await seedToolCache('umoci', pinFor('umoci')!);
    delete process.env.RUNNER_TOOL_CACHE;
    const bin = await fakeTools({ skopeo: SCRIPT('skopeo') });

    const written: string[] = [];
    // eslint-disable-next-line @typescript-eslint/unbound-method -- only saved to be put back
    const write = process.stdout.write;
    process.stdout.write = (chunk: unknown, ...rest: unknown[]) => {
      written.push(String(chunk));
      const callback = rest.find((r): r is () => void => typeof r === 'function');
      callback?.();
      return true;
    };
    let tools: Awaited<ReturnType<typeof resolveTools>>;
    try {
      tools = await resolveTools({ source: DEFAULT_TOOLS_SOURCE, onPath: lookupIn(bin), log: () => undefined });
    } finally {
      process.stdout.write = write;
    }
    expect(tools.umoci).toBe(join(dir, 'umoci'));
    expect(dir.startsWith(join(xdg, 'build-cell', 'tools', 'umoci'))).toBe(true);
    expect(process.env.RUNNER_TOOL_CACHE).toBeUndefined();
    expect(process.env.RUNNER_TEMP).toBeUndefined();
    expect(written.filter((w) => w.startsWith('::debug::'))).toEqual([]);
  });

  it('leaves the workflow commands alone under Actions', async () => {
    process.env.GITHUB_ACTIONS = 'true';
    const dir = await seedToolCache('umoci', pinFor('umoci')!);
    const bin = await fakeTools({ skopeo: SCRIPT('skopeo') });
    const written: string[] = [];
    // eslint-disable-next-line @typescript-eslint/unbound-method -- only saved to be put back
    const write = process.stdout.write;
    process.stdout.write = (chunk: unknown) => (written.push(String(chunk)), true);
    try {
      await resolveTools({ source: DEFAULT_TOOLS_SOURCE, onPath: lookupIn(bin), log: () => undefined });
    } finally {
      process.stdout.write = write;
    }
    expect(written.some((w) => w.startsWith('::debug::checking cache:'))).toBe(true);
    expect(dir.startsWith(toolCache)).toBe(true);
  });
});
