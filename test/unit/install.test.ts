/**
 * The install step's pure parts and its layer writer: the key, the install cell's spec, the
 * action's key and request, the tar writer (read back with GNU tar), and the layer of an
 * upper dir (whiteouts for deletions, type changes, hard links, owners), on real temp dirs.
 */
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { resolveArch } from '../../src/emulation/arch.js';
import { installHash, installReference, type InstallKeyParts } from '../../src/install/key.js';
import { scriptCommand } from '../../src/cellspec/types.js';
import { installSpec } from '../../src/install/derive.js';
import { entryHeaders, paxRecord, splitUstarPath, TarWriter } from '../../src/install/tar.js';
import { parseOwnerRecord, removeStaged, scanDeletions, writeLayer } from '../../src/install/layer.js';
import { applyWhiteouts, tarWhiteouts } from '../../src/image/derived-unpack.js';
import { installCacheKey } from '../../src/action/cache-keys.js';
import { toCellRequest } from '../../src/action/inputs-to-request.js';
import { parseInputs, type InputReader } from '../../src/action/inputs.js';
import { describeInstall } from '../../src/action/install-cache.js';
import { baseSpec } from './spec-fixture.js';

const isRoot = process.getuid?.() === 0;
const DIGEST = `sha256:${'a'.repeat(64)}`;
const parts = (overrides: Partial<InstallKeyParts> = {}): InstallKeyParts => ({
  arch: resolveArch('arm64'),
  baseDigest: DIGEST,
  script: 'apt-get install -y gcc',
  shell: 'sh',
  installKey: '',
  envNames: ['A', 'B'],
  ...overrides,
});

describe('installHash', () => {
  it('is stable, and changes with every part that may change the result', () => {
    const base = installHash(parts());
    expect(base).toMatch(/^[a-f0-9]{64}$/);
    expect(installHash(parts())).toBe(base);
    for (const changed of [
      { arch: resolveArch('amd64') },
      { arch: resolveArch('armhf') },
      { baseDigest: `sha256:${'b'.repeat(64)}` },
      { script: 'apt-get install -y gcc ' },
      { shell: 'bash' as const },
      { installKey: 'k' },
      { envNames: ['A'] },
      { envNames: ['A', 'B', 'C'] },
    ])
      expect(installHash(parts(changed)), JSON.stringify(changed)).not.toBe(base);
  });
  it('takes env names in any order and once; never values', () => {
    expect(installHash(parts({ envNames: ['B', 'A', 'A'] }))).toBe(installHash(parts()));
    expect(Object.keys(parts())).not.toContain('envValues');
  });
  it('names the derived image with a reference of its own', () => {
    const ref = installReference('f'.repeat(64));
    expect(ref.full).toBe(`build-cell-install:${'f'.repeat(64)}`);
    expect(ref.original).toBe('install step ffffffffffff');
  });
  it('runs the script as --run scripts run', () => {
    expect(scriptCommand('sh', '/s')).toEqual({ executable: '/bin/sh', argv: ['-e', '/s'] });
    expect(scriptCommand('bash', '/s')).toEqual({
      executable: 'bash',
      argv: ['--noprofile', '--norc', '-eo', 'pipefail', '/s'],
    });
  });
});

describe('installSpec: what the install cell sees', () => {
  const spec = baseSpec({
    workspaceSeed: { kind: 'snapshot', path: '/h/ws' },
    caches: [
      { source: '/h/apt', destination: '/var/cache/apt/archives' },
      { source: '/h/target', destination: '/workspace/target' },
    ],
    limits: { cpuTimeSeconds: 5 },
    network: 'disabled',
  });
  it('has no workspace, imports or exports; the network; no limits; the caches outside the workspace', () => {
    const s = installSpec(spec, { script: 'apt-get install -y hello', key: '', shell: 'sh', keyEnvNames: [] });
    expect(s.workspaceSeed).toEqual({ kind: 'empty' });
    expect(s.imports).toEqual([]);
    expect(s.exports).toEqual([]);
    expect(s.caches).toEqual([{ source: '/h/apt', destination: '/var/cache/apt/archives' }]);
    expect(s.network).toBe('enabled');
    expect(s.limits).toEqual({});
    expect(s.script).toBe('apt-get install -y hello');
    expect(s.command).toEqual({ cwd: '/', executable: '/bin/sh', argv: ['-e', '/.build-cell/run.sh'] });
    expect(s.env).toEqual(spec.env);
  });
  it('takes the env and caches the request gives', () => {
    const s = installSpec(spec, {
      script: 'x',
      key: '',
      shell: 'bash',
      keyEnvNames: [],
      env: [['X', '1']],
      caches: [],
    });
    expect(s.env).toEqual([['X', '1']]);
    expect(s.caches).toEqual([]);
    expect(s.command.executable).toBe('bash');
  });
});

