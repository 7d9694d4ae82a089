/**
 * Bad and odd `with:` inputs through the bundled action (dist/main.js + dist/post.js), run as
 * the GitHub runner runs it (INPUT_* variables): a bad value fails the step with an error that
 * names the input and what is accepted, before anything runs or is created; an unknown input is
 * a warning; values in the wrong case are accepted; env values arrive in the cell byte for byte.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ActionRun, RunActionOptions } from '../helpers/action-harness.js';
import { checkedAction } from '../helpers/checked-action.js';
import { removeDir, tempDir } from '../helpers/cli.js';
import { busyboxLayout, node24Binary } from '../helpers/fixtures.js';

let layout: string;
let node24: string;
let dir: string;
let state: string;

beforeAll(async () => {
  [layout, node24] = await Promise.all([busyboxLayout(), node24Binary()]);
  dir = tempDir('bc-action-inputs-');
  state = join(dir, 'state');
});

afterAll(async () => {
  await removeDir(dir);
});

/** One action run on Node 24 (what `using: node24` gives), with the host after-check. */
const action = (inputs: Record<string, string>, options: RunActionOptions = {}): Promise<ActionRun> =>
  checkedAction({ node: node24, image: `oci:${layout}:amd64`, state }, inputs, options);

describe('bad inputs fail the step before anything runs, naming the input', () => {
  it.each([
    [
      'env without =',
      { env: 'NOEQUALS' },
      /env: line 1 must be KEY=VALUE \(or KEY<<DELIMITER for a multi-line value\), got "NOEQUALS"/,
    ],
    [
      'an unterminated env heredoc',
      { env: 'A<<EOF\nline' },
      /env: the value of "A" starts with <<EOF but has no closing EOF line/,
    ],
    [
      'an env key with a control character',
      { env: 'A\u0001B=x' },
      /env: key "A\\u0001B" must not contain a newline or another control character/,
    ],
    [
      'a relative working directory with ..',
      { 'working-directory': '../escape' },
      /working-directory: must not contain '\.\.': "\/workspace\/\.\.\/escape"/,
    ],
    [
      'a relative workspace path',
      { 'workspace-path': 'relative' },
      /workspace-path: must be an absolute path inside the cell, got "relative"/,
    ],
    [
      'an import without a cell path',
      { imports: 'tools' },
      /imports line 1: must be HOST:CELL with an absolute cell path/,
    ],
    ['an import to a cell path with ..', { imports: 'tools:/opt/../etc' }, /imports line 1: must not contain '\.\.'/],
    ['an export without a host path', { exports: '/workspace/out' }, /exports line 1: must be CELL:HOST/],
    ['a relative cache path', { caches: 'var/cache' }, /caches line 1: must be HOST:CELL/],
    ['network off', { network: 'off' }, /network: unknown value "off": accepted are enabled, disabled/],
    ['an unknown arch', { arch: 'vax' }, /arch: unsupported architecture "vax": accepted are amd64/],
    ['shell zsh', { shell: 'zsh' }, /shell: unknown value "zsh": accepted are sh, bash/],
    [
      'a fractional cpu-time',
      { 'cpu-time': '1.5' },
      /cpu-time: must be a whole number of seconds, at least 1, got "1.5"/,
    ],
    [
      'a relative state dir',
      { 'state-dir': 'relative/state' },
      /state-dir: must be an absolute path, got "relative\/state"/,
    ],
    [
      'an ftp tools source',
      { 'tools-source': 'ftp://mirror.example/debian' },
      /tools-source: must be an http\(s\) URL/,
    ],
    [
      'an artifact name with a slash',
      { 'artifact-name': 'a/b' },
      /artifact-name: "a\/b" contains a character artifacts do not allow/,
    ],
    ['run and command both', { run: 'true', command: 'true' }, /run: give either run \(a script\) or command/],
    ['an empty image', { image: '' }, /image: is required/],
  ] as Array<[string, Record<string, string>, RegExp]>)('%s', async (_, inputs, message) => {
    const run = await action({ run: 'true', ...inputs });
    expect(run.mainCode).toBe(1);
    expect(run.errors).toHaveLength(1);
    expect(run.errors[0]).toMatch(/^build-cell: /);
    expect(run.errors[0]).toMatch(message);
    expect(run.groups, 'nothing ran').not.toContain('Run');
    expect(run.groups).not.toContain('Tools');
    expect(existsSync(state), 'the state dir').toBe(false);
    expect(existsSync(join(run.runnerTemp, 'build-cell')), 'the work dir in RUNNER_TEMP').toBe(false);
    expect(run.postCode).toBe(0);
  });
});

describe('accepted inputs', () => {
  it('an unknown input is a warning, and values in the wrong case are accepted', async () => {
    const run = await action({
      run: 'ip -o link | cut -d: -f2; uname -m',
      frobnicate: 'yes',
      network: 'Disabled',
      arch: 'X86_64',
      cleanup: 'ALWAYS',
      shell: 'SH',
    });
    expect(run.mainCode, run.stdout + run.stderr).toBe(0);
    expect(run.unexpectedInputs).toEqual(['frobnicate']);
    expect(run.warnings).toContain("build-cell does not know the input 'frobnicate'; it is ignored");
    expect(run.stdout).toContain(' lo\nx86_64\n');
    expect(run.stdout).not.toMatch(/^ (eth|ens|enp)/m);
    await removeDir(state);
  });

  it('env values (=, trailing spaces, backslash escapes, shell syntax, heredoc lines) arrive byte for byte', async () => {
    const workspace = join(dir, 'ws');
    mkdirSync(workspace);
    const env = [
      'EQ=a=b==c=',
      'TRAIL=  two trailing spaces  ',
      'ESC=\\0 \\n \\c %s \\',
      'SHELL_SYNTAX=$(id -u) `id` ${HOME} \'q\' "dq"',
      'EMPTY=',
      'MULTI<<END_OF_VALUE',
      'first line',
      '',
      '  indented third  ',
      'END_OF_VALUE',
    ].join('\n');
    const names = ['EQ', 'TRAIL', 'ESC', 'SHELL_SYNTAX', 'EMPTY', 'MULTI'];
    const run = await action(
      {
        env,
        run: names
          .map((n) => `printf '%s' "$${n}" > out/${n}`)
          .join('\n')
          .replace(/^/, 'mkdir out\n'),
        exports: '/workspace/out:out',
      },
      { workspace },
    );
    expect(run.mainCode, run.stdout + run.stderr).toBe(0);
    const got = Object.fromEntries(
      readdirSync(join(workspace, 'out')).map((n) => [n, readFileSync(join(workspace, 'out', n), 'utf8')]),
    );
    expect(got).toEqual({
      EQ: 'a=b==c=',
      TRAIL: '  two trailing spaces  ',
      ESC: '\\0 \\n \\c %s \\',
      SHELL_SYNTAX: '$(id -u) `id` ${HOME} \'q\' "dq"',
      EMPTY: '',
      MULTI: 'first line\n\n  indented third  ',
    });
    await removeDir(state);
  });
});
