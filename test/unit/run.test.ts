import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { encodeEnvEntry, parseStatus, unshareArgs } from '../../src/cell/run.js';

/**
 * What the helper does with an entry: `printf '%bx' "$entry"` (then strips the x). Only the
 * escapes encodeEnvEntry can produce are emulated; any other backslash sequence would mean the
 * encoder let a raw backslash through, so the emulation refuses it.
 */
function printfB(text: string): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c !== '\\') {
      out += c;
      continue;
    }
    const next = text[i + 1];
    if (next === '\\') out += '\\';
    else if (next === 'n') out += '\n';
    else throw new Error(`printf %b would interpret \\${next ?? ''} at ${i}`);
    i++;
  }
  return out;
}

describe('encodeEnvEntry', () => {
  it.each([
    ['A', 'b', 'A=b'],
    ['A', '', 'A='],
    ['A', 'x=y', 'A=x=y'],
    ['A', 'l1\nl2', 'A=l1\\nl2'],
    ['A', 'C:\\dir', 'A=C:\\\\dir'],
    ['A', '\\n', 'A=\\\\n'],
    ['A', '\\c stop', 'A=\\\\c stop'],
    ['A', '\\0101', 'A=\\\\0101'],
    ['A', 'tab\there', 'A=tab\there'],
    ['A', '\n\n', 'A=\\n\\n'],
  ])('%s=%j -> %j', (name, value, encoded) => {
    expect(encodeEnvEntry(name, value)).toBe(encoded);
  });

  it('never produces a newline (one entry per line for read -r)', () => {
    expect(encodeEnvEntry('A', '\n')).not.toContain('\n');
  });

  it('property: printf %b decodes it back to NAME=VALUE, and the line has no newline', () => {
    const value = fc.string({ unit: fc.constantFrom('a', 'b', '\\', '\n', 'n', 'c', '0', ' ', '=', '\t', '%', 'é'), maxLength: 30 });
    fc.assert(
      fc.property(fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,8}$/), value, (name, v) => {
        const line = encodeEnvEntry(name, v);
        expect(line.includes('\n')).toBe(false);
        expect(printfB(line)).toBe(`${name}=${v}`);
      }),
      { numRuns: 200 },
    );
  });

  it('property: round-trips arbitrary unicode too', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (v) => {
        expect(printfB(encodeEnvEntry('K', v))).toBe(`K=${v}`);
      }),
      { numRuns: 200 },
    );
  });
});

describe('unshareArgs', () => {
  const ALWAYS = ['--fork', '--kill-child', '--pid', '--mount', '--uts', '--ipc'];
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

  // BUG: src/cell/run.ts:66 parseStatus uses Number(...), and Number('') === 0, so a status
  // channel that says only "exit " (no number, e.g. a truncated line read on close) is reported
  // as a successful run (exitCode 0) instead of "no status". Fix: match the line with
  // /^exit (\d+)$/ (and treat anything else as undefined).
  it('does not read "exit " without a number as success', () => {
    expect(parseStatus('exit \nready')).toBeUndefined();
    expect(parseStatus('exit  \n')).toBeUndefined();
  });
});