describe('the action and the install step', () => {
  const env = { GITHUB_WORKSPACE: '/home/runner/work/r/r', RUNNER_TEMP: '/home/runner/work/_temp', GITHUB_SHA: 'abc' };
  const reader =
    (values: Record<string, string>): InputReader =>
    (name) =>
      values[name] ?? '';
  const inputs = (values: Record<string, string>) =>
    parseInputs(reader({ image: 'debian:bookworm', run: 'make', ...values }), env);
  it('keys the Actions cache by arch, base digest and the install hash', () => {
    const key = installCacheKey(resolveArch('arm64'), DIGEST, 'c'.repeat(64));
    expect(key).toBe(`build-cell-install-v3-arm64-${'a'.repeat(16)}-${'c'.repeat(32)}`);
    expect(installCacheKey(resolveArch('armhf'), DIGEST, 'c'.repeat(64))).not.toBe(key);
  });
  it('reads install and install-key, and refuses a key without a script', () => {
    expect(inputs({ install: 'apt-get install -y gcc', 'install-key': 'k', shell: 'bash' }).install).toEqual({
      script: 'apt-get install -y gcc',
      key: 'k',
      shell: 'bash',
    });
    expect(inputs({}).install).toBeUndefined();
    expect(() => inputs({ 'install-key': 'k' })).toThrow(/^install-key: needs install/);
  });
  it('gives the install cell the environment less the file commands, and the user caches outside the workspace', () => {
    const i = inputs({ install: 'x', env: 'A=1\nB=2', caches: '/var/cache/apt\n/workspace/target' });
    const request = toCellRequest(i, {
      env,
      runnerTemp: env.RUNNER_TEMP,
      fileCommandsDir: '/t/fc',
      cacheDirs: ['/t/c0', '/t/c1'],
      installCacheDir: '/t/ic',
    });
    const install = request.install!;
    expect(install.keyEnvNames).toEqual(['A', 'B']);
    expect(install.env!.map(([n]) => n)).toEqual(expect.arrayContaining(['A', 'B', 'GITHUB_SHA', 'GITHUB_WORKSPACE']));
    expect(install.env!.map(([n]) => n)).not.toContain('GITHUB_OUTPUT');
    expect(install.caches).toEqual([{ source: '/t/c0', destination: '/var/cache/apt' }]);
    expect(install.cacheDir).toBe('/t/ic');
    expect(request.spec.caches.map((c) => c.destination)).toEqual([
      '/var/cache/apt',
      '/workspace/target',
      '/github/file_commands',
    ]);
  });
  it('says in the summary whether the install ran, with its time, or where it came from', () => {
    const r = { digest: DIGEST, baseDigest: DIGEST, hash: 'h' };
    expect(
      describeInstall({ ...r, ran: true, source: 'ran', seconds: 35.25 }, { key: 'k', dir: '/d', hit: false }),
    ).toBe('ran in 35.3 s, saved to the Actions cache');
    expect(describeInstall({ ...r, ran: false, source: 'cache' }, undefined)).toMatch(
      /restored from the Actions cache/,
    );
    expect(describeInstall({ ...r, ran: false, source: 'store' }, undefined)).toMatch(/reused from the state dir/);
  });
});

