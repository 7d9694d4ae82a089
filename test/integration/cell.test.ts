/**
 * Real cells as root: staging round trip, archive seeds, network, rlimits, emulation, exit
 * codes, signals, cancellation and validation, each followed by a check that the host is as it was.
 */
import { createServer, type Server } from 'node:http';
import { existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { busyboxLayout } from '../helpers/fixtures.js';
import { expectHostUnchanged, removeDir, runCli, snapshotHost, tempDir, type HostSnapshot } from '../helpers/cli.js';

let layout: string;
let state: string;
let work: string;
let before: HostSnapshot;

const image = (tag = 'amd64') => `oci:${layout}:${tag}`;
const run = (args: string[], options: Parameters<typeof runCli>[1] = {}) =>
  runCli(['run', '--state-dir', state, ...args], options);

beforeAll(async () => {
  layout = await busyboxLayout();
  state = tempDir('bc-state-');
  // Prepare once so that most tests measure the cell, not the image.
  const prepared = await runCli(['prepare', '--state-dir', state, '--image', image()]);
  expect(prepared.code, prepared.stderr).toBe(0);
});

afterAll(async () => {
  await removeDir(state);
});

beforeEach(() => {
  work = tempDir('bc-work-');
  before = snapshotHost();
});

afterEach(async () => {
  expectHostUnchanged(before, state);
  expect(existsSync(join(state, 'cells')) ? readdirSync(join(state, 'cells')) : []).toEqual([]);
  await removeDir(work);
});

describe('staging round trip', () => {
  it('seeds the workspace, imports read-only, updates a cache and exports results', async () => {
    const ws = join(work, 'ws');
    mkdirSync(join(ws, 'src'), { recursive: true });
    writeFileSync(join(ws, 'src', 'input.txt'), 'from the host\n');
    const imp = join(work, 'tools');
    mkdirSync(imp);
    writeFileSync(join(imp, 'tool.sh'), 'echo tool-ran\n');
    const cache = join(work, 'cache');
    const out = join(work, 'out');
    const script = [
      'cat src/input.txt',
      'sh /opt/tools/tool.sh',
      'if echo x > /opt/tools/new 2>/dev/null; then echo import-writable; else echo import-read-only; fi',
      'n=$(cat /cache/count 2>/dev/null || echo 0); echo $((n + 1)) > /cache/count',
      'mkdir -p out && cp src/input.txt out/result.txt && echo built > out/extra',
      'echo changed > src/input.txt',
    ].join('\n');
    const args = [
      '--image',
      image(),
      '--workspace',
      ws,
      '--import',
      `${imp}:/opt/tools`,
      '--cache',
      `${cache}:/cache`,
      '--export',
      `/workspace/out:${out}`,
      '--run',
      script,
    ];
    const first = await run(args);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain('from the host');
    expect(first.stdout).toContain('tool-ran');
    expect(first.stdout).toContain('import-read-only');
    expect(readFileSync(join(out, 'result.txt'), 'utf8')).toBe('from the host\n');
    expect(readFileSync(join(out, 'extra'), 'utf8')).toBe('built\n');
    expect(readFileSync(join(cache, 'count'), 'utf8')).toBe('1\n');
    // The host workspace is a snapshot source: the cell's change did not reach it.
    expect(readFileSync(join(ws, 'src', 'input.txt'), 'utf8')).toBe('from the host\n');
    expect(existsSync(join(imp, 'new'))).toBe(false);
    const second = await run(args);
    expect(second.code, second.stderr).toBe(0);
    expect(readFileSync(join(cache, 'count'), 'utf8')).toBe('2\n');
  });

  it('syncs caches back even when the command fails, and a missing export is then no error', async () => {
    const cache = join(work, 'cache');
    const result = await run([
      '--image',
      image(),
      '--cache',
      `${cache}:/var/cache/thing`,
      '--export',
      `/workspace/never:${join(work, 'never')}`,
      '--run',
      'echo partial > /var/cache/thing/p; exit 3',
    ]);
    expect(result.code).toBe(3);
    expect(readFileSync(join(cache, 'p'), 'utf8')).toBe('partial\n');
    expect(existsSync(join(work, 'never'))).toBe(false);
  });

  it('fails with 125 when a successful command did not produce an export', async () => {
    const result = await run(['--image', image(), '--export', `/workspace/missing:${join(work, 'm')}`, '--', 'true']);
    expect(result.code).toBe(125);
    expect(result.stderr).toMatch(/^build-cell: .*exports\[0\]\.source.*\/workspace\/missing/m);
  });

  it('exports from the rootfs and refuses to follow a symlink the build planted', async () => {
    const ok = await run([
      '--image',
      image(),
      '--export',
      `/usr/local/out.txt:${join(work, 'rootfs-out')}`,
      '--run',
      'mkdir -p /usr/local && echo rootfs > /usr/local/out.txt',
    ]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(readFileSync(join(work, 'rootfs-out'), 'utf8')).toBe('rootfs\n');
    const evil = await run([
      '--image',
      image(),
      '--export',
      `/workspace/out/passwd:${join(work, 'stolen')}`,
      '--run',
      'ln -s /etc out',
    ]);
    expect(evil.code).toBe(125);
    expect(evil.stderr).toMatch(/symlink/);
    expect(existsSync(join(work, 'stolen'))).toBe(false);
  });

  it('creates a missing working directory and runs there', async () => {
    const result = await run(['--image', image(), '--cwd', '/workspace/deep/er', '--', 'pwd']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.trim()).toBe('/workspace/deep/er');
  });

  it('gives the command exactly the environment asked for', async () => {
    const result = await run([
      '--image',
      image(),
      '--env',
      'A=x y=z',
      '--env',
      'B=line1\nline2\\n',
      '--env',
      'EMPTY=',
      '--',
      'env',
    ]);
    expect(result.code, result.stderr).toBe(0);
    const lines = result.stdout;
    expect(lines).toContain('A=x y=z\n');
    expect(lines).toContain('B=line1\nline2\\n\n');
    expect(lines).toContain('EMPTY=\n');
    expect(lines).toMatch(/^PATH=/m);
    expect(lines).not.toMatch(/^(PWD|SHLVL|OLDPWD)=/m);
  });
});

describe('archive seeds', () => {
  const makeTar = (name: string, build: (dir: string) => void, flags: string[] = []) => {
    const dir = join(work, `${name}-src`);
    mkdirSync(dir);
    build(dir);
    const file = join(work, name);
    execFileSync('tar', [...flags, '-cf', file, '-C', dir, '.']);
    return file;
  };

  it('unpacks .tar, .tar.gz and .tgz workspaces', async () => {
    for (const [name, flags] of [
      ['ws.tar', []],
      ['ws.tar.gz', ['-z']],
      ['ws.tgz', ['-z']],
    ] as const) {
      const archive = makeTar(
        name,
        (d) => {
          mkdirSync(join(d, 'sub'));
          writeFileSync(join(d, 'sub', 'file'), `content of ${name}\n`);
        },
        [...flags],
      );
      const result = await run(['--image', image(), '--workspace', archive, '--', 'cat', 'sub/file']);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toBe(`content of ${name}\n`);
    }
  });

  it('refuses entries with .. and entries written through a symlink from an earlier entry', async () => {
    const dotdot = join(work, 'dotdot.tar');
    const src = join(work, 'dd');
    mkdirSync(join(src, 'a'), { recursive: true });
    writeFileSync(join(src, 'evil'), 'x');
    execFileSync('tar', ['-cf', dotdot, '-C', join(src, 'a'), '--transform', 's,^,../,', '../evil'], {
      cwd: join(src, 'a'),
    });
    const r1 = await run(['--image', image(), '--workspace', dotdot, '--', 'true']);
    expect(r1.code).toBe(125);
    expect(r1.stderr).toMatch(/^build-cell: .*refused/m);

    // First entry: link -> /tmp/<victim>; second entry: link/owned, which must not land on the host.
    const victim = tempDir('bc-victim-');
    const linkTar = join(work, 'link.tar');
    const s2 = join(work, 'l2');
    mkdirSync(s2);
    symlinkSync(victim, join(s2, 'link'));
    execFileSync('tar', ['-cf', linkTar, '-C', s2, 'link']);
    const s3 = join(work, 'l3', 'link');
    mkdirSync(s3, { recursive: true });
    writeFileSync(join(s3, 'owned'), 'pwned');
    execFileSync('tar', ['-rf', linkTar, '-C', join(work, 'l3'), 'link/owned']);
    const r2 = await run(['--image', image(), '--workspace', linkTar, '--', 'true']);
    expect(r2.code).toBe(125);
    expect(readdirSync(victim)).toEqual([]);
    await removeDir(victim);
  });
});

describe('network', () => {
  let server: Server;
  let port: number;
  beforeAll(async () => {
    server = createServer((_, res) => res.end('host-service'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('reaches the host loopback when enabled, and only has its own loopback when disabled', async () => {
    const enabled = await run(['--image', image(), '--', 'wget', '-q', '-O', '-', `http://127.0.0.1:${port}/`]);
    expect({ code: enabled.code, stderr: enabled.stderr }).toEqual({ code: 0, stderr: '' });
    expect(enabled.stdout).toBe('host-service');
    const disabled = await run([
      '--image',
      image(),
      '--network',
      'disabled',
      '--run',
      `ip -o link | cut -d: -f2; wget -q -T 2 -O - http://127.0.0.1:${port}/ || echo unreachable`,
    ]);
    expect(disabled.code, disabled.stderr).toBe(0);
    expect(disabled.stdout.trim().split(/\s+/)).toEqual(['lo', 'unreachable']);
  });
});

describe('resource limits', () => {
  it('kills a command that exceeds its CPU time', async () => {
    const result = await run(['--image', image(), '--cpu-time', '1', '--', 'sh', '-c', 'while :; do :; done']);
    expect([128 + 9, 128 + 24]).toContain(result.code);
  });

  it('limits the address space', async () => {
    const result = await run([
      '--image',
      image(),
      '--memory',
      '32M',
      '--run',
      'x=$(head -c 67108864 /dev/zero | tr "\\0" a); echo ${#x}',
    ]);
    expect(result.code).not.toBe(0);
    expect(result.stdout).not.toContain('67108864');
    const roomy = await run([
      '--image',
      image(),
      '--memory',
      '512M',
      '--run',
      'x=$(head -c 1048576 /dev/zero | tr "\\0" a); echo ${#x}',
    ]);
    expect(roomy.code, roomy.stderr).toBe(0);
    expect(roomy.stdout.trim()).toBe('1048576');
  });

  it('limits the number of processes, also for root', async () => {
    const result = await run([
      '--image',
      image(),
      '--max-processes',
      '4',
      '--run',
      'for i in 1 2 3 4 5 6 7 8; do sleep 2 & done; wait',
    ]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/can't fork|Resource temporarily unavailable/);
    const fine = await run([
      '--image',
      image(),
      '--max-processes',
      '20',
      '--run',
      'sleep 0 & sleep 0 & wait; ulimit -u',
    ]);
    expect(fine.code, fine.stderr).toBe(0);
    expect(fine.stdout.trim()).toBe('20');
  });
});

describe('exit codes and signals', () => {
  it.each([
    [['sh', '-c', 'exit 0'], 0],
    [['sh', '-c', 'exit 7'], 7],
    [['sh', '-c', 'exit 137'], 137],
    [['sh', '-c', 'kill -KILL $$'], 137],
    [['sh', '-c', 'kill -TERM $$'], 143],
    [['does-not-exist'], 127],
  ])('%j exits %i', async (command, code) => {
    const result = await run(['--image', image(), '--', ...command]);
    expect(result.code).toBe(code);
  });

  it('says when the command was killed by a signal, and not when it merely exited 137', async () => {
    const killed = await run(['--image', image(), '--', 'sh', '-c', 'kill -KILL $$']);
    expect(killed.stderr).toMatch(/killed by SIGKILL/);
    const exited = await run(['--image', image(), '--', 'sh', '-c', 'exit 137']);
    expect(exited.stderr).not.toMatch(/killed/);
  });

  it('runs --run scripts with sh -e, line by line', async () => {
    const result = await run(['--image', image(), '--run', 'echo one\nfalse\necho never']);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('one\n');
  });

  it('stops every process of the cell on SIGTERM and SIGINT, and leaves nothing behind', async () => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      const result = await run(['--image', image(), '--run', 'sleep 300 & sleep 300'], {
        signalAfterMs: { signal, ms: 1500 },
      });
      expect(result.code).toBe(signal === 'SIGTERM' ? 143 : 130);
      expect(result.stderr).toMatch(new RegExp(`received ${signal}`));
    }
  });

  it('keeps the scratch on failure when asked to', async () => {
    const result = await run([
      '--image',
      image(),
      '--cleanup',
      'preserve-on-failure',
      '--',
      'sh',
      '-c',
      'echo kept > kept; exit 1',
    ]);
    expect(result.code).toBe(1);
    const match = /scratch preserved at (\S+)/.exec(result.stderr);
    expect(match).not.toBeNull();
    expect(readFileSync(join(match![1]!, 'workspace', 'kept'), 'utf8')).toBe('kept\n');
    const request = readFileSync(join(match![1]!, 'build-cell-request.json'), 'utf8');
    expect(JSON.parse(request).command.executable).toBe('sh');
    await removeDir(match![1]!);
  });
});

describe('foreign architectures', () => {
  it.each([
    ['arm64', 'aarch64'],
    ['arm', 'armv7l'],
    ['ppc64le', 'ppc64le'],
    ['s390x', 's390x'],
  ])('%s reports uname -m = %s through a private binfmt_misc instance', async (arch, uname) => {
    const result = await run([
      '--image',
      image(arch),
      '--arch',
      arch,
      '--run',
      'uname -m; cat /proc/sys/fs/binfmt_misc/build-cell-* | head -1',
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe(`${uname}\nenabled\n`);
  });

  it('runs a riscv64 executable', async () => {
    const result = await run(['--image', image('riscv64'), '--arch', 'riscv64', '--', '/bin/esbuild', '--version']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
  });

  it('falls back to a uniquely named global rule that is removed afterwards', async () => {
    const result = await run(['--image', image('arm64'), '--arch', 'arm64', '--', 'uname', '-m'], {
      env: { ...process.env, BUILD_CELL_BINFMT: 'global' },
    });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe('aarch64\n');
    // afterEach compares binfmt_misc with its state before the run.
  });
});

describe('bad input is rejected before anything touches the host', () => {
  it.each([
    [['--workspace-path', 'relative'], /--workspace-path/],
    [['--workspace-path', '/'], /workspacePath/],
    [['--import', '/etc:/a/../b'], /imports\[0\]\.destination.*'\.\.'/],
    [['--import', '/etc:/x', '--cache', '/tmp/c:/x/y'], /caches\[0\]\.destination.*conflicts/],
    [['--cache', '/tmp/c:/proc/x'], /caches\[0\]\.destination/],
    [['--env', '=v'], /--env/],
    [['--network', 'off'], /--network.*enabled, disabled/],
    [['--memory', '12Q'], /--memory/],
    [['--cpu-time', '0'], /--cpu-time/],
    [['--max-processes', '-1'], /--max-processes/],
    [['--cleanup', 'sometimes'], /--cleanup/],
    [['--pull', 'often'], /--pull/],
    [['--tls-verify', 'maybe'], /--tls-verify/],
    [['--arch', 'vax'], /--arch.*unsupported architecture/],
    [['--bogus'], /bogus/],
  ])('%j', async (extra, message) => {
    const fresh = join(work, 'never-created');
    const result = await runCli(['run', '--state-dir', fresh, '--image', image(), ...extra, '--', 'true']);
    expect(result.code).toBe(125);
    expect(result.stderr).toMatch(/^build-cell: /);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(message);
    expect(existsSync(fresh)).toBe(false);
  });

  it('rejects an executable that is neither absolute nor a bare name', async () => {
    const result = await run(['--image', image(), '--', 'bin/sh']);
    expect(result.code).toBe(125);
    expect(result.stderr).toMatch(/command\.executable/);
  });
});

describe('ownership', () => {
  it('keeps the image files ownership and modes in the rootfs', async () => {
    const result = await run(['--image', image(), '--run', 'stat -c "%u %a" /tmp /root']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe('0 1777\n0 700\n');
  });

  it('gives exports and caches to the user behind sudo', async () => {
    const out = join(work, 'owned-out');
    const cache = join(work, 'owned-cache');
    const result = await run(
      [
        '--image',
        image(),
        '--cache',
        `${cache}:/c`,
        '--export',
        `/workspace/o:${out}`,
        '--run',
        'mkdir o; echo x > o/f; echo y > /c/f',
      ],
      {
        env: { ...process.env, SUDO_UID: '4242', SUDO_GID: '4343' },
      },
    );
    expect(result.code, result.stderr).toBe(0);
    for (const path of [out, join(out, 'f'), cache, join(cache, 'f')]) {
      const info = statSync(path);
      expect([info.uid, info.gid]).toEqual([4242, 4343]);
    }
  });
});
