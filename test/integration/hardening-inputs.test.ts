/**
 * Bad and odd input end to end through the CLI (dist/cli.js): env keys and values with `=`,
 * newlines, escapes and sizes up to Linux's limits; paths with `..`, relative paths, spaces,
 * newlines, colons and commas; very long paths; arch and network values in the wrong case;
 * unknown flags. A refusal is exit 125 with one `build-cell: FIELD: ...` line saying what is
 * accepted, and nothing created on the host; a legal value arrives in the cell byte for byte.
 * (A value over MAX_ARG_STRLEN, 128 KiB, cannot even be passed to the CLI as an argument: the
 * kernel refuses the exec. A hostile image's config can still hold one: see the last tests.)
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { busyboxLayout } from '../helpers/fixtures.js';
import { expectRefused, hostCheckedWork, removeDir, runCli, type RunCliOptions, tempDir } from '../helpers/cli.js';

let layout: string;
let state: string;
let work: string;

const image = (tag = 'amd64') => `oci:${layout}:${tag}`;
const run = (args: string[], options?: RunCliOptions) =>
  runCli(['run', '--state-dir', state, '--image', image(), ...args], options);

/** A copy of the busybox layout with tag `to`: `from`'s image with `env` appended to its config's Env. */
function layoutWithConfigEnv(dir: string, from: string, to: string, env: string[]): string {
  const copy = join(dir, 'layout-env');
  if (!existsSync(copy)) mkdirSync(copy);
  const src = existsSync(join(copy, 'index.json')) ? copy : layout;
  const blob = (root: string, digest: string) => join(root, 'blobs', ...digest.split(':'));
  const put = (text: string) => {
    const digest = `sha256:${createHash('sha256').update(text).digest('hex')}`;
    writeFileSync(blob(copy, digest), text);
    return { digest, size: Buffer.byteLength(text) };
  };
  if (src === layout) {
    mkdirSync(join(copy, 'blobs', 'sha256'), { recursive: true });
    for (const name of readdirSync(join(layout, 'blobs', 'sha256')))
      writeFileSync(join(copy, 'blobs', 'sha256', name), readFileSync(join(layout, 'blobs', 'sha256', name)));
    writeFileSync(join(copy, 'oci-layout'), readFileSync(join(layout, 'oci-layout')));
  }
  const index = JSON.parse(readFileSync(join(src, 'index.json'), 'utf8')) as {
    manifests: Array<{ digest: string; size: number; annotations?: Record<string, string> }>;
  };
  const descriptor = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === from)!;
  const manifest = JSON.parse(readFileSync(blob(copy, descriptor.digest), 'utf8'));
  const config = JSON.parse(readFileSync(blob(copy, manifest.config.digest), 'utf8'));
  config.config = { ...config.config, Env: [...(config.config?.Env ?? []), ...env] };
  const c = put(JSON.stringify(config));
  manifest.config = { ...manifest.config, digest: c.digest, size: c.size };
  const m = put(JSON.stringify(manifest));
  index.manifests.push({
    ...descriptor,
    digest: m.digest,
    size: m.size,
    annotations: { 'org.opencontainers.image.ref.name': to },
  });
  writeFileSync(join(copy, 'index.json'), JSON.stringify(index));
  return copy;
}

beforeAll(async () => {
  layout = await busyboxLayout();
  state = tempDir('bc-inputs-state-');
});

afterAll(async () => {
  await removeDir(state);
});

hostCheckedWork(
  'inputs',
  (dir) => (work = dir),
  () => state,
);

