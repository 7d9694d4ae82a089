/**
 * What could reach other users of the host: setuid binaries (from an image, an archive or the
 * build itself) and device nodes, and a workspace archive that expands until the disk is full.
 * The store and the cells are for their owner only; exports and synced caches never carry
 * setuid or setgid bits; device entries refuse the archive; a compression bomb is refused
 * and a full disk is a clear error.
 */
import { randomBytes } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { busyboxLayout } from '../helpers/fixtures.js';
import { expectRefused, hostCheckedWork, onSmallDisk, removeDir, runCli, tempDir } from '../helpers/cli.js';
import { tarArchive } from '../helpers/tar.js';

let layout: string;
let state: string;
let work: string;

const image = () => `oci:${layout}:amd64`;
const run = (args: string[]) => runCli(['run', '--state-dir', state, '--image', image(), ...args]);
const mode = (path: string) => lstatSync(path).mode & 0o7777;

beforeAll(async () => {
  layout = await busyboxLayout();
  state = tempDir('bc-bits-state-');
});

afterAll(async () => {
  await removeDir(state);
});

hostCheckedWork(
  'bits',
  (dir) => (work = dir),
  () => state,
);

describe('setuid and setgid bits', () => {
  it('keeps the image store and the cells closed to other users, also in a state dir made before', async () => {
    const result = await run(['--', 'true']);
    expect(result.code, result.stderr).toBe(0);
    expect(mode(join(state, 'images'))).toBe(0o700);
    expect(mode(join(state, 'cells'))).toBe(0o700);
    // A state dir from an older build-cell, world-readable: closed on the next run.
    const older = join(work, 'older');
    mkdirSync(join(older, 'images'), { recursive: true, mode: 0o755 });
    mkdirSync(join(older, 'cells'), { mode: 0o755 });
    const again = await runCli(['run', '--state-dir', older, '--image', image(), '--', 'true']);
    expect(again.code, again.stderr).toBe(0);
    expect(mode(join(older, 'images'))).toBe(0o700);
    expect(mode(join(older, 'cells'))).toBe(0o700);
  });

  it('clears them on exports, whatever the cell set', async () => {
    const out = join(work, 'out');
    const result = await run([
      '--export',
      `/workspace/tool:${join(work, 'tool')}`,
      '--export',
      `/workspace/dir:${out}`,
      '--run',
      'cp /bin/busybox tool && chmod 6755 tool && mkdir -p dir/sub && cp /bin/busybox dir/sub/x && chmod 4711 dir/sub/x && chmod 2775 dir && echo ok > dir/plain && chmod 640 dir/plain',
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(mode(join(work, 'tool'))).toBe(0o755);
    expect(mode(join(out, 'sub', 'x'))).toBe(0o711);
    // Other bits are kept as they were; a directory's setgid (group inheritance) is no privilege.
    expect(mode(join(out, 'plain'))).toBe(0o640);
    expect(mode(out)).toBe(0o2775);
  });

  it('clears them on cache files synced back, overlay and copied caches alike', async () => {
    const overlayCache = join(work, 'cache');
    const copiedCache = join(work, 'cache,copied');
    mkdirSync(overlayCache);
    const result = await run([
      '--cache',
      `${overlayCache}:/c1`,
      '--cache',
      `${copiedCache}:/c2`,
      '--run',
      'for d in /c1 /c2; do cp /bin/busybox $d/suid && chmod 4755 $d/suid; cp /bin/busybox $d/sgid && chmod 2755 $d/sgid; done',
    ]);
    expect(result.code, result.stderr).toBe(0);
    for (const dir of [overlayCache, copiedCache]) {
      expect(mode(join(dir, 'suid')), dir).toBe(0o755);
      expect(mode(join(dir, 'sgid')), dir).toBe(0o755);
    }
  });

  it('a setuid file from a workspace archive works in the cell but never leaves it as one', async () => {
    const archive = join(work, 'ws.tar');
    writeFileSync(
      archive,
      tarArchive([{ type: 'file', name: 'suid-script', mode: 0o4755, body: '#!/bin/sh\necho hi\n' }]),
    );
    const result = await run([
      '--workspace',
      archive,
      '--export',
      `/workspace/suid-script:${join(work, 'got')}`,
      '--run',
      'stat -c %a suid-script; ./suid-script',
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe('4755\nhi\n');
    expect(mode(join(work, 'got'))).toBe(0o755);
  });
});

describe('device nodes and fifos in workspace archives', () => {
  it.each([
    [
      'a character device (/dev/sda-like)',
      { type: 'chardev' as const, name: 'disk', device: [8, 0] as [number, number] },
    ],
    [
      'a character device (/dev/mem-like)',
      { type: 'chardev' as const, name: 'sub/mem', device: [1, 1] as [number, number] },
    ],
    ['a fifo', { type: 'fifo' as const, name: 'pipe' }],
  ])('refuses an archive with %s, naming it, and creates nothing', async (_, entry) => {
    const archive = join(work, 'ws.tar');
    writeFileSync(archive, tarArchive([{ type: 'file', name: 'ok' }, entry]));
    const result = await run(['--workspace', archive, '--', 'true']);
    expectRefused(result, new RegExp(`workspace archive .* was refused: TAR_ENTRY_UNSUPPORTED: .*"${entry.name}"`));
    expect(readdirSync(join(state, 'cells')), 'scratch dirs left').toEqual([]);
  });
});

describe('archives that expand too far', () => {
  /** Run the CLI with its state dir on a 16 MiB tmpfs, in a mount namespace of the test's own. */
  function runOnSmallDisk(archive: string) {
    const small = join(work, 'small-state');
    const result = onSmallDisk(
      small,
      '16m',
      ['"$2" "$3" run --state-dir "$1" --image "$4" --workspace "$5" -- true', 'echo "rc=$?"; ls -A "$1/cells"'],
      [image(), archive],
    );
    expect(readdirSync(small), 'the mount point, after its namespace is gone').toEqual([]);
    return {
      stdout: result.stdout,
      messages: result.stderr
        .trim()
        .split('\n')
        .filter((l) => l.startsWith('build-cell: ')),
    };
  }

  it('refuses a compression bomb (more than 1000:1) before it fills anything', () => {
    // 64 MiB of zeros compress to about 64 KiB.
    const archive = join(work, 'bomb.tar.gz');
    writeFileSync(
      archive,
      gzipSync(tarArchive([{ type: 'file', name: 'zeros', body: Buffer.alloc(64 * 1024 * 1024) }])),
    );
    const { stdout, messages } = runOnSmallDisk(archive);
    expect(stdout).toBe('rc=125\n');
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatch(/workspace archive .*bomb\.tar\.gz was refused: max decompression ratio exceeded/);
  });

  it('turns a full disk into a clear error naming the entry, and leaves no scratch', () => {
    // Incompressible: 20 MB of random bytes do not fit the 16 MiB state dir.
    const archive = join(work, 'big.tar');
    writeFileSync(archive, tarArchive([{ type: 'file', name: 'random', body: randomBytes(20_000_000) }]));
    const { stdout, messages } = runOnSmallDisk(archive);
    expect(stdout).toBe('rc=125\n');
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatch(/workspace archive .*big\.tar was refused: .*ENOSPC.*"random"/);
  });
});
