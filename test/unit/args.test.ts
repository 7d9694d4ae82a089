import { describe, expect, it } from 'vitest';
import { hostArch } from '../../src/emulation/arch.js';
import { envEntry, parseCli, stateDir, USAGE, type CliCommand, type CliEnvironment } from '../../src/cli/args.js';
import { cellToHost, hostToCell, optionalInt, optionalSize } from '../../src/cellspec/text.js';
import { expectUserError } from './spec-fixture.js';

const ENV: CliEnvironment = { cwd: '/home/u/proj', env: { HOME: '/home/u', TOKEN: 'abc=def' }, uid: 1000 };
const cli = (argv: string[], environment: Partial<CliEnvironment> = {}) => parseCli(argv, { ...ENV, ...environment });
const run = (flags: string[], command: string[] = ['--', '/bin/true'], environment: Partial<CliEnvironment> = {}) => {
  const result = cli(['run', '--image', 'busybox', ...flags, ...command], environment);
  if (result.kind !== 'run') throw new Error(`expected run, got ${result.kind}`);
  return result;
};

describe('parseCli: run command', () => {
  it('takes the command after --', () => {
    const r = run([], ['--', '/bin/true']);
    expect(r.spec.command).toEqual({ cwd: '/workspace', executable: '/bin/true', argv: [] });
    expect(r.spec.script).toBeUndefined();
    expect(r.image.ref.full).toBe('docker://busybox');
    expect(r.image.arch).toBe(hostArch());
    expect(r.image.pull).toBe('missing');
    expect(r.image.registry).toEqual({
      tlsVerify: true,
      username: undefined,
      password: undefined,
      authFile: undefined,
    });
  });

  it('keeps arguments after -- verbatim, including ones that look like flags', () => {
    const r = run([], ['--', 'make', '-j4', '--env', 'X=1', '--', 'a b', '']);
    expect(r.spec.command).toEqual({
      cwd: '/workspace',
      executable: 'make',
      argv: ['-j4', '--env', 'X=1', '--', 'a b', ''],
    });
    expect(r.spec.env).toEqual([]);
  });

  it('does not take --help or --version after -- as its own', () => {
    expect(run([], ['--', 'ls', '--help']).spec.command).toEqual({
      cwd: '/workspace',
      executable: 'ls',
      argv: ['--help'],
    });
    expect(run([], ['--', '--version']).spec.command).toEqual({ cwd: '/workspace', executable: '--version', argv: [] });
  });

  it('--run runs the script with /bin/sh -e, keeping it unchanged', () => {
    const script = 'echo one\necho "two three"\n  indented\\\n';
    const r = run(['--run', script], []);
    expect(r.spec.command).toEqual({ cwd: '/workspace', executable: '/bin/sh', argv: ['-e', '/.build-cell/run.sh'] });
    expect(r.spec.script).toBe(script);
  });

  it('rejects both --run and a command', () => {
    expectUserError(() => run(['--run', 'true'], ['--', '/bin/true']), '--run', 'not both');
  });

  it('rejects neither --run nor a command', () => {
    expectUserError(() => run([], []), 'command', 'missing: give --run SCRIPT or -- EXECUTABLE');
    expectUserError(() => run([], ['--']), 'command', 'missing');
  });

  it('rejects NUL in --run', () => {
    expectUserError(() => run(['--run', 'a\0b'], []), '--run', 'NUL');
  });

  it('has defaults for every option', () => {
    const r = run([]);
    expect(r.spec).toEqual({
      workspacePath: '/workspace',
      workspaceSeed: { kind: 'empty' },
      imports: [],
      caches: [],
      exports: [],
      command: { cwd: '/workspace', executable: '/bin/true', argv: [] },
      env: [],
      network: 'enabled',
      limits: { cpuTimeSeconds: undefined, memoryBytes: undefined, maxProcesses: undefined },
      cleanup: 'always',
    });
    expect(r.stateDir).toBe('/home/u/.cache/build-cell');
    expect(r.privilege).toBe('auto');
    expect(r.verbose).toBe(false);
    expect(r.resultFile).toBeUndefined();
  });
});

