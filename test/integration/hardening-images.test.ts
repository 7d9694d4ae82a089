/**
 * Images (and workspaces) that plant symlinks at the paths build-cell creates or mounts over:
 * /proc, file and directory import destinations, cache destinations, the helper directory
 * (/.build-cell, also for an emulated arch), the working directory, /etc (for resolv.conf),
 * the parent of the workspace path, /dev entries, and the rootfs sentinel. Every link points at
 * a victim on the host (a file and a directory of known content); the run either refuses with
 * a clear error or acts strictly inside the rootfs, and afterwards the victim is exactly as it
 * was (content, size, mtime, no new entries), the stored rootfs is pristine and no scratch is left.
 */
import { execFileSync } from 'node:child_process';
import {
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { busyboxLayout } from '../helpers/fixtures.js';
import {
  expectHostUnchanged,
  expectRefused,
  type HostSnapshot,
  removeDir,
  runCli,
  SELF_TEST_PREFIX,
  sentinelChanges,
  snapshotHost,
  tempDir,
} from '../helpers/cli.js';

let layout: string;
let dir: string;
let hostile: string;
let victim: string;
let state: string;
let work: string;
let before: HostSnapshot;
let victimBefore: string[];
let storeBefore: string[];

/** Every entry under `root` without following symlinks: type, size, mtime, and a file's content or a link's target. */
function tree(root: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const name of readdirSync(root).sort()) {
    const path = join(root, name);
    const info = lstatSync(path);
    const at = `${prefix}${name} mtime=${info.mtimeMs}`;
    if (info.isSymbolicLink()) out.push(`l ${at} -> ${readlinkSync(path)}`);
    else if (info.isDirectory()) out.push(`d ${at}`, ...tree(path, `${prefix}${name}/`));
    else out.push(`f ${at} ${JSON.stringify(readFileSync(path, 'utf8'))}`);
  }
  return out;
}

/** Every entry of the stored rootfs dirs: type, path and a link's target (a cell must never add, remove or redirect one). */
function storedRootfs(): string[] {
  const rootfs = join(state, 'images', 'rootfs');
  const out: string[] = [];
  const walk = (path: string, rel: string) => {
    const info = lstatSync(path);
    out.push(info.isSymbolicLink() ? `l ${rel} -> ${readlinkSync(path)}` : `${info.isDirectory() ? 'd' : 'f'} ${rel}`);
    if (info.isDirectory() && !info.isSymbolicLink())
      for (const name of readdirSync(path).sort()) walk(join(path, name), `${rel}/${name}`);
  };
  for (const name of readdirSync(rootfs).sort()) walk(join(rootfs, name), name);
  return out;
}

/**
 * Tags of a copy of the busybox layout, each the `base` image plus what `setup` (a shell
 * script run in its unpacked rootfs) plants. Each tag is built from its base alone.
 */
function buildPlantedImages(
  source: string,
  out: string,
  plants: Record<string, { base?: string; setup: string }>,
): string {
  const copy = join(out, 'layout');
  execFileSync('cp', ['-a', source, copy]);
  for (const [tag, { base = 'amd64', setup }] of Object.entries(plants)) {
    const bundle = join(out, `bundle-${tag}`);
    execFileSync('umoci', ['--log', 'error', 'unpack', '--image', `${copy}:${base}`, bundle]);
    execFileSync('sh', ['-ec', setup], { cwd: join(bundle, 'rootfs') });
    execFileSync('umoci', ['--log', 'error', 'repack', '--image', `${copy}:${tag}`, bundle]);
    rmSync(bundle, { recursive: true, force: true });
  }
  return copy;
}

const VFILE = () => join(victim, 'file');
const VDIR = () => join(victim, 'dir');
const run = (tag: string, args: string[]) =>
  runCli(['run', '--state-dir', state, '--image', `oci:${hostile}:${tag}`, ...args]);

