/**
 * A fresh runner's image from the Actions cache as one EROFS image (#22): saved by the first
 * job, mounted by the next (or extracted where it cannot be mounted), refused with a warning
 * when the entry was tampered with (the job pulls instead), and never leaving a mount or a
 * loop device behind, not even when the engine is killed mid-run.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunActionOptions } from '../helpers/action-harness.js';
import { checkedAction } from '../helpers/checked-action.js';
import { CLI, expectHostUnchanged, removeDir, runCli, snapshotHost, strayProcesses, tempDir } from '../helpers/cli.js';
import { busyboxLayout, node24Binary } from '../helpers/fixtures.js';
import { startAzurite, startResultsService } from '../helpers/results-service.js';
import { createUser, layoutForUser, removeUser } from '../helpers/users.js';
import { probeErofsMount } from '../../src/image/erofs/mount-probe.js';

let layout: string;
let node24: string;
let azurite: Awaited<ReturnType<typeof startAzurite>>;
let service: Awaited<ReturnType<typeof startResultsService>>;
const temps: string[] = [];
/** GitHub's hosted runners all use the same RUNNER_TEMP path (part of the cache version): one, emptied per job. */
let runnerTemp: string;
async function newVm(): Promise<{ runnerTemp: string }> {
  await removeDir(runnerTemp);
  mkdirSync(runnerTemp);
  return { runnerTemp };
}
const fresh = (prefix: string) => {
  const dir = tempDir(prefix);
  temps.push(dir);
  return dir;
};

/** One job of the action with the results service, a fresh state dir unless given, and the host after-check. */
async function action(inputs: Record<string, string>, options: RunActionOptions = {}) {
  const state = inputs['state-dir'] ?? fresh('bc-erofs-state-');
  // No process, mount or loop device on the state dir's images is left (see expectHostUnchanged).
  const run = await checkedAction(
    { node: node24, image: inputs.image!, state },
    { 'image-cache': 'true', ...inputs },
    { results: { url: service.url }, ...options },
  );
  return { ...run, state };
}

/** The cache entry of `key`, with one byte of its EROFS image flipped (a valid archive, a wrong image). */
async function tamper(key: string): Promise<void> {
  const entry = service.caches().find((c) => c.key === key)!;
  const work = fresh('bc-erofs-tamper-');
  const archive = join(work, 'a.tar.zst');
  execFileSync('sh', ['-c', 'cat > "$1"', 'sh', archive], { input: await service.readBlob(entry.blobName) });
  execFileSync('zstd', ['-q', '-d', archive, '-o', join(work, 'a.tar')]);
  execFileSync('python3', [
    '-c',
    `import tarfile,sys
p=sys.argv[1]
m=[m for m in tarfile.open(p).getmembers() if m.name.endswith('.erofs')][0]
f=open(p,'r+b'); f.seek(m.offset_data+8192); b=f.read(1); f.seek(m.offset_data+8192); f.write(bytes([b[0]^0xff])); f.close()`,
    join(work, 'a.tar'),
  ]);
  execFileSync('zstd', ['-q', '-f', join(work, 'a.tar'), '-o', archive]);
  await service.writeBlob(entry.blobName, readFileSync(archive));
}

beforeAll(async () => {
  [layout, node24] = await Promise.all([busyboxLayout(), node24Binary()]);
  azurite = await startAzurite();
  service = await startResultsService(azurite.blobEndpoint);
  runnerTemp = fresh('bc-erofs-rt-');
});

afterAll(async () => {
  await service?.stop();
  await azurite?.stop();
  for (const dir of temps) await removeDir(dir);
});