describe('tar headers', () => {
  it('writes PAX records whose length counts itself', () => {
    expect(paxRecord('path', 'a')).toBe('9 path=a\n');
    expect(paxRecord('path', 'a'.repeat(92))).toBe(`102 path=${'a'.repeat(92)}\n`);
    const long = paxRecord('path', 'x'.repeat(95));
    expect(Number(long.split(' ')[0])).toBe(Buffer.byteLength(long));
  });
  it('splits long paths into ustar prefix and name, or not at all', () => {
    expect(splitUstarPath('a/b')).toEqual({ prefix: '', name: 'a/b' });
    const p = `${'d'.repeat(120)}/${'f'.repeat(90)}`;
    expect(splitUstarPath(p)).toEqual({ prefix: 'd'.repeat(120), name: 'f'.repeat(90) });
    expect(splitUstarPath('x'.repeat(300))).toBeUndefined();
  });
  it('uses a PAX header only where ustar cannot hold the entry', () => {
    expect(entryHeaders({ path: 'a', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 1, size: 1 })).toHaveLength(1);
    expect(
      entryHeaders({ path: 'x'.repeat(300), type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 1, size: 1 }),
    ).toHaveLength(4);
    expect(
      entryHeaders({ path: 'a', type: 'file', mode: 0o644, uid: 3_000_000, gid: 0, mtime: 1, size: 1 }),
    ).toHaveLength(4);
  });
});