beforeAll(async () => {
  layout = await busyboxLayout();
  dir = tempDir('bc-planted-');
  victim = join(dir, 'victim');
  mkdirSync(join(victim, 'dir'), { recursive: true });
  writeFileSync(join(victim, 'file'), 'precious host file\n');
  writeFileSync(join(victim, 'dir', 'keep'), 'precious host dir entry\n');
  const [f, d] = [VFILE(), VDIR()];
  hostile = buildPlantedImages(layout, dir, {
    proc: { setup: `rm -rf proc && ln -s ${d} proc` },
    'etc-hosts': { setup: `ln -s ${f} etc/hosts` },
    opt: { setup: `ln -s ${d} opt` },
    srv: { setup: `ln -s ${d} srv` },
    'var-cache': { setup: `mkdir -p var && ln -s ${d} var/cache` },
    'root-cache': { setup: `ln -s ${d} root/.cache` },
    // The action mounts its file-command dir (a cache) at /github/file_commands.
    github: { setup: `ln -s ${d} github` },
    helper: { setup: `ln -s ${d} .build-cell` },
    'helper-arm64': { base: 'arm64', setup: `ln -s ${d} .build-cell` },
    build: { setup: `ln -s ${d} build` },
    etc: { setup: `rm -rf etc && ln -s ${d} etc` },
    home: { setup: `ln -s ${d} home` },
    'dev-entries': {
      setup: `ln -s ${f} dev/null && ln -s ${d} dev/shm && ln -s ${d} dev/pts && ln -s ${f} dev/console`,
    },
  });
  state = tempDir('bc-planted-state-');
  // Prepared up front, so that each test can check that its run left the stored rootfs as it was.
  for (const tag of [
    'proc',
    'etc-hosts',
    'opt',
    'srv',
    'var-cache',
    'root-cache',
    'github',
    'helper',
    'build',
    'etc',
    'home',
    'dev-entries',
  ]) {
    const prepared = await runCli(['prepare', '--state-dir', state, '--image', `oci:${hostile}:${tag}`]);
    expect(prepared.code, prepared.stderr).toBe(0);
  }
  const arm = await runCli([
    'prepare',
    '--state-dir',
    state,
    '--arch',
    'arm64',
    '--image',
    `oci:${hostile}:helper-arm64`,
  ]);
  expect(arm.code, arm.stderr).toBe(0);
});

afterAll(async () => {
  await removeDir(dir);
  await removeDir(state);
});

beforeEach(() => {
  work = tempDir('bc-planted-work-');
  before = snapshotHost();
  victimBefore = tree(victim);
  storeBefore = storedRootfs();
});

afterEach(async () => {
  try {
    expect(tree(victim), 'the host victim of the planted links').toEqual(victimBefore);
    expect(storedRootfs(), 'the stored rootfs').toEqual(storeBefore);
    expect(readdirSync(join(state, 'cells')), 'scratch dirs left').toEqual([]);
    expectHostUnchanged(before, state);
  } finally {
    await removeDir(work);
  }
});

describe('images that plant symlinks at mount targets: refused before anything is mounted', () => {
  it('/proc as a link to a host directory', async () => {
    expectRefused(await run('proc', ['--', 'true']), /mount target \/proc traverses a symlink at \/proc$/);
  });

  it('a file import destination that is a link to a host file', async () => {
    const source = join(work, 'hosts');
    writeFileSync(source, '127.0.0.1 imported\n');
    expectRefused(
      await run('etc-hosts', ['--import', `${source}:/etc/hosts`, '--', 'true']),
      /mount target \/etc\/hosts traverses a symlink at \/etc\/hosts$/,
    );
  });

  it('a directory import below a linked directory, and one onto a link', async () => {
    const source = join(work, 'tools');
    mkdirSync(source);
    writeFileSync(join(source, 'tool'), 'tool\n');
    expectRefused(
      await run('opt', ['--import', `${source}:/opt/tools`, '--', 'true']),
      /mount target \/opt\/tools traverses a symlink at \/opt$/,
    );
    expectRefused(
      await run('srv', ['--import', `${source}:/srv`, '--', 'true']),
      /mount target \/srv traverses a symlink at \/srv$/,
    );
  });

  it("cache destinations below a link (also the action's /github/file_commands) and onto a link; the host cache is not synced", async () => {
    const cache = join(work, 'cache');
    mkdirSync(cache);
    writeFileSync(join(cache, 'entry'), 'cached\n');
    const cacheBefore = tree(cache);
    expectRefused(
      await run('var-cache', ['--cache', `${cache}:/var/cache/apt`, '--run', 'echo x > /var/cache/apt/new']),
      /mount target \/var\/cache\/apt traverses a symlink at \/var\/cache$/,
    );
    expectRefused(
      await run('root-cache', ['--cache', `${cache}:/root/.cache`, '--run', 'echo x > /root/.cache/new']),
      /mount target \/root\/\.cache traverses a symlink at \/root\/\.cache$/,
    );
    expectRefused(
      await run('github', [
        '--cache',
        `${cache}:/github/file_commands`,
        '--run',
        'echo x > /github/file_commands/output',
      ]),
      /mount target \/github\/file_commands traverses a symlink at \/github$/,
    );
    expect(tree(cache)).toEqual(cacheBefore);
  });

  it('the helper directory as a link: for the --run script, and for qemu (arm64)', async () => {
    expectRefused(
      await run('helper', ['--run', 'true']),
      /mount target \/\.build-cell\/run\.sh traverses a symlink at \/\.build-cell$/,
    );
    expectRefused(
      await run('helper-arm64', ['--arch', 'arm64', '--', 'true']),
      /mount target \/\.build-cell traverses a symlink at \/\.build-cell$/,
    );
  });

  it('a working directory below a link', async () => {
    expectRefused(
      await run('build', ['--cwd', '/build/out', '--', 'true']),
      /mount target \/build\/out traverses a symlink at \/build$/,
    );
  });

  it('a workspace path below a link', async () => {
    expectRefused(
      await run('home', ['--workspace-path', '/home/ws', '--', 'true']),
      /mount target \/home\/ws traverses a symlink at \/home$/,
    );
  });

  it('/etc as a link, when the network needs /etc/resolv.conf', async () => {
    expectRefused(
      await run('etc', ['--network', 'enabled', '--', 'true']),
      /mount target \/etc\/resolv\.conf traverses a symlink at \/etc$/,
    );
  });
});

