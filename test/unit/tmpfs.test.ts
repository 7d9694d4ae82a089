/**
 * --tmpfs / the `tmpfs` input: its syntax, its checks in the spec (each error names the flag,
 * input or field and says what is accepted), and its way into a cell request and a session's
 * steps. The plan's mount ops for it are in plan.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { parseCli, type CliEnvironment } from '../../src/cli/args.js';
import { parseInputs } from '../../src/action/inputs.js';
import { toCellRequest } from '../../src/action/inputs-to-request.js';
import { tmpfsMount } from '../../src/cellspec/text.js';
import { normalizeSpec, validateSpec } from '../../src/cellspec/validate.js';
import type { BuildCellSpec } from '../../src/cellspec/types.js';
import { stepRequest } from '../../src/session/run.js';
import type { SessionState } from '../../src/session/state.js';
import { baseSpec, expectUserError } from './spec-fixture.js';

const G = 1024 ** 3;
const SYNTAX = 'accepted are CELLPATH or CELLPATH:size=SIZE';

describe('tmpfsMount', () => {
  it('takes a cell path, with size= as its one option', () => {
    expect(tmpfsMount('/tmp', '--tmpfs #1')).toEqual({ destination: '/tmp' });
    expect(tmpfsMount('/build:size=2G', '--tmpfs #1')).toEqual({ destination: '/build', sizeBytes: 2 * G });
    expect(tmpfsMount('/b:size=512M', '--tmpfs #1')).toEqual({ destination: '/b', sizeBytes: 512 * 1024 ** 2 });
  });

  it('keeps a cell path with a colon of its own whole (options hold no slash)', () => {
    expect(tmpfsMount('/a:b/c', '--tmpfs #1')).toEqual({ destination: '/a:b/c' });
  });

  it.each([
    ['tmp', 'must be an absolute path inside the cell'],
    ['', 'must be an absolute path inside the cell'],
    [':size=1G', 'must be an absolute path inside the cell'],
    ['/', 'must not be /'],
    ['/a/../b', "must not contain '..'"],
    ['/tmp:rw', 'unknown option "rw"'],
    ['/tmp:size=1G,noexec', 'unknown option "noexec"'],
    ['/tmp:', 'unknown option ""'],
  ])('refuses %j, naming the flag and the syntax', (value, why) => {
    const message = expectUserError(() => tmpfsMount(value, '--tmpfs #2'), '--tmpfs #2', why);
    if (why.startsWith('unknown') || why.startsWith('must be an')) expect(message).toContain(SYNTAX);
  });

  it.each(['/tmp:size=', '/tmp:size=10K', '/tmp:size=lots', '/tmp:size=-1G'])('refuses the size in %j', (value) => {
    expectUserError(() => tmpfsMount(value, '--tmpfs #1'), '--tmpfs #1', 'must be a size of at least 1M');
  });

  it('refuses a size given twice', () => {
    expectUserError(() => tmpfsMount('/t:size=1G,size=2G', '--tmpfs #1'), '--tmpfs #1', 'size is given twice');
  });
});

describe('--tmpfs and the tmpfs input', () => {
  const ENV: CliEnvironment = { cwd: '/home/u', env: { HOME: '/home/u' }, uid: 1000 };
  const run = (...flags: string[]) => {
    const command = parseCli(['run', '--image', 'debian', ...flags, '--', 'true'], ENV);
    if (command.kind !== 'run') throw new Error(`expected run, got ${command.kind}`);
    return command;
  };

  it('the CLI: repeatable, in order; absent when not given', () => {
    expect(run('--tmpfs', '/tmp', '--tmpfs', '/workspace/build:size=1G').spec.tmpfs).toEqual([
      { destination: '/tmp' },
      { destination: '/workspace/build', sizeBytes: G },
    ]);
    expect(run().spec).not.toHaveProperty('tmpfs');
    expectUserError(() => run('--tmpfs', '/tmp', '--tmpfs', 'build'), '--tmpfs #2', SYNTAX);
  });

  it('session start keeps it for every step', () => {
    const start = parseCli(['session', 'start', '--image', 'debian', '--tmpfs', '/tmp'], ENV);
    expect(start).toMatchObject({ kind: 'session-start', spec: { tmpfs: [{ destination: '/tmp' }] } });
    const state = {
      stateDir: '/s',
      image: { ref: { full: 'docker://debian' }, arch: 'arm', digest: 'sha256:1' },
      workspacePath: '/workspace',
      cwd: '/workspace',
      shell: 'sh',
      imports: [],
      caches: [],
      tmpfs: [{ destination: '/tmp', sizeBytes: G }],
      network: 'enabled',
      limits: {},
      cleanup: 'always',
      root: { dir: '/s/sessions/j-default', upper: '/s/sessions/j-default/upper' },
      failed: false,
    } as unknown as SessionState;
    const step = stepRequest(state, { command: { script: 'make' }, env: [] });
    expect(step.spec.tmpfs).toEqual([{ destination: '/tmp', sizeBytes: G }]);
  });

  it('the action: lines, into the cell request', () => {
    const env = { GITHUB_WORKSPACE: '/ws', RUNNER_TEMP: '/rt' };
    const inputs = (tmpfs: string) =>
      parseInputs((name) => (({ image: 'debian', run: 'make', tmpfs }) as Record<string, string>)[name] ?? '', env);
    expect(inputs('').tmpfs).toEqual([]);
    const parsed = inputs('/tmp\n\n/workspace/build:size=2G\n');
    expect(parsed.tmpfs).toEqual([{ destination: '/tmp' }, { destination: '/workspace/build', sizeBytes: 2 * G }]);
    const request = toCellRequest(parsed, { env, runnerTemp: '/rt', fileCommandsDir: '/rt/fc', cacheDirs: [] });
    expect(request.spec.tmpfs).toEqual(parsed.tmpfs);
    expect(
      toCellRequest(inputs(''), { env, runnerTemp: '/rt', fileCommandsDir: '/rt/fc', cacheDirs: [] }).spec,
    ).not.toHaveProperty('tmpfs');
    expect(() => inputs('/tmp:size=huge')).toThrow(/^tmpfs line 1: must be a size of at least 1M/);
    expect(() => inputs('/tmp\nbuild')).toThrow(/^tmpfs line 2: must be an absolute path inside the cell/);
  });
});

describe('validateSpec: tmpfs', () => {
  const invalid = (overrides: Partial<BuildCellSpec>, field: string, ...fragments: string[]) =>
    expectUserError(() => validateSpec(baseSpec(overrides)), field, ...fragments);

  it('accepts a tmpfs anywhere but over another mount, inside the workspace too', () => {
    const spec = baseSpec({
      tmpfs: [{ destination: '/tmp' }, { destination: '/workspace/build', sizeBytes: G }],
      command: { cwd: '/workspace/build', executable: 'make', argv: [] },
    });
    expect(validateSpec(spec)).toBeUndefined();
    expect(normalizeSpec({ ...spec, tmpfs: [{ destination: '/tmp//x/' }] }).tmpfs).toEqual([{ destination: '/tmp/x' }]);
  });

  it.each([
    [{ destination: '/' }, 'tmpfs[0].destination', 'must not be /'],
    [{ destination: 'tmp' }, 'tmpfs[0].destination', 'must be an absolute path'],
    [{ destination: '/proc/x' }, 'tmpfs[0].destination', 'would cover /proc'],
    [{ destination: '/dev/shm' }, 'tmpfs[0].destination', 'would cover /dev'],
    [{ destination: '/.build-cell' }, 'tmpfs[0].destination', 'would cover /.build-cell'],
    [{ destination: '/workspace' }, 'tmpfs[0].destination', 'conflicts with the workspace path'],
    [{ destination: '/home' }, 'tmpfs[0].destination', 'conflicts with the workspace path "/home/u/ws"'],
    [{ destination: '/tmp', sizeBytes: 1000 }, 'tmpfs[0].sizeBytes', 'at least 1048576'],
    [{ destination: '/tmp', sizeBytes: 2 ** 20 + 0.5 }, 'tmpfs[0].sizeBytes', 'whole number'],
  ])('refuses %j', (tmpfs, field, why) => {
    const workspacePath = tmpfs.destination === '/home' ? '/home/u/ws' : '/workspace';
    invalid({ tmpfs: [tmpfs], workspacePath, command: { cwd: '/', executable: 'make', argv: [] } }, field, why);
  });

  it('refuses one over an import or a cache, or inside one (names the later)', () => {
    invalid({ tmpfs: [{ destination: '/src/gen' }] }, 'tmpfs[0].destination', 'conflicts with imports[0].destination');
    invalid({ tmpfs: [{ destination: '/root' }] }, 'tmpfs[0].destination', 'conflicts with caches[0].destination');
    invalid(
      { tmpfs: [{ destination: '/t' }, { destination: '/t/' }] },
      'tmpfs[1].destination',
      'conflicts with tmpfs[0].destination',
    );
  });

  it('refuses a working directory below a tmpfs, which starts empty', () => {
    invalid(
      { tmpfs: [{ destination: '/build' }], command: { cwd: '/build/x', executable: 'make', argv: [] } },
      'command.cwd',
      '"/build/x" lies below the tmpfs "/build"',
      'may be the tmpfs itself',
    );
  });

  it('refuses a tmpfs field that is not a list (a hand-written request)', () => {
    invalid({ tmpfs: '/tmp' as unknown as BuildCellSpec['tmpfs'] }, 'tmpfs', 'must be a list');
  });
});