describe('refused before anything touches the host, naming the field and what is accepted', () => {
  const long = (n: number) => `/${'x'.repeat(n)}`;
  it.each([
    // env keys and values
    ['an empty --env', ['--env', ''], /--env: "" has no =VALUE and is not set in this environment/],
    [
      '--env NAME not set here',
      ['--env', 'BUILD_CELL_SURELY_UNSET_VARIABLE'],
      /--env: "BUILD_CELL_SURELY_UNSET_VARIABLE" has no =VALUE/,
    ],
    ['--env with an empty name', ['--env', '=value'], /--env: the name must not be empty/],
    [
      'an env key with a newline',
      ['--env', 'A\nB=x'],
      /env: key "A\\nB" must not contain a newline or another control character/,
    ],
    ['an env key with a tab', ['--env', 'A\tB=x'], /env: key "A\\tB" must not contain a newline/],
    // paths: relative, `..`, malformed mappings
    [
      'a relative workspace path with a space',
      ['--workspace-path', 'work space'],
      /--workspace-path: must be an absolute path inside the cell, got "work space"/,
    ],
    ['a relative --cwd', ['--cwd', '../up'], /--cwd: must be an absolute path inside the cell, got "\.\.\/up"/],
    ['--cwd with ..', ['--cwd', '/workspace/../etc'], /command\.cwd: must not contain '\.\.'/],
    ['--workspace-path with ..', ['--workspace-path', '/a/../b'], /workspacePath: must not contain '\.\.'/],
    [
      'an export source with ..',
      ['--export', '/workspace/../../etc/passwd:out'],
      /exports\[0\]\.source: must not contain '\.\.'/,
    ],
    [
      'an import to a relative cell path',
      ['--import', '/etc/hostname:relative/dest'],
      /--import #1: must be HOST:CELL with an absolute cell path/,
    ],
    ['an import without a cell path', ['--import', './no-destination'], /--import #1: must be HOST:CELL/],
    [
      'a cache destination with ..',
      ['--cache', '/tmp/c:/var/../cache'],
      /caches\[0\]\.destination: must not contain '\.\.'/,
    ],
    ['an export without a cell path', ['--export', ':out'], /--export #1: must be CELL:HOST/],
    ['an export without a host path', ['--export', '/workspace/out:'], /--export #1: must be CELL:HOST/],
    [
      'an export from a relative cell path',
      ['--export', 'workspace/out:out'],
      /--export #1: the cell path must be absolute/,
    ],
    // very long paths: a name over 255 bytes, a path over 4095 bytes, a cell path too long for the state dir
    [
      'a 300-byte name',
      ['--workspace-path', long(300)],
      /workspacePath: has a component of 300 bytes, Linux allows at most 255 per name/,
    ],
    [
      'a 4231-byte path',
      ['--cwd', `/workspace${long(200).repeat(21)}`],
      /command\.cwd: is 4231 bytes long, Linux allows at most 4095/,
    ],
    [
      'a 4016-byte cell path (too long with the state dir)',
      ['--import', `/etc/hostname:${long(250).repeat(16)}`],
      /imports\[0\]\.destination: is 4016 bytes long: a cell path may have at most \d+ bytes with this state dir/,
    ],
    // empty and wrong values
    ['an empty --network', ['--network', ''], /--network: unknown value "": accepted are enabled, disabled/],
    [
      '--network Disabledd',
      ['--network', 'Disabledd'],
      /--network: unknown value "Disabledd": accepted are enabled, disabled/,
    ],
    ['an empty --arch', ['--arch', ''], /--arch: unsupported architecture "": accepted are amd64/],
    ['--arch ARM65', ['--arch', 'ARM65'], /--arch: unsupported architecture "ARM65": accepted are .*arm64\/aarch64/],
    ['an empty --image', ['--image', ''], /--image: must name an image/],
    [
      'an --image with a newline',
      ['--image', 'busy\nbox'],
      /--image: must not contain whitespace or NUL: "busy\\nbox"/,
    ],
    ['an empty --state-dir', ['--state-dir', ''], /--state-dir: must not be empty/],
    // unknown flags, and flags in the wrong case
    [
      '--Network (a flag in the wrong case)',
      ['--Network', 'disabled'],
      /arguments: Unknown option '--Network' \(put the command after --, see build-cell --help\)/,
    ],
    ['an unknown short flag', ['-x'], /arguments: Unknown option '-x'/],
    ['--env without a value', ['--env'], /arguments: Option '--env <value>' argument missing/],
  ] as Array<[string, string[], RegExp]>)('%s', async (_, extra, message) => {
    const fresh = join(work, 'never-created');
    const result = await runCli(['run', '--state-dir', fresh, '--image', image(), ...extra, '--', 'true'], {
      cwd: work,
    });
    expectRefused(result, message);
    expect(readdirSync(work), 'nothing created on the host').toEqual([]);
  });

  it('unknown commands and a run without a command', async () => {
    expectRefused(
      await runCli(['frobnicate', '--state-dir', join(work, 'x')]),
      /command: unknown command "frobnicate": accepted are run, prepare, demo/,
    );
    expectRefused(
      await runCli(['run', '--state-dir', join(work, 'x'), '--image', image()]),
      /command: missing: give --run SCRIPT or -- EXECUTABLE/,
    );
    expectRefused(
      await runCli(['run', '--state-dir', join(work, 'x'), '--image', image(), '--run', 'true', '--', 'true']),
      /--run: give either --run SCRIPT or -- EXECUTABLE/,
    );
    expect(readdirSync(work)).toEqual([]);
  });

  // Regression (fixed; src/cell/runtime-root.ts, canonicalPrefix): the state dir is created (mkdir -p) before
  // its name is checked for ',', ':', '\' and newlines, so the refused dir is left behind. Fix:
  // run the same character check on the resolved path before mkdir (and keep the one on the
  // canonical path after realpath, for symlinks).
  it('a state dir with a colon is refused without being created', async () => {
    const bad = join(work, 'st:ate');
    expectRefused(
      await runCli(['run', '--state-dir', bad, '--image', image(), '--', 'true']),
      /state-dir: must not contain ',', ':', '\\' or newlines/,
    );
    expect(existsSync(bad)).toBe(false);
  });

  // Regression (fixed; src/cell/finalize.ts resolveExportDestinations, called from src/engine.ts after the state
  // dir is created and the image prepared): an export destination inside a cache is refused only
  // after mkdirOwned(parent) has created the missing parent, i.e. the cache dir itself. Fix: check
  // `covers(cache, destination)` on the realpath of the nearest existing ancestor before creating
  // anything, together with the other input checks (checkHostInputs).
  it('an export destination inside a cache is refused without creating the cache dir', async () => {
    const cache = join(work, 'cache');
    const result = await runCli([
      'run',
      '--state-dir',
      join(work, 'state'),
      '--image',
      image(),
      '--cache',
      `${cache}:/c`,
      '--export',
      `/workspace/o:${cache}/o`,
      '--',
      'true',
    ]);
    expectRefused(
      result,
      /exports\[0\]\.destination: ".*\/cache\/o" must neither lie inside nor contain the cache ".*\/cache"/,
    );
    expect(existsSync(cache), 'the cache dir').toBe(false);
  });

  // Regression (fixed; src/cell/finalize.ts resolveExportDestinations): only a destination *inside* a cache is
  // refused (`covers(cache, destination)`). A destination that *contains* a cache is accepted, and
  // the export, which replaces its destination whole (rm -rf, then rename), deletes the host cache
  // before the cache sync, which then fails with a raw "ENOENT ... scandir". Fix: refuse
  // `overlaps(cache, destination)` (and run the check before anything is created, see above).
  it('an export destination that contains a cache is refused, and the cache is kept', async () => {
    const out = join(work, 'out');
    const cache = join(out, 'cache');
    mkdirSync(cache, { recursive: true });
    writeFileSync(join(cache, 'data'), 'precious\n');
    const result = await run([
      '--cache',
      `${cache}:/c`,
      '--export',
      `/workspace/o:${out}`,
      '--run',
      'mkdir o; echo x > o/f',
    ]);
    expectRefused(result, /exports\[0\]\.destination: .*cache/);
    expect(readFileSync(join(cache, 'data'), 'utf8')).toBe('precious\n');
  });
});

describe('legal values in the wrong case or with spaces are accepted', () => {
  it('--arch ARM64 and Linux/AArch64 select arm64 (emulated)', async () => {
    for (const arch of ['ARM64', 'Linux/AArch64']) {
      const result = await runCli([
        'run',
        '--state-dir',
        state,
        '--image',
        image('multi'),
        '--arch',
        arch,
        '--',
        'uname',
        '-m',
      ]);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toBe('aarch64\n');
    }
  });

  it('--network Disabled and " DISABLED " give the cell its own loopback only; --pull, --cleanup, --tls-verify in capitals', async () => {
    for (const network of ['Disabled', ' DISABLED ']) {
      const result = await run([
        '--network',
        network,
        '--pull',
        'MISSING',
        '--cleanup',
        'Always',
        '--tls-verify',
        'TRUE',
        '--run',
        'ip -o link | cut -d: -f2',
      ]);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toBe(' lo\n');
    }
  });
});

describe('legal values arrive in the cell byte for byte', () => {
  const VALUES: Array<[string, string]> = [
    ['EQ', 'a=b==c='],
    ['NL', 'line1\nline2\n\n'],
    ['CRLF', 'dos\r\nline\r\n'],
    ['SPACES', '  lead and trail  '],
    ['TAB', '\tx\t'],
    // The helper decodes entries with printf %b: escapes in values must stay literal.
    ['ESC', '\\0 \\n \\c \\\\ %s %b \\x00 \\0101 \\'],
    ['SHELL', '$(id -u) `id` ${HOME} \'single\' "double" ; | & > <'],
    ['UTF8', 'héllo wörld ✓'],
    ['EMPTY', ''],
    ['DASH', '-n'],
    // Close to the largest entry Linux passes to a program (MAX_ARG_STRLEN, 128 KiB).
    ['BIG', `${'x'.repeat(127 * 1024)}end`],
  ];

  it('env values with =, newlines, CR, escapes, shell syntax, UTF-8, empty and 127 KiB', async () => {
    const names = VALUES.map(([name]) => `"$${name}"`).join(' ');
    const result = await run([
      ...VALUES.flatMap(([k, v]) => ['--env', `${k}=${v}`]),
      '--run',
      `printf '%s\\0' ${names}`,
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.split('\0')).toEqual([...VALUES.map(([, v]) => v), '']);
  });

  it('a key with a space or non-ASCII letters reaches the command (a shell would drop it: env runs directly)', async () => {
    const result = await run(['--env', 'MY KEY=spaced', '--env', 'ÄÖ=umlaut', '--', 'env']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.split('\n')).toEqual(expect.arrayContaining(['MY KEY=spaced', 'ÄÖ=umlaut']));
  });

  it('paths with spaces, colons, commas, newlines, `..` and relative to the working directory, on both sides', async () => {
    mkdirSync(join(work, 'w s:1'));
    writeFileSync(join(work, 'w s:1', 'seed'), 'seed\n');
    mkdirSync(join(work, 'imp\nnl'));
    writeFileSync(join(work, 'imp\nnl', 'f'), 'newline dir\n');
    writeFileSync(join(work, 'f,1'), 'comma file\n');
    mkdirSync(join(work, 'c a'));
    mkdirSync(join(work, 'sub'));
    mkdirSync(join(work, 'imp2'));
    writeFileSync(join(work, 'imp2', 'g'), 'dotdot\n');
    const script = [
      'pwd',
      'cat "../sp ace/seed" "/opt/new\nline/f" /etc/app:conf /imp2/g',
      'echo cached > /var/cache/c,1/entry',
      'echo exported > "/my work/sp ace/out"',
    ].join('\n');
    const result = await run(
      [
        '--workspace',
        'w s:1',
        '--workspace-path',
        '/my work/sp ace',
        '--cwd',
        '/my work/new\nline:x',
        '--import',
        'imp\nnl:/opt/new\nline',
        '--import',
        './f,1:/etc/app:conf',
        '--import',
        'sub/../imp2:/imp2',
        '--cache',
        'c a:/var/cache/c,1',
        '--export',
        '/my work/sp ace/out:o u\nt:x',
        '--run',
        script,
      ],
      { cwd: work },
    );
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe('/my work/new\nline:x\nseed\nnewline dir\ncomma file\ndotdot\n');
    expect(readFileSync(join(work, 'c a', 'entry'), 'utf8')).toBe('cached\n');
    expect(readFileSync(join(work, 'o u\nt:x'), 'utf8')).toBe('exported\n');
    // The host workspace is copied, never written.
    expect(readdirSync(join(work, 'w s:1'))).toEqual(['seed']);
  });

  it('a 100 KiB --run script', async () => {
    const script = `${': filler line of a long script\n'.repeat(3400)}echo done\n`;
    expect(script.length).toBeGreaterThan(100 * 1024);
    const result = await run(['--run', script]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe('done\n');
  });
});

describe('an image config whose Env does not fit what Linux passes to a program', () => {
  it('a 1 MiB value, or 1.2 MiB in all: 125 naming the variable and the limit, before the cell starts', async () => {
    const big = layoutWithConfigEnv(work, 'amd64', 'big-value', [`BIG=${'v'.repeat(1024 * 1024)}`]);
    layoutWithConfigEnv(
      work,
      'amd64',
      'big-total',
      Array.from({ length: 12 }, (_, i) => `E${i}=${'v'.repeat(100 * 1024)}`),
    );
    const value = await runCli(['run', '--state-dir', state, '--image', `oci:${big}:big-value`, '--', 'true']);
    expectRefused(
      value,
      /env\.BIG: is 1048580 bytes as NAME=VALUE: Linux gives a program at most 131071 bytes per environment entry \(MAX_ARG_STRLEN\)/,
    );
    const total = await runCli(['run', '--state-dir', state, '--image', `oci:${big}:big-total`, '--', 'true']);
    expectRefused(total, /env: holds \d+ bytes in all: at most 1048576 are accepted/);
    expect(readdirSync(join(state, 'cells')), 'no scratch left').toEqual([]);
  });
});
