/**
 * The cell's file commands: the runner's key-value format read as the runner reads it, written
 * again only with build-cell's own delimiters, GITHUB_ENV names passed per forward-env,
 * build-cell's outputs kept, GITHUB_PATH per forward-path. Property-tested with fast-check:
 * whatever a cell writes, the runner's files get no name that is not allowed and no line
 * build-cell did not build.
 */
import fc from 'fast-check';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { forwardFileCommands, prepareFileCommands, type ForwardRules } from '../../src/github/file-commands.js';
import { envVerdict, hostCodeReason, parseForwardEnv } from '../../src/github/env-policy.js';
import { formatKeyValueFile, parseKeyValueFile, parsePathFile, SAFE_NAME } from '../../src/github/key-value-file.js';
import { parseKeyValueFile as runnerParse } from '../helpers/runner-commands.js';
import { parseInputs, type InputReader } from '../../src/action/inputs.js';

const entries = (text: string) => parseKeyValueFile(text).entries.map((e) => [e.name, e.value]);

describe('parseKeyValueFile (the runner rules)', () => {
  it('reads NAME=VALUE and NAME<<DELIMITER blocks, whichever comes first on the line', () => {
    expect(entries('a=1\nb<<EOF\nx\n\ny=z\nEOF\nc=d=e\nf=g<<h\ni<<j=k\nv\nj=k\n')).toEqual([
      ['a', '1'],
      ['b', 'x\n\ny=z'],
      ['c', 'd=e'],
      ['f', 'g<<h'],
      ['i', 'v'],
    ]);
  });
  it('splits on LF only: a CR stays in the value, and a delimiter must match exactly', () => {
    expect(entries('a=1\r\nb<<EOF\r\nx\r\nEOF\r\n')).toEqual([
      ['a', '1\r'],
      ['b', 'x\r'],
    ]);
    expect(parseKeyValueFile('b<<EOF\r\nx\nEOF\n').error).toMatch(/line 1: no line closes the value of b/);
  });
  it('skips empty lines, reads an empty value, a value of empty lines, a last line without LF, a leading BOM', () => {
    expect(entries('\n\na=\nb<<E\nE\nc<<E\n\n\nE\n\uFEFFd=1')).toEqual([
      ['a', ''],
      ['b', ''],
      ['c', '\n'],
      ['\uFEFFd', '1'],
    ]);
    expect(entries('\uFEFFv=1\n')).toEqual([['v', '1']]);
  });
  it('stops at what the runner fails on, naming the line, and keeps what came before', () => {
    expect(parseKeyValueFile('a=1\nnothing\nb=2\n')).toEqual({
      entries: [{ name: 'a', value: '1', line: 1 }],
      error: 'line 2: neither NAME=VALUE nor NAME<<DELIMITER',
    });
    expect(parseKeyValueFile('=1\n').error).toBe("line 1: no name before '='");
    expect(parseKeyValueFile('a<<\nx\n').error).toBe('line 1: NAME<<DELIMITER needs both');
    expect(parseKeyValueFile('<<EOF\nx\nEOF\n').error).toBe('line 1: NAME<<DELIMITER needs both');
    expect(parseKeyValueFile('a<<EOF\nx\n').error).toMatch(/no line closes the value of a \(<<EOF\)/);
  });
  it('GITHUB_PATH: one entry per line, LF, CR LF or CR', () => {
    expect(parsePathFile('/a\r\n/b\r/c\n\n/d')).toEqual(['/a', '/b', '/c', '/d']);
  });
});

describe('formatKeyValueFile', () => {
  it('writes heredocs with a fresh delimiter the value does not hold, and refuses names that would not read back', () => {
    const random = ['aa', 'aa', 'bb', 'cc'];
    const text = formatKeyValueFile(
      [
        ['A', 'x\nbuild-cell_aa\ny'],
        ['B', ''],
      ],
      () => random.shift()!,
    );
    expect(text).toBe('A<<build-cell_bb\nx\nbuild-cell_aa\ny\nbuild-cell_bb\nB<<build-cell_cc\n\nbuild-cell_cc\n');
    expect(entries(text)).toEqual([
      ['A', 'x\nbuild-cell_aa\ny'],
      ['B', ''],
    ]);
    for (const bad of ['A<', 'a=b', 'a b', '', '1A', 'A\nB'])
      expect(() => formatKeyValueFile([[bad, 'v']])).toThrow(/refusing to write the file-command name/);
  });
});