describe('the image as an EROFS image in the Actions cache', () => {
  const inputs = (run: string) => ({ image: `oci:${layout}:amd64`, run });
  const script =
    'cat /etc/os-release | head -1; echo "written" > /new-file; ls /new-file; echo "machine=$(uname -m)" >> "$GITHUB_OUTPUT"';

  it('is saved by the first job, mounted by the next (or extracted), with the same result', async () => {
    const first = await action(inputs(script), { ...(await newVm()), runId: '700' });
    expect(first.mainCode, first.stdout + first.stderr).toBe(0);
    expect(first.summary).not.toContain('image restore');
    const key = service.caches().find((c) => c.key.startsWith('build-cell-image-v3-amd64-'))?.key;
    expect(key).toBeDefined();

    // The next job on a new VM: the image is mounted where the kernel can, else extracted.
    const second = await action(inputs(script), { ...(await newVm()), runId: '701' });
    expect(second.mainCode, second.stdout + second.stderr).toBe(0);
    expect(second.outputs['image-cache-hit']).toBe('true');
    expect(second.outputs['image-digest']).toBe(first.outputs['image-digest']);
    const probe = probeErofsMount();
    expect(second.stdout).toMatch(
      probe.ok ? /image: EROFS image mounted \(the kernel mounts EROFS/ : /image: EROFS image .*: extracted/,
    );
    expect(second.summary).toContain('image restore');
    expect(second.stdout).toContain('/new-file');
    // Nothing of the layout was unpacked, and the store keeps the image file (no rootfs dir when mounted).
    const images = join(second.state, 'images');
    expect(readdirSync(join(images, 'erofs')).some((f) => f.endsWith('.erofs'))).toBe(true);
    if (probe.ok) expect(existsSync(join(images, 'rootfs')) ? readdirSync(join(images, 'rootfs')) : []).toEqual([]);

    // Forced extraction (a kernel without EROFS): the same job, the same result.
    const third = await action(inputs(script), {
      ...(await newVm()),
      runId: '702',
      env: { BUILD_CELL_EROFS: 'extract' },
    });
    expect(third.mainCode, third.stdout + third.stderr).toBe(0);
    expect(third.stdout).toMatch(/image: EROFS image BUILD_CELL_EROFS=extract: extracted/);
    expect(third.outputs.machine).toBe(second.outputs.machine);
    expect(third.stdout.split('\n').filter((l) => /^(NAME|PRETTY_NAME)=|new-file$/.test(l))).toEqual(
      second.stdout.split('\n').filter((l) => /^(NAME|PRETTY_NAME)=|new-file$/.test(l)),
    );
  });

  it('leaves no mount, loop device or process when the engine is killed mid-run (SIGKILL)', async (ctx) => {
    if (!probeErofsMount().ok) return ctx.skip();
    // A new machine restores the first test's entry: its store holds the EROFS image alone,
    // and the CLI's cell then mounts it.
    const state = fresh('bc-erofs-state-');
    const restored = await action({ ...inputs('true'), 'state-dir': state }, { ...(await newVm()), runId: '721' });
    expect(restored.mainCode, restored.stdout + restored.stderr).toBe(0);
    const before = snapshotHost();
    const child = spawn(
      process.execPath,
      [
        CLI,
        'run',
        '--verbose',
        '--state-dir',
        state,
        '--image',
        `oci:${layout}:amd64`,
        '--',
        'sh',
        '-c',
        'echo up; sleep 60',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    await new Promise<void>((resolve) => child.stdout.on('data', (d) => String(d).includes('up') && resolve()));
    // The cell's own mount namespace has the image mounted (the host's has nothing of it).
    const mountinfos = strayProcesses(state).map((line) => {
      try {
        return readFileSync(`/proc/${line.split(':')[0]}/mountinfo`, 'utf8');
      } catch {
        return '';
      }
    });
    expect(
      mountinfos.some((text) => / - erofs /.test(text)),
      stderr,
    ).toBe(true);
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toMatch(/ - erofs /);
    child.kill('SIGKILL');
    await new Promise((resolve) => child.on('close', resolve));
    // The cell dies with the engine (pdeathsig), and its mount namespace, mount and loop device with it.
    for (let i = 0; i < 50 && strayProcesses(state).length; i++) await new Promise((r) => setTimeout(r, 100));
    expect(strayProcesses(state)).toEqual([]);
    expectHostUnchanged(before, state);
  });

  it('`build-cell prepare` on a restored store prints a directory (the image extracted), which later cells use', async () => {
    const state = fresh('bc-erofs-state-');
    const restored = await action({ ...inputs('true'), 'state-dir': state }, { ...(await newVm()), runId: '735' });
    expect(restored.mainCode, restored.stdout + restored.stderr).toBe(0);
    const before = snapshotHost();
    const image = ['--state-dir', state, '--image', `oci:${layout}:amd64`];
    const prepared = await runCli(['prepare', '--verbose', ...image]);
    expect(prepared.code, prepared.stderr).toBe(0);
    const [digest, rootfs] = prepared.stdout.trim().split(' ');
    expect(digest).toBe(restored.outputs['image-digest']);
    expect(existsSync(join(rootfs!, 'bin', 'busybox'))).toBe(true);
    expect(prepared.stderr).toMatch(
      /image: EROFS image a directory was asked for \(build-cell prepare prints it\): extracted/,
    );
    // Later cells use that directory: no mount per cell (bench row 1e: a mount costs more).
    const run = await runCli(['run', '--verbose', ...image, '--', 'ls', '/bin/busybox']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/image: EROFS image extracted earlier/);
    expectHostUnchanged(before, state);
  });

  it('`build-cell prepare --install` on a restored derived image prints a directory, without running the install', async () => {
    const withInstall = { ...inputs('true'), install: 'echo derived > /installed' };
    const first = await action(withInstall, { ...(await newVm()), runId: '736' });
    expect(first.mainCode, first.stdout + first.stderr).toBe(0);
    const state = fresh('bc-erofs-state-');
    const restored = await action({ ...withInstall, 'state-dir': state }, { ...(await newVm()), runId: '737' });
    expect(restored.outputs['install-cache-hit'], restored.stdout).toBe('true');
    const before = snapshotHost();
    const image = ['--state-dir', state, '--image', `oci:${layout}:amd64`];
    const prepared = await runCli(['prepare', '--verbose', ...image, '--install', 'echo derived > /installed']);
    expect(prepared.code, prepared.stderr).toBe(0);
    // The restore recorded the derived image in the store (not only in the cache dir): it is found there.
    expect(prepared.stderr).not.toMatch(/install step ran/);
    expect(prepared.stderr).toMatch(/install step reused from the store/);
    const rootfs = prepared.stdout.trim().split(' ')[1]!;
    expect(readFileSync(join(rootfs, 'installed'), 'utf8')).toBe('derived\n');
    expectHostUnchanged(before, state);
  });

  it('carries a session and write-back over the mounted image, which stays pristine', async (ctx) => {
    if (!probeErofsMount().ok) return ctx.skip();
    const state = fresh('bc-erofs-state-');
    const restored = await action({ ...inputs('true'), 'state-dir': state }, { ...(await newVm()), runId: '730' });
    expect(restored.stdout).toMatch(/image: EROFS image mounted/);
    const ws = fresh('bc-erofs-ws-');
    const image = ['--state-dir', state, '--image', `oci:${layout}:amd64`];
    const before = snapshotHost();
    const common = ['--name', 'erofs', '--state-dir', state];
    const start = await runCli([
      'session',
      'start',
      ...common,
      '--image',
      `oci:${layout}:amd64`,
      '--workspace',
      ws,
      '--run',
      'echo one > /etc/step',
    ]);
    expect(start.code, start.stderr).toBe(0);
    const step = await runCli(['session', 'exec', ...common, '--run', 'cat /etc/step; echo made > built.txt']);
    expect(step.code, step.stderr).toBe(0);
    expect(step.stdout).toBe('one\n');
    expect(readFileSync(join(ws, 'built.txt'), 'utf8')).toBe('made\n');
    expect((await runCli(['session', 'end', ...common])).code).toBe(0);
    // A plain cell on the same image: pristine (the session's change lived in its own layer).
    const plain = await runCli([
      'run',
      ...image,
      '--workspace',
      ws,
      '--write-back',
      '--run',
      'test ! -e /etc/step && echo pristine; echo back > back.txt',
    ]);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout).toBe('pristine\n');
    expect(readFileSync(join(ws, 'back.txt'), 'utf8')).toBe('back\n');
    expectHostUnchanged(before, state);
  });

  it('turns a failing mkfs.erofs into a warning: the job is green, and nothing is saved under the key', async () => {
    const bin = fresh('bc-erofs-bin-');
    // Passes the tools' check (--help), fails on an image: a full disk, say.
    writeFileSync(
      join(bin, 'mkfs.erofs'),
      '#!/bin/sh\n[ "$1" = --help ] && exit 0\necho "mkfs.erofs: No space left on device" >&2\nexit 1\n',
      {
        mode: 0o755,
      },
    );
    const run = await action(
      { image: `oci:${layout}:arm64`, arch: 'arm64', run: 'echo ran' },
      { ...(await newVm()), runId: '740', env: { PATH: `${bin}:${process.env.PATH}` } },
    );
    expect(run.mainCode, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toContain('ran');
    expect(run.warnings.join('\n')).toMatch(
      /the image was not handed to the Actions cache: .*cannot write .* as an EROFS image.*No space left on device/,
    );
    expect(
      service
        .caches()
        .map((c) => c.key)
        .filter((k) => k.startsWith('build-cell-image-v3-arm64-')),
    ).toEqual([]);
  });

  it('refuses a tampered entry before mounting it, with a warning, and the job pulls instead', async () => {
    const key = service.caches().find((c) => c.key.startsWith('build-cell-image-v3-amd64-'))!.key;
    await tamper(key);
    const second = await action(inputs('echo ran'), { ...(await newVm()), runId: '711' });
    expect(second.mainCode, second.stdout + second.stderr).toBe(0);
    expect(second.outputs['exit-code']).toBe('0');
    expect(second.warnings.join('\n')).toMatch(
      /the Actions cache's image entry was refused, the image is pulled instead: the EROFS image .* has sha256 [0-9a-f]{64} in chunk 0 \(bytes from 0\), its record says/,
    );
    expect(second.stdout).toContain('ran');
    expect(second.stdout).not.toMatch(/image: EROFS image/);
  });
});

describe('a rootless runner user (#22: no mount without root)', () => {
  const user = 'bc-erofs-runner';
  let home: string;
  beforeAll(() => {
    home = fresh('bc-erofs-home-');
    chmodSync(home, 0o755);
    createUser(user, home);
  });
  afterAll(() => removeUser(user));

  /** A variant of the busybox image (its own digest, so its own key) that the user can read. */
  function variant(userLayout: string, tag: string): string {
    execFileSync('umoci', [
      'config',
      '--image',
      `${userLayout}:amd64`,
      '--tag',
      tag,
      '--config.env',
      `BC_VARIANT=${tag}`,
    ]);
    execFileSync('chown', ['-R', `${user}:`, userLayout]);
    return `oci:${userLayout}:${tag}`;
  }

  /** A new VM for the user: RUNNER_TEMP at the same path as every job's (the cache version), the user's. */
  async function userVm(rt: string): Promise<{ runnerTemp: string }> {
    await removeDir(rt);
    mkdirSync(rt);
    execFileSync('chown', [`${user}:`, rt]);
    return { runnerTemp: rt };
  }

  /** The paths in the Actions cache entry of `key` (a zstd tar, as @actions/cache writes it). */
  async function entryPaths(key: string): Promise<string[]> {
    const entry = service.caches().find((c) => c.key === key)!;
    const archive = await service.readBlob(entry.blobName);
    return execFileSync('sh', ['-c', 'zstd -dc | tar -t'], { input: archive, encoding: 'utf8', maxBuffer: 1 << 26 })
      .trim()
      .split('\n');
  }

  it('extracts an EROFS image a root job saved (owners are its namespace root), and saves its own unpack as a layout', async () => {
    const userLayout = layoutForUser(layout, home, user);
    const rt = join(home, 'runner-temp');
    const script = 'echo "owner=$(stat -c %u:%g /bin/busybox) variant=$BC_VARIANT"';
    const asUser = { wrapper: ['runuser', '-u', user, '--'], env: { SUDO_ASKPASS: undefined } };
    const userState = (name: string) => {
      const dir = join(home, name);
      mkdirSync(dir);
      execFileSync('chown', [`${user}:`, dir]);
      return dir;
    };

    // A root job saves the image as an EROFS image; the user's job on a new VM extracts it.
    const restored = variant(userLayout, 'rootless-restore');
    const saved = await action({ image: restored, run: script }, { ...(await userVm(rt)), runId: '760' });
    expect(saved.mainCode, saved.stdout + saved.stderr).toBe(0);
    const key = `build-cell-image-v3-amd64-${saved.outputs['image-digest']!.slice(7)}`;
    expect((await entryPaths(key)).some((p) => p.endsWith('.erofs'))).toBe(true);
    const state = userState('state-restore');
    const run = await action(
      { image: restored, run: script, privilege: 'rootless', 'state-dir': state },
      { ...(await userVm(rt)), runId: '761', ...asUser },
    );
    expect(run.mainCode, run.stdout + run.stderr).toBe(0);
    expect(run.outputs['image-cache-hit']).toBe('true');
    expect(run.stdout).toMatch(/image: EROFS image .*rootless mode cannot mount an image: extracted/);
    expect(run.stdout).toContain('owner=0:0 variant=rootless-restore');
    expect(execFileSync('find', [state, '-not', '-user', user], { encoding: 'utf8' }).trim()).toBe('');

    // The user's own unpack has the user's owners: its entry is the layout, which says who owns what.
    const own = variant(userLayout, 'rootless-save');
    const first = await action(
      { image: own, run: script, privilege: 'rootless', 'state-dir': userState('state-save') },
      { ...(await userVm(rt)), runId: '762', ...asUser },
    );
    expect(first.mainCode, first.stdout + first.stderr).toBe(0);
    expect(first.stdout).toContain('owner=0:0 variant=rootless-save');
    const paths = await entryPaths(`build-cell-image-v3-amd64-${first.outputs['image-digest']!.slice(7)}`);
    expect(paths.some((p) => p.endsWith('.erofs'))).toBe(false);
    expect(paths.some((p) => /\/layouts\/amd64-[0-9a-f]{64}\/index\.json$/.test(p))).toBe(true);
  });
});