describe('parseCli: --env', () => {
  it('takes K=V, the value may contain =', () => {
    expect(run(['--env', 'A=1', '--env', 'B=x=y', '--env', 'C=']).spec.env).toEqual([
      ['A', '1'],
      ['B', 'x=y'],
      ['C', ''],
    ]);
  });
  it('inherits K from the given environment', () => {
    expect(run(['--env', 'TOKEN']).spec.env).toEqual([['TOKEN', 'abc=def']]);
    expect(run(['--env', 'X'], undefined, { env: { X: '' } }).spec.env).toEqual([['X', '']]);
  });
  it('rejects an inherited name that is not set', () => {
    expectUserError(() => run(['--env', 'MISSING']), '--env', '"MISSING"', 'not set in this environment');
  });
  it('rejects an empty name', () => {
    expectUserError(() => run(['--env', '=v']), '--env', 'name must not be empty', '"=v"');
  });
  it('envEntry is exported and pure', () => {
    expect(envEntry('K=a=b', {})).toEqual(['K', 'a=b']);
    expect(envEntry('HOME', { HOME: '/h' })).toEqual(['HOME', '/h']);
  });
});

describe('parseCli: --import, --cache, --export, --workspace', () => {
  it('resolves a relative host path against the given cwd', () => {
    const r = run(['--import', './a:/x', '--cache', 'cache:/root/.cache', '--import', '/abs/b:/y']);
    expect(r.spec.imports).toEqual([
      { source: '/home/u/proj/a', destination: '/x' },
      { source: '/abs/b', destination: '/y' },
    ]);
    expect(r.spec.caches).toEqual([{ source: '/home/u/proj/cache', destination: '/root/.cache' }]);
  });

  it("splits a host path containing ':' at the last ':/'", () => {
    expect(hostToCell('/data/a:b:/x', '--import #1', '/cwd')).toEqual({ source: '/data/a:b', destination: '/x' });
    expect(hostToCell('c:d:/x/y', '--import #1', '/cwd')).toEqual({ source: '/cwd/c:d', destination: '/x/y' });
    expect(hostToCell('/h:/a:/b', '--import #1', '/cwd')).toEqual({ source: '/h:/a', destination: '/b' });
  });

  it.each(['/x', ':/x', 'a:x', 'a', ''])('rejects the import %j', (value) => {
    expectUserError(() => run(['--import', value]), '--import #1', 'HOST:CELL', JSON.stringify(value));
  });

  it('numbers the offending mount', () => {
    expectUserError(() => run(['--cache', 'a:/b', '--cache', 'bad']), '--cache #2', '"bad"');
  });

  it('--export resolves the host destination against cwd', () => {
    const r = run(['--export', '/workspace/out:out', '--export', '/w/x:/abs/y', '--export', '/a:b:c']);
    expect(r.spec.exports).toEqual([
      { source: '/workspace/out', destination: '/home/u/proj/out' },
      { source: '/w/x', destination: '/abs/y' },
      { source: '/a', destination: '/home/u/proj/b:c' },
    ]);
    expect(cellToHost('/a:../up', '--export #1', '/c/d')).toEqual({ source: '/a', destination: '/c/up' });
  });

  it.each([
    ['out:/host', 'the cell path must be absolute'],
    ['/out:', 'CELL:HOST'],
    [':x', 'CELL:HOST'],
    ['/out', 'CELL:HOST'],
  ])('rejects the export %j', (value, fragment) => {
    expectUserError(() => run(['--export', value]), '--export #1', fragment);
  });

  it('--workspace: a directory is a snapshot, an archive is unpacked, none is empty', () => {
    expect(run(['--workspace', 'src']).spec.workspaceSeed).toEqual({ kind: 'snapshot', path: '/home/u/proj/src' });
    expect(run(['--workspace', '../ws.tar.gz']).spec.workspaceSeed).toEqual({
      kind: 'archive',
      path: '/home/u/ws.tar.gz',
    });
    expect(run(['--workspace', '/a/b.tgz']).spec.workspaceSeed).toEqual({ kind: 'archive', path: '/a/b.tgz' });
    expect(run(['--workspace', 'none']).spec.workspaceSeed).toEqual({ kind: 'empty' });
    expect(run(['--workspace', '']).spec.workspaceSeed).toEqual({ kind: 'empty' });
  });

  it('--workspace-path and --cwd must be absolute; cwd defaults to the workspace path', () => {
    const r = run(['--workspace-path', '/src']);
    expect(r.spec.workspacePath).toBe('/src');
    expect(r.spec.command.cwd).toBe('/src');
    expect(run(['--cwd', '/tmp']).spec.command.cwd).toBe('/tmp');
    expectUserError(() => run(['--workspace-path', 'src']), '--workspace-path', 'absolute', '"src"');
    expectUserError(() => run(['--cwd', 'sub']), '--cwd', 'absolute', '"sub"');
  });

  it('--result-file is resolved against cwd', () => {
    expect(run(['--result-file', 'r.json']).resultFile).toBe('/home/u/proj/r.json');
  });
});