describe('forward-env', () => {
  it('is names and globs, one per line or comma-separated; anything else names the input', () => {
    expect(parseForwardEnv('VERSION, BUILD_*\n# a comment\n\n  OUT_? ,\n')).toEqual(['VERSION', 'BUILD_*', 'OUT_?']);
    expect(() => parseForwardEnv('A=B')).toThrow(/^forward-env: "A=B" is not a variable name or glob/);
    expect(() => parseForwardEnv('$(id)')).toThrow(/^forward-env: /);
  });
  it('forward-env and forward-path are action inputs: none and false by default', () => {
    const read =
      (values: Record<string, string>): InputReader =>
      (name) =>
        (({ image: 'debian', run: 'make', ...values }) as Record<string, string>)[name] ?? '';
    const ws = { GITHUB_WORKSPACE: '/w' };
    expect(parseInputs(read({}), ws)).toMatchObject({ forwardEnv: [], forwardPath: false });
    expect(parseInputs(read({ 'forward-env': 'VERSION\nBUILD_*', 'forward-path': 'true' }), ws)).toMatchObject({
      forwardEnv: ['VERSION', 'BUILD_*'],
      forwardPath: true,
    });
    expect(() => parseInputs(read({ 'forward-path': 'yes' }), ws)).toThrow(/^forward-path:/);
    expect(() => parseInputs(read({ 'forward-env': 'A B' }), ws)).toThrow(/^forward-env: "A B"/);
  });
  it('allows listed names and globbed ones; names that hand the host code only when listed exactly', () => {
    expect(envVerdict('VERSION', [])).toEqual({ allowed: false, reason: 'not-listed' });
    expect(envVerdict('VERSION', ['VERSION'])).toEqual({ allowed: true });
    expect(envVerdict('version', ['VERSION'])).toEqual({ allowed: false, reason: 'not-listed' });
    expect(envVerdict('BUILD_ID', ['BUILD_*'])).toEqual({ allowed: true });
    expect(envVerdict('VERSION', ['*'])).toEqual({ allowed: true });
    for (const name of [
      'BASH_ENV',
      'ENV',
      'LD_PRELOAD',
      'LD_LIBRARY_PATH',
      'ld_preload',
      'NODE_OPTIONS',
      'GIT_CONFIG_COUNT',
      'GIT_CONFIG_KEY_0',
      'PROMPT_COMMAND',
      'PYTHONSTARTUP',
      'PERL5OPT',
      'JAVA_TOOL_OPTIONS',
      'PATH',
      'HOME',
      'ACTIONS_RUNTIME_URL',
      'BUILD_CELL_USERNS',
      'https_proxy',
    ]) {
      expect(envVerdict(name, ['*']), name).toMatchObject({ allowed: false, reason: 'host-code' });
      expect(envVerdict(name, []), name).toMatchObject({ allowed: false, reason: 'host-code' });
      expect(envVerdict(name, [name]), name).toEqual({ allowed: true });
    }
    expect(envVerdict('LD_PRELOAD', ['LD_*'])).toMatchObject({ reason: 'host-code', why: /dynamic loader/ });
    expect(hostCodeReason('BASH_ENV')).toBe('bash sources it');
    expect(hostCodeReason('VERSION')).toBeUndefined();
  });
});