describe('writing a layer', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'bc-layer-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const tarList = (file: string) => execFileSync('tar', ['--numeric-owner', '-tvf', file], { encoding: 'utf8' });
  const names = (file: string) => execFileSync('tar', ['-tf', file], { encoding: 'utf8' }).trim().split('\n');

  it('reads back with GNU tar: long names, links, modes, owners, content', async () => {
    const src = join(dir, 'src');
    mkdirSync(src);
    writeFileSync(join(src, 'f'), 'hello');
    const out = join(dir, 'a.tar');
    const tar = await TarWriter.create(out);
    const long = `${'d'.repeat(150)}/${'e'.repeat(120)}/file`;
    await tar.add({ path: 'dir', type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 1_700_000_000 });
    await tar.add(
      { path: 'dir/f', type: 'file', mode: 0o4755, uid: 1234, gid: 5678, mtime: 1_700_000_000, size: 5 },
      join(src, 'f'),
    );
    await tar.add({
      path: 'dir/hard',
      type: 'hardlink',
      mode: 0o4755,
      uid: 1234,
      gid: 5678,
      mtime: 1_700_000_000,
      linkpath: 'dir/f',
    });
    await tar.add({
      path: 'dir/link',
      type: 'symlink',
      mode: 0o777,
      uid: 0,
      gid: 0,
      mtime: 1_700_000_000,
      linkpath: 'x'.repeat(200),
    });
    await tar.add(
      { path: long, type: 'file', mode: 0o600, uid: 3_000_000, gid: 7, mtime: 1_700_000_000, size: 5 },
      join(src, 'f'),
    );
    await tar.add({ path: 'dir/fifo', type: 'fifo', mode: 0o644, uid: 0, gid: 0, mtime: 1_700_000_000 });
    const { digest, size } = await tar.finish();
    const bytes = readFileSync(out);
    expect(size).toBe(bytes.length);
    expect(digest).toBe(`sha256:${execFileSync('sha256sum', [out], { encoding: 'utf8' }).split(' ')[0]}`);
    const listing = tarList(out);
    expect(listing).toMatch(/^-rwsr-xr-x 1234\/5678\s+5 .* dir\/f$/m);
    expect(listing).toMatch(/^hrwsr-xr-x .* dir\/hard link to dir\/f$/m);
    expect(listing).toContain(`dir/link -> ${'x'.repeat(200)}`);
    expect(listing).toMatch(new RegExp(`^-rw------- 3000000/7 .* ${long}$`, 'm'));
    expect(listing).toMatch(/^prw-r--r-- .* dir\/fifo$/m);
    const extracted = join(dir, 'x');
    mkdirSync(extracted);
    execFileSync('tar', ['-xf', out, '-C', extracted]);
    expect(readFileSync(join(extracted, long), 'utf8')).toBe('hello');
  });

  it.skipIf(!isRoot)(
    'holds the upper less staging, whiteouts for what the cell no longer sees, type changes, hard links',
    async () => {
      const lower = join(dir, 'lower');
      const upper = join(dir, 'upper');
      const view = join(dir, 'view');
      for (const d of ['etc/default', 'etc/gone-dir/sub', 'usr/bin', 'opaque/old', 'mnt/cache', 'was-file'])
        mkdirSync(join(lower, d), { recursive: true });
      rmSync(join(lower, 'was-file'), { recursive: true });
      writeFileSync(join(lower, 'was-file'), 'f');
      writeFileSync(join(lower, 'etc/kept'), 'k');
      writeFileSync(join(lower, 'etc/deleted'), 'd');
      writeFileSync(join(lower, 'usr/bin/true'), 't');
      writeFileSync(join(lower, 'opaque/old/x'), 'x');
      symlinkSync('usr/bin', join(lower, 'bin'));
      // The upper: as overlayfs leaves it after the cell (whiteouts are 0/0 character devices).
      for (const d of ['etc', 'usr/bin', 'opaque/new', 'was-file', 'newdir', '.build-cell', 'mnt/cache', 'workspace'])
        mkdirSync(join(upper, d), { recursive: true });
      execFileSync('mknod', [join(upper, 'etc/deleted'), 'c', '0', '0']);
      execFileSync('mknod', [join(upper, 'usr/bin/true'), 'c', '0', '0']);
      writeFileSync(join(upper, 'etc/default'), 'now a file');
      writeFileSync(join(upper, 'newdir/a'), 'a');
      linkSync(join(upper, 'newdir/a'), join(upper, 'newdir/b'));
      chmodSync(join(upper, 'newdir/a'), 0o4755);
      writeFileSync(join(upper, 'was-file/inside'), 'i');
      writeFileSync(join(upper, '.build-cell/run.sh'), 'script');
      writeFileSync(join(upper, '.build-cell-root'), '/state');
      writeFileSync(join(upper, 'resolv.conf'), '');
      // The live view: what the cell saw (names only matter). /mnt/cache was a mount.
      for (const d of ['etc', 'usr/bin', 'opaque/new', 'was-file', 'newdir', 'mnt/cache/from-the-cache', 'workspace/w'])
        mkdirSync(join(view, d), { recursive: true });
      for (const f of ['etc/kept', 'etc/default', 'newdir/a', 'newdir/b', 'was-file/inside', 'resolv.conf'])
        writeFileSync(join(view, f), '');
      symlinkSync('usr/bin', join(view, 'bin'));

      const deletions = await scanDeletions(upper, lower, view, new Set(['mnt/cache', 'workspace']));
      expect(Object.fromEntries(deletions)).toEqual({
        etc: ['deleted', 'gone-dir'],
        'usr/bin': ['true'],
        opaque: ['old'],
      });
      await removeStaged(upper, ['mnt', 'mnt/cache', 'workspace', 'resolv.conf']);
      const out = join(dir, 'layer.tar');
      const layer = await writeLayer(upper, lower, deletions, { kind: 'stat' }, out);
      expect(layer.digest).toMatch(/^sha256:[a-f0-9]{64}$/);
      expect(new Set(names(out))).toEqual(
        new Set([
          'etc/',
          'etc/.wh.default',
          'etc/.wh.deleted',
          'etc/.wh.gone-dir',
          'etc/default',
          'newdir/',
          'newdir/a',
          'newdir/b',
          'opaque/',
          'opaque/.wh.old',
          'opaque/new/',
          'usr/',
          'usr/bin/',
          'usr/bin/.wh.true',
          '.wh.was-file',
          'was-file/',
          'was-file/inside',
        ]),
      );
      const listing = tarList(out);
      expect(names(out)).toEqual(
        expect.arrayContaining([
          'etc/.wh.deleted',
          'etc/.wh.gone-dir',
          'etc/.wh.default',
          'etc/default',
          'usr/bin/.wh.true',
          'opaque/.wh.old',
          'opaque/new/',
          '.wh.was-file',
          'was-file/inside',
          'newdir/a',
        ]),
      );
      expect(listing).toMatch(/^hrwsr-xr-x .* newdir\/b link to newdir\/a$/m);
      for (const gone of ['.build-cell', '.build-cell-root', 'mnt', 'workspace', 'resolv.conf', 'etc/kept']) {
        expect(
          names(out).some((n) => n === gone || n.startsWith(`${gone}/`)),
          gone,
        ).toBe(false);
      }
      // Whiteouts come before the entries of their directory, and a directory before its children.
      const all = names(out);
      expect(all.indexOf('etc/.wh.default')).toBeLessThan(all.indexOf('etc/default'));
      expect(all.indexOf('.wh.was-file')).toBeLessThan(all.indexOf('was-file/'));
      expect(all.indexOf('was-file/')).toBeLessThan(all.indexOf('was-file/inside'));
    },
  );

  it('records the owners of a rootless cell from its owner record, else root', async () => {
    const upper = join(dir, 'upper');
    mkdirSync(join(upper, 'var/lib/x'), { recursive: true });
    writeFileSync(join(upper, 'var/lib/x/f'), 'f');
    const record = parseOwnerRecord(
      `100 102 2775 ${join(upper, 'var/lib/x')}\0` + `42 0 600 ${join(upper, 'var/lib/x/f')}\0junk\0`,
    );
    expect(record.size).toBe(2);
    const out = join(dir, 'layer.tar');
    await writeLayer(upper, join(dir, 'no-lower'), new Map(), { kind: 'rootless', record }, out);
    const listing = tarList(out);
    expect(listing).toMatch(/^drwxr-xr-x 0\/0 .* var\/$/m);
    expect(listing).toMatch(/^drwxrwsr-x 100\/102 .* var\/lib\/x\/$/m);
    expect(listing).toMatch(/^-rw------- 42\/0 .* var\/lib\/x\/f$/m);
  });
});