describe('parseCli: limits', () => {
  it.each([
    ['512M', 536870912],
    ['512m', 536870912],
    ['2g', 2147483648],
    ['2G', 2147483648],
    ['1048576', 1048576],
    ['1024K', 1048576],
    ['1T', 1024 ** 4],
    ['512MB', 536870912],
    ['512MiB', 536870912],
    [' 1G ', 1073741824],
  ])('--memory %j = %d', (value, bytes) => {
    expect(run(['--memory', value]).spec.limits.memoryBytes).toBe(bytes);
  });

  it.each(['10', 'abc', '1.5G', '0M', '', '-1G', '1048575', '1023K', '2P', 'G', '99999999999T'])(
    'rejects --memory %j',
    (value) => {
      expectUserError(() => run([`--memory=${value}`]), '--memory', 'at least 1M', JSON.stringify(value));
    },
  );

  it('a value starting with - needs the --flag=value form (node parseArgs), and the error says so', () => {
    expectUserError(() => run(['--memory', '-1G']), 'arguments', "'--memory'", "use '--memory=-XYZ'");
  });

  it('takes whole --cpu-time and --max-processes', () => {
    const r = run(['--cpu-time', '60', '--max-processes', '128']);
    expect(r.spec.limits).toEqual({ cpuTimeSeconds: 60, memoryBytes: undefined, maxProcesses: 128 });
  });

  it.each(['0', 'abc', '-1', '1.5', '', '1e3', '0x10', '9007199254740993'])('rejects --cpu-time %j', (value) => {
    expectUserError(() => run([`--cpu-time=${value}`]), '--cpu-time', 'whole number of seconds', JSON.stringify(value));
  });

  it.each(['0', 'many'])('rejects --max-processes %j', (value) => {
    expectUserError(() => run(['--max-processes', value]), '--max-processes', 'whole number of processes');
  });

  it('optionalInt/optionalSize pass undefined through', () => {
    expect(optionalInt(undefined, 'f', 'x')).toBeUndefined();
    expect(optionalSize(undefined, 'f')).toBeUndefined();
  });
});

