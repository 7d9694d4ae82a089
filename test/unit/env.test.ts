import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { DEFAULT_ENV, mergeEnv, parseEnvStrings } from '../../src/cellspec/env.js';

describe('mergeEnv', () => {
  it('returns an empty list for no layers', () => {
    expect(mergeEnv()).toEqual([]);
    expect(mergeEnv([], [])).toEqual([]);
  });

  it('later layers override values; a name keeps its first position', () => {
    const merged = mergeEnv(
      DEFAULT_ENV,
      [
        ['LANG', 'C.UTF-8'],
        ['PATH', '/image/bin'],
      ],
      [
        ['HOME', '/home/u'],
        ['CI', 'true'],
        ['LANG', 'en_US'],
      ],
    );
    expect(merged).toEqual([
      ['PATH', '/image/bin'],
      ['HOME', '/home/u'],
      ['LANG', 'en_US'],
      ['CI', 'true'],
    ]);
  });

  it('within one layer, the last duplicate wins', () => {
    expect(
      mergeEnv([
        ['A', '1'],
        ['B', '2'],
        ['A', '3'],
      ]),
    ).toEqual([
      ['A', '3'],
      ['B', '2'],
    ]);
  });

  it('keeps empty values (an override to empty is not a removal)', () => {
    expect(mergeEnv([['A', 'x']], [['A', '']])).toEqual([['A', '']]);
  });

  it('does not mutate its inputs', () => {
    const a: Array<[string, string]> = [['A', '1']];
    const b: Array<[string, string]> = [['A', '2']];
    mergeEnv(a, b);
    expect(a).toEqual([['A', '1']]);
    expect(b).toEqual([['A', '2']]);
  });

  it('property: each name appears once, with the value of its last occurrence, in first-seen order', () => {
    const entry = fc.tuple(fc.constantFrom('A', 'B', 'C', 'D', 'PATH'), fc.string({ maxLength: 5 }));
    fc.assert(
      fc.property(fc.array(fc.array(entry, { maxLength: 6 }), { maxLength: 4 }), (layers) => {
        const merged = mergeEnv(...layers);
        const flat = layers.flat();
        const names = [...new Set(flat.map(([k]) => k))];
        expect(merged.map(([k]) => k)).toEqual(names);
        for (const [k, v] of merged) expect(v).toBe(flat.filter(([n]) => n === k).at(-1)![1]);
      }),
      { numRuns: 200 },
    );
  });
});

describe('DEFAULT_ENV', () => {
  it('is PATH then HOME for root', () => {
    expect(DEFAULT_ENV).toEqual([
      ['PATH', '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      ['HOME', '/root'],
    ]);
  });
});

describe('parseEnvStrings', () => {
  it('splits at the first =, keeps empty values, skips entries without a name or =', () => {
    expect(parseEnvStrings(['A=1', 'B=x=y', 'C=', 'NOEQ', '=nameless', '', 'D==', 'E=a\nb'])).toEqual([
      ['A', '1'],
      ['B', 'x=y'],
      ['C', ''],
      ['D', '='],
      ['E', 'a\nb'],
    ]);
  });

  it('keeps the order and duplicates (mergeEnv resolves them)', () => {
    expect(parseEnvStrings(['B=1', 'A=2', 'B=3'])).toEqual([
      ['B', '1'],
      ['A', '2'],
      ['B', '3'],
    ]);
  });

  it('property: parses what NAME=VALUE formatting produced', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,8}$/), fc.string({ maxLength: 10 })), {
          maxLength: 6,
        }),
        (pairs) => {
          expect(parseEnvStrings(pairs.map(([k, v]) => `${k}=${v}`))).toEqual(pairs);
        },
      ),
      { numRuns: 200 },
    );
  });
});
