/** Sessions' pure parts: the step environment, the shim, names, the CLI's session commands. */
import { describe, expect, it } from 'vitest';
import { parseEnviron, stepEnvironment } from '../../src/session/env.js';
import { checkSessionName, type SessionState } from '../../src/session/state.js';
import { shimScript } from '../../src/action/session.js';
import { parseCli } from '../../src/cli/args.js';
import { parseReference } from '../../src/image/reference.js';
import { parseInputs, type InputReader } from '../../src/action/inputs.js';
import { expectUserError } from './spec-fixture.js';

describe('stepEnvironment: what a runner step gives its cell', () => {
  const machine = {
    PATH: '/usr/bin',
    HOME: '/home/runner',
    JAVA_HOME: '/usr/lib/jvm/17',
    ImageOS: 'ubuntu24',
    LANG: 'C.UTF-8',
  };
  const step = {
    ...machine,
    PATH: '/home/runner/work/_temp/build-cell/bin:/usr/bin',
    CI: 'true',
    GITHUB_SHA: 'abc',
    GITHUB_REPOSITORY: 'o/r',
    GITHUB_TOKEN: 'ghs_x',
    GITHUB_OUTPUT: '/t/out',
    GITHUB_STATE: '/t/state',
    RUNNER_TEMP: '/t',
    RUNNER_OS: 'Linux',
    ACTIONS_RUNTIME_TOKEN: 'secret',
    ACTIONS_RESULTS_URL: 'https://x',
    INPUT_IMAGE: 'debian',
    STATE_mode: 'root',
    MY_VAR: 'from env:',
    FROM_EARLIER_STEP: 'GITHUB_ENV',
    JAVA_HOME: '/opt/jdk21',
  };
  const env = Object.fromEntries(stepEnvironment(step, machine));
  it('passes the workflow env, GITHUB_ENV of earlier steps, and a machine variable the workflow changed', () => {
    expect(env).toMatchObject({ MY_VAR: 'from env:', FROM_EARLIER_STEP: 'GITHUB_ENV', JAVA_HOME: '/opt/jdk21' });
  });
  it('passes the curated GitHub context, never the runtime tokens, the runner internals or the host PATH', () => {
    expect(env).toMatchObject({ CI: 'true', GITHUB_SHA: 'abc', GITHUB_REPOSITORY: 'o/r', RUNNER_OS: 'Linux' });
    for (const name of [
      'ACTIONS_RUNTIME_TOKEN',
      'ACTIONS_RESULTS_URL',
      'GITHUB_TOKEN',
      'GITHUB_OUTPUT',
      'GITHUB_STATE',
      'RUNNER_TEMP',
      'INPUT_IMAGE',
      'STATE_mode',
      'PATH',
      'HOME',
    ])
      expect(env, name).not.toHaveProperty(name);
  });
  it('leaves out what the machine itself has (same value in the runner process)', () => {
    expect(env).not.toHaveProperty('ImageOS');
    expect(env).not.toHaveProperty('LANG');
  });
  it('reads a /proc environ', () => {
    expect(parseEnviron('A=1\0B=x=y\0\0C=\0bad\0')).toEqual({ A: '1', B: 'x=y', C: '' });
  });
});