describe('planted links the engine has no business with: the run goes on, strictly inside the rootfs', () => {
  it('a helper-directory link when nothing is put there (native arch, no script)', async () => {
    const result = await run('helper', ['--', 'true']);
    expect(result.code, result.stderr).toBe(0);
  });

  it('/etc as a link with the network disabled (no resolv.conf to mount)', async () => {
    const result = await run('etc', ['--network', 'disabled', '--', 'true']);
    expect(result.code, result.stderr).toBe(0);
  });

  it('/dev entries planted as links: the cell gets a /dev of its own', async () => {
    const result = await run('dev-entries', [
      '--run',
      'echo written > /dev/null; ls -A /dev/shm | wc -l; test ! -L /dev/null && test ! -L /dev/pts && echo fresh',
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.split('\n').map((l) => l.trim())).toEqual(['0', 'fresh', '']);
  });
});

describe('the workspace plants a link (code from a pull request)', () => {
  it('a working directory below a link in a workspace directory is refused', async () => {
    const ws = join(work, 'ws');
    mkdirSync(ws);
    symlinkSync(VDIR(), join(ws, 'sub'));
    expectRefused(
      await run('dev-entries', ['--workspace', ws, '--cwd', '/workspace/sub/new', '--', 'true']),
      /mount target \/workspace\/sub\/new traverses a symlink/,
    );
  });

  it('a workspace archive with a link out of the workspace (absolute or ../) is refused as it is unpacked', async () => {
    const src = join(work, 'src');
    mkdirSync(src);
    symlinkSync(VDIR(), join(src, 'abs'));
    symlinkSync(`${'../'.repeat(12)}${VDIR().slice(1)}`, join(src, 'rel'));
    for (const [name, reason] of [
      ['abs', /absolute linkpath/],
      ['rel', /linkpath escapes/],
    ] as const) {
      const archive = join(work, `${name}.tar`);
      execFileSync('tar', ['-cf', archive, '-C', src, name]);
      expectRefused(
        await run('dev-entries', ['--workspace', archive, '--cwd', `/workspace/${name}/new`, '--', 'true']),
        reason,
      );
    }
  });
});

describe('the rootfs sentinel', () => {
  // Regression (fixed; src/image/prepare.ts, unpackRootfs): after `umoci raw unpack`, the engine writes the
  // sentinel with `writeFile(join(target, ROOT_SENTINEL), store.stateDir)`, which follows a
  // `/.build-cell-root` symlink planted by the image: as root, it truncates and overwrites any
  // host file with the state dir's path (or creates a new one where the link dangles). Fix:
  // `await rm(sentinel, { recursive: true, force: true })` first, then
  // `writeFile(sentinel, store.stateDir, { mode: 0o444, flag: 'wx' })`.
  it('an image that plants /.build-cell-root as a link never makes prepare write through it', async () => {
    const own = join(work, 'victim');
    mkdirSync(own);
    writeFileSync(join(own, 'file'), 'precious\n');
    const ownBefore = tree(own);
    const images = buildPlantedImages(layout, work, {
      'sentinel-file': { setup: `ln -s ${join(own, 'file')} .build-cell-root` },
      'sentinel-dangling': { setup: `ln -s ${join(own, 'created')} .build-cell-root` },
    });
    const fresh = join(work, 'state');
    for (const tag of ['sentinel-file', 'sentinel-dangling']) {
      const result = await runCli(['run', '--state-dir', fresh, '--image', `oci:${images}:${tag}`, '--', 'true']);
      // Either the sentinel replaced the link inside the rootfs (the run works) or the image is refused.
      if (result.code !== 0) expectRefused(result, /build-cell-root/);
    }
    expect(tree(own)).toEqual(ownBefore);
  });
});

describe('the after-check itself', () => {
  it('sees an entry that appears in a sentinel place', () => {
    const planted = [`/tmp/${SELF_TEST_PREFIX}${process.pid}`, `/etc/${SELF_TEST_PREFIX}${process.pid}`];
    const snapshot = snapshotHost();
    try {
      for (const path of planted) writeFileSync(path, 'x');
      const changes = sentinelChanges(snapshot.sentinels, snapshotHost().sentinels);
      for (const path of planted)
        expect(changes).toContainEqual(expect.stringMatching(new RegExp(`^new: ${path} \\(file`)));
    } finally {
      for (const path of planted) rmSync(path, { force: true });
    }
  });
});
