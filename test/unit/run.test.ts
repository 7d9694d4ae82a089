import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeEnvEntry, parseStatus, unshareArgs } from '../../src/cell/run.js';

/** The helper's env loop (src/cell/helper.sh), cut out verbatim: it runs in a real dash below. */
const helperSh = readFileSync(new URL('../../src/cell/helper.sh', import.meta.url), 'utf8');
const envLoop = (() => {
  const from = helperSh.indexOf('while IFS= read -r entry <&3');
  const to = helperSh.indexOf('# prlimit only');
  if (from < 0 || to < from) throw new Error('the env loop of helper.sh has moved: update this test');
  return helperSh.slice(from, to);
})();

/** Feed encoded entries (and the terminating empty line) to the helper's loop; returns the NAME=VALUE args it built. */
function decodeInDash(entries: Array<[string, string]>, extra = ''): string[] {
  const stream = `${entries.map(([n, v]) => `${encodeEnvEntry(n, v)}\n`).join('')}\n${extra}`;
  const script = `fail() { printf 'FAIL %s\n' "$*" >&2; exit 9; }\nset --\n${envLoop}\n[ "$#" -eq 0 ] || printf '%s\\0' "$@"`;
  const out = execFileSync('dash', ['-c', script], { encoding: 'utf8', env: {}, ...fd3(stream) });
  return out.split('\0').slice(0, -1);
}

/** spawnSync options that put `stream` on fd 3, where the helper reads its control channel. */
function fd3(stream: string): { stdio: Array<number | 'pipe' | 'ignore'> } {
  const dir = mkdtempSync(join(tmpdir(), 'bc-env-'));
  const file = join(dir, 'stream');
  writeFileSync(file, stream);
  const fd = openSync(file, 'r');
  cleanups.push(() => {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  });
  return { stdio: ['ignore', 'pipe', 'pipe', fd] };
}
const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

describe('encodeEnvEntry', () => {
  it.each([
    ['A', 'b', '0 A=b'],
    ['A', '', '0 A='],
    ['A', 'x=y', '0 A=x=y'],
    ['A', 'l1\nl2', '1 A=l1\nl2'],
    ['A', 'C:\\dir', '0 A=C:\\dir'],
    ['A', '\n\n', '2 A=\n\n'],
    ['A', ' lead and trail ', '0 A= lead and trail '],
  ])('%s=%j -> %j', (name, value, encoded) => {
    expect(encodeEnvEntry(name, value)).toBe(encoded);
  });

  it('starts every entry with a digit, so no entry line is the empty terminator', () => {
    expect(encodeEnvEntry('A', '')).toMatch(/^\d+ /);
    expect(encodeEnvEntry('A', '\n')).toMatch(/^1 A=\n$/);
  });
});

describe("the helper's env loop, in dash", () => {
  it('rebuilds each NAME=VALUE byte for byte: newlines, backslashes, escapes, spaces, quotes', () => {
    const entries: Array<[string, string]> = [
      ['A', 'b'],
      ['EMPTY', ''],
      ['EQ', 'x=y=z'],
      ['NL', 'l1\nl2\n'],
      ['ONLYNL', '\n\n'],
      ['BS', 'C:\\dir\\n \\c \\0101'],
      ['SP', '  lead and trail  '],
      ['Q', `it's "q" $(x) \`y\``],
      ['TAB', 'a\tb'],
      ['UTF', 'é ☃'],
      ['weird.name-1', 'v'],
    ];
    expect(decodeInDash(entries)).toEqual(entries.map(([n, v]) => `${n}=${v}`));
  });

  it('stops at the empty line and reads nothing after it', () => {
    expect(decodeInDash([['A', '1']], 'not an entry\n')).toEqual(['A=1']);
  });

  it('property: arbitrary values round-trip', () => {
    const value = fc.string({
      unit: fc.constantFrom('a', '\\', '\n', 'n', ' ', '=', '\t', '%', 'é', '$', "'", '"'),
      maxLength: 20,
    });
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,6}$/), value), { maxLength: 5 }),
        (entries) => {
          expect(decodeInDash(entries)).toEqual(entries.map(([n, v]) => `${n}=${v}`));
        },
      ),
      { numRuns: 40 },
    );
  });
});

describe('unshareArgs', () => {
  const ALWAYS = ['--fork', '--kill-child', '--pid', '--mount', '--propagation', 'private', '--uts', '--ipc'];
  it.each([
    [{ network: 'enabled', userNamespace: 'none' }, [...ALWAYS]],
    [{ network: 'disabled', userNamespace: 'none' }, [...ALWAYS, '--net']],
    [{ network: 'enabled', userNamespace: 'map-root' }, ['--user', '--map-root-user', ...ALWAYS]],
    [{ network: 'disabled', userNamespace: 'map-root' }, ['--user', '--map-root-user', ...ALWAYS, '--net']],
  ] as const)('%j -> %j', (options, expected) => {
    expect(unshareArgs(options)).toEqual(expected);
  });
});

describe('parseStatus', () => {
  it.each([
    ['exit 0\n[1] + Done\nready\n', { exitCode: 0 }],
    ['exit 0\n[1] + Done                       \nready', { exitCode: 0 }],
    ['exit 1\n[1] + Done(1)\nready', { exitCode: 1 }],
    ['exit 137\n[1] + Killed\nready', { exitCode: 137, signal: 9 }],
    ['exit 143\n[1] + Terminated\nready\n', { exitCode: 143, signal: 15 }],
    ['exit 139\n[1] + Segmentation fault (core dumped)\nready', { exitCode: 139, signal: 11 }],
    ['exit 137\n[1] + Done(137)\nready', { exitCode: 137 }],
    ['exit 130\nready', { exitCode: 130 }],
    ['exit 255\n[1] + Done(255)\nready', { exitCode: 255 }],
    ['exit 128\n[1] + Done(128)\nready', { exitCode: 128 }],
    ['exit 42', { exitCode: 42 }],
  ])('%j -> %j', (text, expected) => {
    expect(parseStatus(text)).toEqual(expected);
  });

  it.each([
    ['error boom', { error: 'boom' }],
    ['error mount --bind /a /b failed: permission denied\n', { error: 'mount --bind /a /b failed: permission denied' }],
    ['exit 0\nerror late failure', { error: 'late failure' }],
  ])('%j -> %j', (text, expected) => {
    expect(parseStatus(text)).toEqual(expected);
  });

  it.each(['', 'ready', '\n\n', 'exit abc\nready', 'exit 1.5\nready', 'exiting 0'])('%j -> undefined', (text) => {
    expect(parseStatus(text)).toBeUndefined();
  });

  // Regression (fixed): src/cell/run.ts:66 parseStatus uses Number(...), and Number('') === 0, so a status
  // channel that says only "exit " (no number, e.g. a truncated line read on close) is reported
  // as a successful run (exitCode 0) instead of "no status". Fix: match the line with
  // /^exit (\d+)$/ (and treat anything else as undefined).
  it('does not read "exit " without a number as success', () => {
    expect(parseStatus('exit \nready')).toBeUndefined();
    expect(parseStatus('exit  \n')).toBeUndefined();
  });
});