describe('restoring a derived layer', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'bc-restore-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  it('reads the whiteouts from the headers (long PAX paths too) and applies them without following links', async () => {
    const layer = join(dir, 'l.tar');
    const tar = await TarWriter.create(layer);
    const long = `${'d'.repeat(120)}/${'e'.repeat(120)}/.wh.gone`;
    for (const path of ['etc/.wh.deleted', 'opaque/.wh..wh..opq', 'link/.wh.victim', long, '.wh.top'])
      await tar.add({ path, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 1, size: 0 });
    await tar.add({ path: 'etc/kept', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 1, size: 0 });
    await tar.finish();
    const whiteouts = await tarWhiteouts(layer);
    expect(whiteouts).toEqual(['etc/.wh.deleted', 'opaque/.wh..wh..opq', 'link/.wh.victim', long, '.wh.top']);

    const root = join(dir, 'root');
    const outside = join(dir, 'outside');
    for (const d of ['etc', 'opaque/sub', `${'d'.repeat(120)}/${'e'.repeat(120)}/gone`, 'top'])
      mkdirSync(join(root, d), { recursive: true });
    mkdirSync(outside);
    writeFileSync(join(outside, 'victim'), 'v');
    symlinkSync(outside, join(root, 'link'));
    for (const f of ['etc/deleted', 'etc/kept', 'opaque/a']) writeFileSync(join(root, f), '');
    await applyWhiteouts(root, whiteouts);
    expect(readdirSync(join(root, 'etc'))).toEqual(['kept']);
    expect(readdirSync(join(root, 'opaque'))).toEqual([]);
    expect(readdirSync(join(root, 'd'.repeat(120), 'e'.repeat(120)))).toEqual([]);
    expect(existsSync(join(root, 'top'))).toBe(false);
    // Through the link: nothing happens to what it points to.
    expect(readFileSync(join(outside, 'victim'), 'utf8')).toBe('v');
  });
});
