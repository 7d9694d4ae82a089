import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { bool, cellToHost, hostToCell, oneOf, optionalInt, optionalSize } from '../../src/cellspec/text.js';
import { expectUserError } from './spec-fixture.js';

describe('optionalSize', () => {
  it('property: N followed by a unit is N times the binary unit, in any case, with optional B/iB', () => {
    const units = { K: 1024, M: 1024 ** 2, G: 1024 ** 3 } as const;
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4096 }),
        fc.constantFrom('K', 'M', 'G'),
        fc.constantFrom('', 'b', 'B', 'iB', 'ib'),
        fc.boolean(),
        (n, unit, suffix, lower) => {
          const bytes = n * units[unit];
          const text = `${n}${lower ? unit.toLowerCase() : unit}${suffix}`;
          if (bytes < 1024 * 1024) expectUserError(() => optionalSize(text, 'memory'), 'memory', 'at least 1M');
          else expect(optionalSize(text, 'memory')).toBe(bytes);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('rejects sizes beyond the safe integer range', () => {
    expectUserError(() => optionalSize('99999999T', 'memory'), 'memory', '"99999999T"');
  });
});

describe('optionalInt', () => {
  it('property: accepts exactly the positive decimal integers', () => {
    fc.assert(
      fc.property(fc.integer({ min: -1000, max: 1_000_000 }), (n) => {
        if (n >= 1) expect(optionalInt(String(n), 'f', 'a count')).toBe(n);
        else
          expectUserError(
            () => optionalInt(String(n), 'f', 'a count'),
            'f',
            'must be a count',
            JSON.stringify(String(n)),
          );
      }),
      { numRuns: 200 },
    );
  });
});

describe('oneOf and bool', () => {
  it('oneOf trims and ignores case, and returns the canonical value', () => {
    expect(oneOf(' Never ', ['always', 'never'] as const, 'cleanup')).toBe('never');
    expectUserError(() => oneOf('nope', ['a', 'b'], 'f'), 'f', 'unknown value "nope"', 'accepted are a, b');
  });
  it('bool takes true/false only', () => {
    expect(bool(' TRUE', 'f')).toBe(true);
    expect(bool('False', 'f')).toBe(false);
    for (const v of ['1', '0', 'yes', 'no', '']) expectUserError(() => bool(v, 'f'), 'f', 'must be true or false');
  });
});

describe('hostToCell and cellToHost', () => {
  const seg = fc.stringMatching(/^[a-z0-9._-]{1,6}$/).filter((s) => s !== '.' && s !== '..');
  it('property: HOST:CELL splits at the last ":/" even when the host path has colons', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.stringMatching(/^[a-z0-9.:_-]{1,6}$/).filter((s) => s !== '.' && s !== '..'),
          { minLength: 1, maxLength: 3 },
        ),
        fc.array(seg, { minLength: 1, maxLength: 3 }),
        (host, cell) => {
          const hostPath = `/h/${host.join('/')}`;
          const cellPath = `/${cell.join('/')}`;
          expect(hostToCell(`${hostPath}:${cellPath}`, 'f', '/cwd')).toEqual({
            source: hostPath,
            destination: cellPath,
          });
        },
      ),
      { numRuns: 200 },
    );
  });
  it('property: CELL:HOST splits at the first ":" and resolves the host side', () => {
    fc.assert(
      fc.property(
        fc.array(seg, { minLength: 1, maxLength: 3 }),
        fc.array(fc.stringMatching(/^[a-z0-9:_-]{1,6}$/), { minLength: 1, maxLength: 3 }),
        (cell, host) => {
          const cellPath = `/${cell.join('/')}`;
          expect(cellToHost(`${cellPath}:${host.join('/')}`, 'f', '/cwd')).toEqual({
            source: cellPath,
            destination: `/cwd/${host.join('/')}`,
          });
        },
      ),
      { numRuns: 200 },
    );
  });
});
