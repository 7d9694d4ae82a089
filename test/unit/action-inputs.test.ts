import { describe, expect, it } from 'vitest';
import { parseEnvLines, parseInputs, unknownInputs, type InputReader } from '../../src/action/inputs.js';
import { UserError } from '../../src/util/errors.js';

const env = { GITHUB_WORKSPACE: '/home/runner/work/repo/repo', RUNNER_TEMP: '/home/runner/work/_temp' };
const reader =
  (values: Record<string, string>): InputReader =>
  (name) =>
    values[name] ?? '';
const parse = (values: Record<string, string>) =>
  parseInputs(reader({ image: 'debian:bookworm', run: 'true', ...values }), env);
const fails = (values: Record<string, string>, field: string, message?: RegExp) => {
  let error: unknown;
  try {
    parse(values);
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(UserError);
  expect((error as UserError).field).toBe(field);
  if (message) expect((error as Error).message).toMatch(message);
};

describe('parseInputs', () => {
  it('applies the documented defaults', () => {
    const inputs = parse({});
    expect(inputs.image.full).toBe('docker://debian:bookworm');
    expect(inputs.workspace).toBe(env.GITHUB_WORKSPACE);
    expect(inputs.workspacePath).toBe('/workspace');
    expect(inputs.workingDirectory).toBe('/workspace');
    expect(inputs.command).toEqual({ kind: 'script', script: 'true', shell: 'sh' });
    expect(inputs.network).toBe('enabled');
    expect(inputs.cleanup).toBe('always');
    expect(inputs.imageCache).toBe(true);
    expect(inputs.registry.tlsVerify).toBe(true);
    expect(inputs.stateDir).toBe('/var/lib/build-cell');
    expect(inputs.toolsSource).toBe('https://deb.debian.org/debian');
  });

  it('requires the image and exactly one of run and command', () => {
    fails({ image: '' }, 'image', /required/);
    fails({ run: '' }, 'run', /required/);
    fails({ run: 'x', command: 'echo' }, 'run', /not both/);
    expect(parse({ run: '', command: 'echo\nhello world\n' }).command).toEqual({
      kind: 'argv',
      argv: ['echo', 'hello world'],
    });
  });

  it('maps paths relative to GITHUB_WORKSPACE and the workspace path', () => {
    const inputs = parse({
      workspace: 'src.tar.gz',
      'working-directory': 'sub/dir',
      imports: 'tools:/opt/tools\n/abs/x:/x',
      caches: '/var/cache/apt\n.ccache:/root/.ccache',
      exports: '/workspace/out:dist\n/workspace/log:/tmp/log',
    });
    expect(inputs.workspace).toBe(`${env.GITHUB_WORKSPACE}/src.tar.gz`);
    expect(inputs.workingDirectory).toBe('/workspace/sub/dir');
    expect(inputs.imports).toEqual([
      { host: `${env.GITHUB_WORKSPACE}/tools`, cell: '/opt/tools' },
      { host: '/abs/x', cell: '/x' },
    ]);
    expect(inputs.caches).toEqual([
      { cell: '/var/cache/apt' },
      { host: `${env.GITHUB_WORKSPACE}/.ccache`, cell: '/root/.ccache' },
    ]);
    expect(inputs.exports).toEqual([
      { cell: '/workspace/out', host: `${env.GITHUB_WORKSPACE}/dist` },
      { cell: '/workspace/log', host: '/tmp/log' },
    ]);
    expect(parse({ workspace: 'none' }).workspace).toBeUndefined();
  });

  it('names the input in every error', () => {
    fails({ arch: 'sparc' }, 'arch', /unsupported architecture/);
    fails({ shell: 'zsh' }, 'shell', /sh, bash/);
    fails({ network: 'off' }, 'network', /enabled, disabled/);
    fails({ memory: 'lots' }, 'memory');
    fails({ 'cpu-time': '0' }, 'cpu-time');
    fails({ 'max-processes': '1.5' }, 'max-processes');
    fails({ cleanup: 'sometimes' }, 'cleanup');
    fails({ 'image-cache': 'yes' }, 'image-cache', /true or false/);
    fails({ 'tls-verify': 'no' }, 'tls-verify');
    fails({ privilege: 'admin' }, 'privilege');
    fails({ 'workspace-path': 'rel' }, 'workspace-path', /absolute/);
    fails({ 'working-directory': '/a/../b' }, 'working-directory', /\.\./);
    fails({ imports: 'noseparator' }, 'imports line 1', /HOST:CELL/);
    fails({ exports: 'relative:out' }, 'exports line 1', /absolute/);
    fails({ env: 'NOEQUALS' }, 'env', /KEY=VALUE/);
    fails({ 'artifact-name': 'a/b' }, 'artifact-name');
    fails({ 'registry-password': 'p' }, 'registry-password', /registry-username/);
    fails({ 'tools-source': 'ftp://x' }, 'tools-source', /http/);
    fails({ image: 'http://x/y' }, 'image', /transport/);
  });

  it('accepts enum values in any case', () => {
    const inputs = parse({ arch: 'ARM64', network: 'Disabled', shell: 'BASH' });
    expect([inputs.arch.name, inputs.network, inputs.command.kind === 'script' && inputs.command.shell]).toEqual([
      'arm64',
      'disabled',
      'bash',
    ]);
  });
});

describe('parseInputs: emulation and qemu', () => {
  it('defaults to emulation auto and no qemu build (as tools says)', () => {
    const inputs = parse({});
    expect(inputs.emulation).toBe('auto');
    expect('qemu' in inputs).toBe(false);
  });
  it('takes emulation qemu and the qemu builds', () => {
    expect(parse({ emulation: 'qemu', qemu: '10.0' })).toMatchObject({ emulation: 'qemu', qemu: '10.0' });
    expect(parse({ qemu: '7.2' }).qemu).toBe('7.2');
    expect(parse({ qemu: 'path' }).qemu).toBe('path');
  });
  it('refuses a bad value, naming the input and what is accepted', () => {
    fails({ emulation: 'native' }, 'emulation', /auto .* or qemu/);
    fails({ qemu: '8.2' }, 'qemu', /7\.2 .*10\.0 .*path/);
  });
});

describe('parseEnvLines', () => {
  it('reads KEY=VALUE lines, keeping = in values and skipping blanks and comments', () => {
    expect(parseEnvLines('A=1\n\n# note\nB=x=y\nC=\n')).toEqual([
      ['A', '1'],
      ['B', 'x=y'],
      ['C', ''],
    ]);
  });
  it('reads heredoc values', () => {
    expect(parseEnvLines('KEY<<EOF\nline 1\nline 2\nEOF\nNEXT=n')).toEqual([
      ['KEY', 'line 1\nline 2'],
      ['NEXT', 'n'],
    ]);
    expect(() => parseEnvLines('KEY<<EOF\nunterminated')).toThrow(/closing EOF/);
  });
});

describe('unknownInputs', () => {
  it('lists INPUT_ variables the action does not declare', () => {
    expect(unknownInputs({ INPUT_IMAGE: 'x', 'INPUT_ARTIFACT-NAME': 'a', INPUT_IMAGES: 'typo', PATH: '/bin' })).toEqual(
      ['images'],
    );
  });
});