describe('parseCli: policies', () => {
  it('--network is case-insensitive', () => {
    expect(run(['--network', 'DISABLED']).spec.network).toBe('disabled');
    expect(run(['--network', 'Enabled']).spec.network).toBe('enabled');
  });
  it('rejects --network off, listing accepted values', () => {
    expectUserError(
      () => run(['--network', 'off']),
      '--network',
      'unknown value "off"',
      'accepted are enabled, disabled',
    );
  });
  it('--cleanup', () => {
    for (const c of ['always', 'preserve-on-failure', 'never'] as const)
      expect(run(['--cleanup', c]).spec.cleanup).toBe(c);
    expectUserError(
      () => run(['--cleanup', 'sometimes']),
      '--cleanup',
      '"sometimes"',
      'always, preserve-on-failure, never',
    );
  });
  it('--pull', () => {
    for (const p of ['missing', 'always', 'never'] as const) expect(run(['--pull', p]).image.pull).toBe(p);
    expect(run(['--pull', 'ALWAYS']).image.pull).toBe('always');
    expectUserError(() => run(['--pull', 'if-needed']), '--pull', '"if-needed"', 'missing, always, never');
  });
  it('--tls-verify', () => {
    expect(run(['--tls-verify', 'false']).image.registry.tlsVerify).toBe(false);
    expect(run(['--tls-verify', 'TRUE']).image.registry.tlsVerify).toBe(true);
    expectUserError(() => run(['--tls-verify', 'yes']), '--tls-verify', 'must be true or false', '"yes"');
  });
  it('--privilege', () => {
    expect(run(['--privilege', 'sudo']).privilege).toBe('sudo');
    expectUserError(() => run(['--privilege', 'doas']), '--privilege', 'auto, root, sudo, rootless');
  });
  it('--arch', () => {
    expect(run(['--arch', 'aarch64']).image.arch.name).toBe('arm64');
    expect(run(['--arch', 'linux/arm/v7']).image.arch.name).toBe('arm');
    expectUserError(() => run(['--arch', 'sparc']), '--arch', 'unsupported architecture "sparc"', 'amd64');
  });
  it('--verbose and -v', () => {
    expect(run(['--verbose']).verbose).toBe(true);
    expect(run(['-v']).verbose).toBe(true);
  });
});

describe('parseCli: image and registry', () => {
  it('requires --image', () => {
    expectUserError(() => cli(['run', '--', '/bin/true']), '--image', 'is required');
    expectUserError(() => cli(['prepare']), '--image', 'is required');
  });
  it('validates the reference under --image', () => {
    expectUserError(() => cli(['run', '--image', 'http://x', '--', 'true']), '--image', 'unsupported transport');
    expectUserError(() => cli(['run', '--image', '', '--', 'true']), '--image', 'must name an image');
  });
  it('reads the password from stdin, without its trailing newline', () => {
    const r = run(['--registry-username', 'u', '--registry-password-stdin'], undefined, {
      readStdin: () => 's3cret\n',
    });
    expect(r.image.registry).toMatchObject({ username: 'u', password: 's3cret' });
  });
  it('takes the password from BUILD_CELL_REGISTRY_PASSWORD', () => {
    const r = run(['--registry-username', 'u'], undefined, { env: { BUILD_CELL_REGISTRY_PASSWORD: 'pw' } });
    expect(r.image.registry).toMatchObject({ username: 'u', password: 'pw' });
  });
  it('rejects a username without a password and a password without a username', () => {
    expectUserError(() => run(['--registry-username', 'u']), '--registry-username', 'needs a password');
    expectUserError(() => run(['--registry-password-stdin']), '--registry-password-stdin', 'needs --registry-username');
  });
  it('resolves --authfile against cwd', () => {
    expect(run(['--authfile', 'auth.json']).image.registry.authFile).toBe('/home/u/proj/auth.json');
  });
});

describe('parseCli: emulation', () => {
  it('defaults to --emulation auto, no --qemu, no --tools-source', () => {
    const r = run([]);
    expect(r.emulation).toBe('auto');
    expect('qemu' in r).toBe(false);
    expect('toolsSource' in r).toBe(false);
  });
  it('takes --emulation qemu, --qemu 10.0 and --tools-source on run, prepare and session start', () => {
    const flags = ['--emulation', 'qemu', '--qemu', '10.0', '--tools-source', 'http://127.0.0.1:9/debian'];
    expect(run(flags)).toMatchObject({ emulation: 'qemu', qemu: '10.0', toolsSource: 'http://127.0.0.1:9/debian' });
    expect(cli(['prepare', '--image', 'busybox', ...flags])).toMatchObject({ emulation: 'qemu', qemu: '10.0' });
    expect(cli(['session', 'start', '--image', 'busybox', ...flags])).toMatchObject({
      emulation: 'qemu',
      qemu: '10.0',
    });
  });
  it('refuses a bad value, naming the flag and what is accepted', () => {
    expectUserError(() => run(['--emulation', 'native']), '--emulation', 'auto', 'qemu');
    expectUserError(() => run(['--qemu', '9.0']), '--qemu', '7.2', '10.0', 'path');
    expectUserError(() => run(['--tools-source', 'ftp://mirror']), '--tools-source', 'http(s) URL');
  });
});