describe('the session shim and names', () => {
  it("runs the CLI session step with the sessions dir, passing the runner's arguments", () => {
    const shim = shimScript(
      '/opt/node24/bin/node',
      "/a'b/dist/cli.js",
      '/t/build-cell/sessions',
      '/var/lib/build-cell',
    );
    expect(shim).toMatch(/^#!\/bin\/sh\n/);
    expect(shim).toContain(
      `exec env -u NODE_EXTRA_CA_CERTS '/opt/node24/bin/node' '/a'\\''b/dist/cli.js' session step --sessions '/t/build-cell/sessions' --state-dir '/var/lib/build-cell' "$@"`,
    );
  });
  it('takes names of letters, digits, dot, dash and underscore', () => {
    expect(checkSessionName('arm64-leg_1.x', 'session')).toBe('arm64-leg_1.x');
    for (const bad of ['', '-x', 'a/b', '..', 'a b', 'x'.repeat(65)])
      expectUserError(() => checkSessionName(bad, 'session'), 'session', 'is not a session name');
  });
});

describe('session commands and inputs', () => {
  const env = { cwd: '/home/u', env: { HOME: '/home/u' }, uid: 1000 };
  it('parses start (command optional), exec, end and step', () => {
    expect(parseCli(['session', 'start', '--image', 'x', '--workspace', 'ws'], env)).toMatchObject({
      kind: 'session-start',
      name: 'default',
      run: false,
    });
    expect(parseCli(['session', 'start', '--name', 'a', '--image', 'x', '--run', 'make'], env)).toMatchObject({
      kind: 'session-start',
      name: 'a',
      run: true,
      spec: { script: 'make' },
    });
    expect(parseCli(['session', 'exec', '--name', 'a', '--env', 'X=1', '--', 'make', 'check'], env)).toMatchObject({
      kind: 'session-exec',
      name: 'a',
      env: [['X', '1']],
      command: { argv: ['make', 'check'] },
    });
    expect(parseCli(['session', 'end', '--export', '/w/out:out'], env)).toMatchObject({
      kind: 'session-end',
      name: 'default',
      exports: [{ source: '/w/out', destination: '/home/u/out' }],
    });
    expect(parseCli(['session', 'step', '--sessions', '/t/s', '--session', 'arm', '/t/x.sh'], env)).toMatchObject({
      kind: 'session-step',
      sessions: '/t/s',
      name: 'arm',
      script: '/t/x.sh',
    });
  });
  it('refuses bad session commands, naming the flag', () => {
    expectUserError(() => parseCli(['session', 'exec'], env), 'command', 'missing');
    expectUserError(
      () => parseCli(['session', 'step', '--sessions', '/t', 'a', 'b'], env),
      'script',
      'exactly one script file',
    );
    expectUserError(() => parseCli(['session', 'bogus'], env), 'session', 'accepted are start, exec, end');
    expectUserError(
      () => parseCli(['session', 'exec', '--name', 'a/b', '--', 'x'], env),
      '--name',
      'is not a session name',
    );
  });
  it('the action input: true is the default session, a name names one, and run is optional with it', () => {
    const read =
      (values: Record<string, string>): InputReader =>
      (name) =>
        (({ image: 'debian', ...values }) as Record<string, string>)[name] ?? '';
    const ws = { GITHUB_WORKSPACE: '/w' };
    expect(parseInputs(read({ session: 'true' }), ws)).toMatchObject({
      session: 'default',
      command: { kind: 'none' },
      writeBack: true,
    });
    expect(parseInputs(read({ session: 'arm64', run: 'make' }), ws)).toMatchObject({ session: 'arm64' });
    expect(parseInputs(read({ session: 'false', run: 'make' }), ws).session).toBeUndefined();
    expect(() => parseInputs(read({}), ws)).toThrow(/^run: is required/);
    expect(() => parseInputs(read({ session: 'a b' }), ws)).toThrow(/^session: "a b" is not a session name/);
  });
});

describe('a step of a session started with write-back-git and forward rules', () => {
  it("keeps them for every step, and a runner step puts the cell's stderr on stdout", async () => {
    const { stepRequest } = await import('../../src/session/run.js');
    const state = {
      format: 1,
      name: 'default',
      mode: 'root',
      stateDir: '/var/lib/build-cell',
      image: { ref: parseReference('busybox'), arch: 'amd64', digest: 'sha256:x' },
      workspace: '/ws',
      workspacePath: '/workspace',
      cwd: '/workspace',
      shell: 'sh',
      imports: [],
      caches: [],
      network: 'enabled',
      limits: {},
      cleanup: 'always',
      root: { dir: '/var/lib/build-cell/sessions/s', upper: '/var/lib/build-cell/sessions/s/upper' },
      failed: false,
      writeBackGit: true,
      forward: { env: ['VERSION'], path: false },
    } satisfies SessionState;
    const step = { command: { script: 'true' }, env: [] };
    expect(stepRequest(state, step, { cli: 'cli', runnerLog: true })).toMatchObject({
      writeBack: true,
      writeBackGit: true,
      stderrToStdout: true,
    });
    expect(stepRequest({ ...state, writeBackGit: undefined }, step, { cli: 'cli' })).not.toHaveProperty(
      'stderrToStdout',
    );
  });
});
