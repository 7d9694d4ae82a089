/**
 * Limits that Linux puts on what a cell can be given: env entries (MAX_ARG_STRLEN, ARG_MAX),
 * names and paths (NAME_MAX, PATH_MAX), and env keys that a line-based reader would misread.
 * Each is refused up front with the field and what is accepted, not half-way through a run.
 */
import { describe, expect, it } from 'vitest';
import { checkAbsolutePath, NAME_MAX, PATH_MAX } from '../../src/cellspec/paths.js';
import { checkEnv, MAX_ENV_ENTRY, MAX_ENV_TOTAL, validateSpec } from '../../src/cellspec/validate.js';
import { parseInputs, type InputReader } from '../../src/action/inputs.js';
import type { BuildCellSpec } from '../../src/cellspec/types.js';
import { baseSpec, expectUserError } from './spec-fixture.js';

const invalid = (overrides: Partial<BuildCellSpec>, field: string, ...fragments: string[]) =>
  expectUserError(() => validateSpec(baseSpec(overrides)), field, ...fragments);

describe('env limits', () => {
  it('accepts an entry of exactly MAX_ARG_STRLEN - 1 bytes, refuses one byte more, naming the key', () => {
    const value = 'v'.repeat(MAX_ENV_ENTRY - 'BIG='.length);
    expect(() => checkEnv([['BIG', value]])).not.toThrow();
    expectUserError(() => checkEnv([['BIG', `${value}v`]]), 'env.BIG', `${MAX_ENV_ENTRY + 1} bytes`, 'MAX_ARG_STRLEN');
  });

  it('counts bytes, not UTF-16 units', () => {
    // 'é' is 2 bytes in UTF-8: half as many characters reach the same limit.
    const value = 'é'.repeat(Math.ceil(MAX_ENV_ENTRY / 2));
    expectUserError(() => checkEnv([['U', value]]), 'env.U', 'MAX_ARG_STRLEN');
  });

  it('refuses more than MAX_ENV_TOTAL in all, though each entry fits', () => {
    const entry = 'x'.repeat(100 * 1024);
    const env = Array.from({ length: 11 }, (_, i): [string, string] => [`K${i}`, entry]);
    expect(() => checkEnv(env.slice(0, 10))).not.toThrow();
    expectUserError(() => checkEnv(env), 'env', 'in all', String(MAX_ENV_TOTAL));
    // The action's field name is used as given.
    expectUserError(() => checkEnv(env, 'inputs.env'), 'inputs.env', 'in all');
  });

  it.each(['A\nB', 'A\rB', 'A\tB', '\x1bA', 'A\x7f'])('refuses the key %j (a control character)', (key) => {
    expectUserError(() => checkEnv([[key, 'x']]), 'env', 'control character', JSON.stringify(key));
  });

  it('still accepts values with newlines, =, backslashes and printf escapes, and keys with spaces or non-ASCII', () => {
    expect(() =>
      checkEnv([
        ['A', 'l1\nl2\r\n'],
        ['B', 'x=y=z'],
        ['C', '\\0\\n\\c%s'],
        ['MY VAR', ''],
        ['ÄÖ', 'é'],
      ]),
    ).not.toThrow();
  });

  it('the action refuses a key with a control character from the env input', () => {
    const reader: InputReader = (name) =>
      (({ image: 'debian:bookworm', run: 'true', env: 'A\x01B=x' }) as Record<string, string>)[name] ?? '';
    expectUserError(() => parseInputs(reader, { GITHUB_WORKSPACE: '/w' }), 'env', 'control character');
  });
});

describe('path limits', () => {
  it('accepts a name of NAME_MAX bytes and refuses NAME_MAX + 1', () => {
    expect(() => checkAbsolutePath(`/a/${'n'.repeat(NAME_MAX)}`, 'f')).not.toThrow();
    expectUserError(
      () => checkAbsolutePath(`/a/${'n'.repeat(NAME_MAX + 1)}/b`, 'f'),
      'f',
      `${NAME_MAX + 1} bytes`,
      `at most ${NAME_MAX}`,
    );
  });

  it('accepts a path of PATH_MAX bytes and refuses PATH_MAX + 1', () => {
    const path = (bytes: number) =>
      `/${'d'.repeat(200)}`
        .repeat(Math.ceil(bytes / 201))
        .slice(0, bytes)
        .replace(/\/$/, 'x');
    expect(path(PATH_MAX)).toHaveLength(PATH_MAX);
    expect(() => checkAbsolutePath(path(PATH_MAX), 'f')).not.toThrow();
    expectUserError(
      () => checkAbsolutePath(path(PATH_MAX + 1), 'f'),
      'f',
      `${PATH_MAX + 1} bytes long`,
      `at most ${PATH_MAX}`,
    );
  });

  it('refuses cell paths that would not fit below the state dir, naming the field and the limit', () => {
    const long = `/${'w'.repeat(200)}`.repeat(19); // 3819 bytes: fits PATH_MAX alone, not with a long state dir
    const deepState = `/${'s'.repeat(250)}`.repeat(2);
    const spec = { root: `${deepState}/images/rootfs/x`, scratch: `${deepState}/cells/c` };
    expect(() =>
      validateSpec(baseSpec({ workspacePath: long, command: { cwd: '/', executable: 'true', argv: [] } })),
    ).not.toThrow();
    invalid(
      { ...spec, workspacePath: long, command: { cwd: '/', executable: 'true', argv: [] } },
      'workspacePath',
      '3819 bytes long',
      'at most',
      'PATH_MAX',
    );
    invalid({ ...spec, command: { cwd: long, executable: 'true', argv: [] } }, 'command.cwd', 'at most');
    invalid({ ...spec, imports: [{ source: '/h', destination: long }] }, 'imports[0].destination', 'at most');
    invalid({ ...spec, caches: [{ source: '/h', destination: long }] }, 'caches[0].destination', 'at most');
    invalid({ ...spec, exports: [{ source: long, destination: '/h/o' }] }, 'exports[0].source', 'at most');
  });

  it('accepts export destinations and copied caches whose names have NAME_MAX bytes (their temporary names are short)', () => {
    const name = 'n'.repeat(NAME_MAX);
    expect(() =>
      validateSpec(baseSpec({ exports: [{ source: '/workspace/o', destination: `/h/${name}` }] })),
    ).not.toThrow();
    expect(() => validateSpec(baseSpec({ caches: [{ source: `/h/${name}`, destination: '/c' }] }))).not.toThrow();
  });
});