describe('parseCli: errors', () => {
  it('rejects an unknown flag, naming it', () => {
    const message = expectUserError(() => run(['--bogus']), 'arguments', '--bogus');
    expect(message).toContain('build-cell --help');
    expect(message).not.toContain('To specify a positional argument');
  });
  it('rejects a positional argument before --', () => {
    expectUserError(() => cli(['run', '--image', 'busybox', '/bin/true']), 'arguments', '/bin/true');
  });
  it('rejects a flag without its value', () => {
    expectUserError(() => cli(['run', '--image']), 'arguments', '--image');
  });
  it('rejects an unknown command, listing the commands', () => {
    expectUserError(() => cli(['build']), 'command', 'unknown command "build"', 'run, prepare, demo');
  });
});

describe('parseCli: stateDir', () => {
  it('defaults to /var/lib/build-cell for root', () => {
    expect(stateDir(undefined, { cwd: '/', env: { HOME: '/root', XDG_CACHE_HOME: '/x' }, uid: 0 })).toBe(
      '/var/lib/build-cell',
    );
  });
  it('uses XDG_CACHE_HOME/build-cell for other users', () => {
    expect(stateDir(undefined, { cwd: '/', env: { HOME: '/home/u', XDG_CACHE_HOME: '/xdg/cache' }, uid: 1000 })).toBe(
      '/xdg/cache/build-cell',
    );
  });
  it('falls back to HOME/.cache/build-cell', () => {
    expect(stateDir(undefined, { cwd: '/', env: { HOME: '/home/u' }, uid: 1000 })).toBe('/home/u/.cache/build-cell');
    expect(stateDir(undefined, { cwd: '/', env: { HOME: '/home/u', XDG_CACHE_HOME: '' }, uid: 1000 })).toBe(
      '/home/u/.cache/build-cell',
    );
  });
  it('takes --state-dir relative to cwd, for root too', () => {
    expect(stateDir('state', { cwd: '/work', env: {}, uid: 0 })).toBe('/work/state');
    expect(run(['--state-dir', '../s']).stateDir).toBe('/home/u/s');
    expectUserError(() => stateDir('  ', { cwd: '/', env: {}, uid: 0 }), '--state-dir', 'must not be empty');
  });

  // Regression (fixed): src/cli/args.ts:198 stateDir resolves a relative XDG_CACHE_HOME with path.resolve, i.e.
  // against process.cwd() (not even environment.cwd), so the state dir silently depends on where
  // the CLI was started. The XDG Base Directory spec says relative values must be ignored. Fix:
  // `const xdg = environment.env.XDG_CACHE_HOME; const cache = xdg && isAbsolute(xdg) ? xdg : resolve(HOME || homedir(), '.cache');`
  it('ignores a relative XDG_CACHE_HOME, as the XDG spec requires', () => {
    expect(
      stateDir(undefined, { cwd: '/elsewhere', env: { HOME: '/home/u', XDG_CACHE_HOME: 'rel/cache' }, uid: 1000 }),
    ).toBe('/home/u/.cache/build-cell');
  });
});