describe('forwardFileCommands', () => {
  let dir: string;
  let fc_: string;
  let targets: Record<'GITHUB_OUTPUT' | 'GITHUB_ENV' | 'GITHUB_PATH' | 'GITHUB_STEP_SUMMARY', string>;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bc-fc-'));
    fc_ = join(dir, 'fc');
    await prepareFileCommands(fc_);
    targets = {
      GITHUB_OUTPUT: join(dir, 'out'),
      GITHUB_ENV: join(dir, 'env'),
      GITHUB_PATH: join(dir, 'path'),
      GITHUB_STEP_SUMMARY: join(dir, 'summary'),
    };
    for (const target of Object.values(targets)) writeFileSync(target, '');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const cell = (file: string, text: string) => writeFileSync(join(fc_, file), text);
  const runner = (name: keyof typeof targets) => readFileSync(targets[name], 'utf8');

  it('passes on what is allowed, rewritten, and names the rest in one warning that says how to allow it', async () => {
    cell('env', 'VERSION=1.2\nLD_PRELOAD=/workspace/x.so\nGIT_CONFIG_COUNT=1\nOTHER=o\nNOTES<<X\nl1\nl2\nX\n');
    cell('output', 'exit-code=0\nIMAGE-DIGEST=sha256:0\nversion=1.2\n');
    cell('path', '/workspace/bin\n');
    cell('step_summary', '### hi');
    const report = await forwardFileCommands(fc_, targets, {
      env: ['VERSION', 'NOTES', 'LD_*'],
      path: false,
      reservedOutputs: ['exit-code', 'image-digest'],
    });
    expect(report.forwarded).toEqual(['GITHUB_OUTPUT', 'GITHUB_ENV', 'GITHUB_STEP_SUMMARY']);
    expect(runnerParse(runner('GITHUB_ENV'))).toEqual({ VERSION: '1.2', NOTES: 'l1\nl2' });
    expect(runner('GITHUB_ENV')).not.toContain('<<X');
    expect(runnerParse(runner('GITHUB_OUTPUT'))).toEqual({ version: '1.2' });
    expect(runner('GITHUB_PATH')).toBe('');
    expect(runner('GITHUB_STEP_SUMMARY')).toBe('### hi\n');
    expect(report.warning).toBe(
      "the cell's file commands were not all passed on: GITHUB_ENV OTHER: not in forward-env (list them in the forward-env input to pass them on); " +
        'GITHUB_ENV LD_PRELOAD (the dynamic loader loads libraries from it), GIT_CONFIG_COUNT (git runs commands and reads configuration through it): refused, they hand the later steps on the host code to run (only forward-env naming each one exactly, not a glob, allows them); ' +
        "GITHUB_OUTPUT exit-code, IMAGE-DIGEST: build-cell's own outputs, which keep build-cell's values; " +
        "GITHUB_PATH /workspace/bin: not added to later steps' PATH (set forward-path: true to add them)",
    );
  });

  it('refuses a fake delimiter line that smuggles a variable out of an allowed value', async () => {
    cell('env', 'NOTES<<EOF\nline\nEOF\nBASH_ENV=$(id > /tmp/x)\nEOF\n');
    const report = await forwardFileCommands(fc_, targets, { env: ['*'], path: false });
    expect(runnerParse(runner('GITHUB_ENV'))).toEqual({ NOTES: 'line' });
    expect(runner('GITHUB_ENV')).not.toContain('BASH_ENV');
    expect(report.warning).toMatch(/BASH_ENV \(bash sources it\): refused/);
    expect(report.warning).toMatch(/GITHUB_ENV is malformed at line 5: neither NAME=VALUE/);
  });

  it('with forward-path, passes GITHUB_PATH entries one per line; a malformed file is a warning', async () => {
    cell('path', '/opt/a\r\n/opt/b');
    cell('output', 'ok=1\nbroken\nlater=2\n');
    const report = await forwardFileCommands(fc_, targets, { env: [], path: true });
    expect(runner('GITHUB_PATH')).toBe('/opt/a\n/opt/b\n');
    expect(runnerParse(runner('GITHUB_OUTPUT'))).toEqual({ ok: '1' });
    expect(report.warning).toMatch(/GITHUB_OUTPUT is malformed at line 2: .*the rest of it was dropped$/);
  });

  it("never reads through a symlink the cell put in a file's place", async () => {
    writeFileSync(join(dir, 'host-secret'), 'secret=1\n');
    rmSync(join(fc_, 'output'));
    symlinkSync(join(dir, 'host-secret'), join(fc_, 'output'));
    const report = await forwardFileCommands(fc_, targets, { env: ['*'], path: true });
    expect(report).toEqual({ forwarded: [], warning: undefined });
    expect(runner('GITHUB_OUTPUT')).toBe('');
  });

  /** Lines a hostile cell would write: names, separators, delimiters and values that look like each other. */
  const NAMES = [
    'VERSION',
    'BASH_ENV',
    'LD_PRELOAD',
    'exit-code',
    'EXIT-CODE',
    'A<',
    'a b',
    '',
    'BUILD_1',
    'GIT_DIR',
    'x',
  ];
  const DELIMS = ['EOF', 'EOF\r', 'build-cell_0', '<EOF', '=', 'X'];
  const piece = fc.oneof(
    fc.constantFrom(...NAMES),
    fc.constantFrom(...DELIMS),
    fc.constantFrom('=', '<<', '<', '\r', '\n', ' ', '%0A'),
    fc.string({ maxLength: 6 }),
  );
  const line = fc.array(piece, { maxLength: 5 }).map((parts) => parts.join(''));
  const file = fc
    .tuple(fc.array(line, { maxLength: 12 }), fc.boolean())
    .map(([lines, trailing]) => lines.join('\n') + (trailing ? '\n' : ''));
  const rules = fc.record({
    env: fc.array(fc.constantFrom('*', 'VERSION', 'BASH_ENV', 'B*', 'LD_*', 'x', '?'), { maxLength: 3 }),
    path: fc.boolean(),
  });

  it('property: whatever the cell writes, the runner reads back only allowed names, from lines build-cell built', async () => {
    await fc.assert(
      fc.asyncProperty(file, file, rules, async (envText, outputText, forward: ForwardRules) => {
        for (const target of Object.values(targets)) writeFileSync(target, '');
        cell('env', envText);
        cell('output', outputText);
        await forwardFileCommands(fc_, targets, { ...forward, reservedOutputs: ['exit-code'] });
        for (const [name, text, allowed] of [
          ['GITHUB_ENV', envText, (n: string) => envVerdict(n, forward.env).allowed],
          ['GITHUB_OUTPUT', outputText, (n: string) => n.toLowerCase() !== 'exit-code'],
        ] as const) {
          const written = runner(name);
          const expected = parseKeyValueFile(text).entries.filter((e) => SAFE_NAME.test(e.name) && allowed(e.name));
          // What the runner reads back is exactly the allowed entries, in order, and nothing else.
          const reread = parseKeyValueFile(written);
          expect(reread.error).toBeUndefined();
          expect(reread.entries.map((e) => [e.name, e.value])).toEqual(expected.map((e) => [e.name, e.value]));
          // Every line outside a value is a header or a delimiter of build-cell's own.
          const lines = written.split('\n').slice(0, -1);
          let at = 0;
          for (const entry of reread.entries) {
            const header = /^([A-Za-z_][A-Za-z0-9_-]*)<<(build-cell_[0-9a-f]{32})$/.exec(lines[at]!);
            expect(header?.[1]).toBe(entry.name);
            at += 1 + entry.value.split('\n').length;
            expect(lines[at]).toBe(header![2]);
            at += 1;
          }
          expect(at).toBe(lines.length);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('property: the parser reads what the runner reads', () => {
    fc.assert(
      fc.property(file, (text) => {
        const ours = parseKeyValueFile(text);
        let theirs: Record<string, string> | Error;
        try {
          theirs = runnerParse(text.replace(/^\uFEFF/, ''));
        } catch (error) {
          theirs = error as Error;
        }
        if (theirs instanceof Error) expect(ours.error).toBeDefined();
        else {
          expect(ours.error).toBeUndefined();
          expect(Object.fromEntries(ours.entries.map((e) => [e.name, e.value]))).toEqual(theirs);
        }
      }),
      { numRuns: 500 },
    );
  });
});