describe('parseCli: other commands', () => {
  it.each([
    [[]],
    [['--help']],
    [['-h']],
    [['help']],
    [['run', '--help']],
    [['run', '--image', 'x', '-h']],
    [['prepare', '--help']],
  ])('%j gives the usage', (argv) => {
    const result = cli(argv);
    expect(result).toEqual({ kind: 'help', text: USAGE });
    expect(USAGE).toContain('build-cell run --image REF');
  });

  it.each([[['--version']], [['version']]])('%j gives the version', (argv) => {
    expect(cli(argv)).toEqual({ kind: 'version' });
  });

  it('prepare takes the image options', () => {
    const result = cli([
      'prepare',
      '--image',
      'debian:bookworm',
      '--arch',
      'arm64',
      '--pull',
      'always',
      '--tls-verify',
      'false',
      '--state-dir',
      '/s',
    ]);
    expect(result).toMatchObject({ kind: 'prepare', stateDir: '/s', privilege: 'auto', verbose: false });
    const p = result as Extract<CliCommand, { kind: 'prepare' }>;
    expect(p.image.ref.full).toBe('docker://debian:bookworm');
    expect(p.image.arch.name).toBe('arm64');
    expect(p.image.pull).toBe('always');
    expect(p.image.registry.tlsVerify).toBe(false);
  });

  it('prepare rejects a command and run-only flags', () => {
    expectUserError(() => cli(['prepare', '--image', 'x', '--', 'true']), 'prepare', 'takes no command');
    expectUserError(() => cli(['prepare', '--image', 'x', '--export', 'a:b']), 'arguments', '--export');
    expectUserError(() => cli(['prepare', '--image', 'x', '--env', 'A=1']), '--env', 'only with --install');
    expectUserError(() => cli(['prepare', '--image', 'x', '--cache', 'c:/c']), '--cache', 'only with --install');
  });

  it('takes the install step on run and prepare', () => {
    const run = cli([
      'run',
      '--image',
      'x',
      '--install',
      'apt-get install -y gcc',
      '--install-key',
      'k1',
      '--env',
      'A=1',
      '--',
      'true',
    ]);
    expect(run).toMatchObject({ kind: 'run', install: { script: 'apt-get install -y gcc', key: 'k1' } });
    expect(cli(['run', '--image', 'x', '--install', 'true', '--', 'true'])).toMatchObject({
      install: { script: 'true', key: '' },
    });
    expect(cli(['run', '--image', 'x', '--', 'true'])).not.toHaveProperty('install');
    const prepare = cli([
      'prepare',
      '--image',
      'x',
      '--install',
      'apk add gcc',
      '--env',
      'A=1',
      '--cache',
      '/h/apt:/var/cache/apt',
    ]);
    expect(prepare).toMatchObject({
      kind: 'prepare',
      install: { script: 'apk add gcc', key: '' },
      env: [['A', '1']],
      caches: [{ source: '/h/apt', destination: '/var/cache/apt' }],
    });
  });

  it('refuses a bad install step, naming the flag', () => {
    expectUserError(
      () => cli(['run', '--image', 'x', '--install-key', 'k', '--', 'true']),
      '--install-key',
      'needs --install',
    );
    expectUserError(
      () => cli(['run', '--image', 'x', '--install', '  ', '--', 'true']),
      '--install',
      'must not be empty',
    );
    expectUserError(() => cli(['run', '--image', 'x', '--install', 'a\0b', '--', 'true']), '--install', 'NUL');
    expectUserError(() => cli(['prepare', '--image', 'x', '--install-key', 'k']), '--install-key', 'needs --install');
  });

  it('demo takes only --state-dir, --privilege and --verbose', () => {
    expect(cli(['demo'])).toEqual({
      kind: 'demo',
      stateDir: '/home/u/.cache/build-cell',
      privilege: 'auto',
      verbose: false,
    });
    expect(cli(['demo', '--state-dir', 'st', '--privilege', 'root', '-v'], { uid: 0 })).toEqual({
      kind: 'demo',
      stateDir: '/home/u/proj/st',
      privilege: 'root',
      verbose: true,
    });
    expect(cli(['demo'], { uid: 0 })).toMatchObject({ stateDir: '/var/lib/build-cell' });
    expectUserError(() => cli(['demo', '--image', 'x']), 'arguments', '--image');
  });
});
