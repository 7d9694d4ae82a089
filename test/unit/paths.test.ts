import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { posix } from 'node:path';
import {
  checkAbsoluteNotRoot,
  checkAbsolutePath,
  covers,
  normalizeAbsolute,
  overlaps,
  relativeTo,
} from '../../src/cellspec/paths.js';
import { expectUserError } from './spec-fixture.js';

/** Path segments that are neither '.', '..' nor contain '/' or NUL. */
const segment = fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,7}$/).filter((s) => s !== '.' && s !== '..');
const absPath = fc.array(segment, { minLength: 1, maxLength: 5 }).map((parts) => `/${parts.join('/')}`);

describe('checkAbsolutePath', () => {
  it('accepts absolute paths, tolerating . and repeated slashes', () => {
    for (const p of ['/', '/a', '/a/b/c', '//a//b/', '/a/./b', '/.', '/a/...', '/a/..b']) {
      expect(() => checkAbsolutePath(p, 'f')).not.toThrow();
    }
  });

  it('rejects the empty path', () => {
    expectUserError(() => checkAbsolutePath('', 'root'), 'root', 'must be a non-empty absolute path');
  });

  it('rejects relative paths, naming the value', () => {
    expectUserError(
      () => checkAbsolutePath('a/b', 'imports[0].source'),
      'imports[0].source',
      'must be an absolute path',
      '"a/b"',
    );
    expectUserError(() => checkAbsolutePath('./x', 'f'), 'f', 'absolute', '"./x"');
  });

  it('rejects .. components anywhere', () => {
    expectUserError(() => checkAbsolutePath('/a/../b', 'scratch'), 'scratch', "must not contain '..'", '"/a/../b"');
    expectUserError(() => checkAbsolutePath('/..', 'f'), 'f', "'..'");
    expectUserError(() => checkAbsolutePath('/a/..', 'f'), 'f', "'..'");
  });

  it('rejects NUL bytes', () => {
    expectUserError(() => checkAbsolutePath('/a\0b', 'f'), 'f', 'NUL');
  });
});

describe('checkAbsoluteNotRoot', () => {
  it.each(['/', '//', '/.', '/./', '///.//'])('rejects %j as /', (p) => {
    expectUserError(() => checkAbsoluteNotRoot(p, 'root'), 'root', 'must not be /');
  });

  it('accepts non-root absolute paths and still runs the absolute checks', () => {
    expect(() => checkAbsoluteNotRoot('/x', 'f')).not.toThrow();
    expectUserError(() => checkAbsoluteNotRoot('x', 'f'), 'f', 'absolute');
    expectUserError(() => checkAbsoluteNotRoot('', 'f'), 'f', 'non-empty');
    expectUserError(() => checkAbsoluteNotRoot('/a/../', 'f'), 'f', "'..'");
  });
});

describe('normalizeAbsolute', () => {
  it.each([
    ['/', '/'],
    ['//', '/'],
    ['/.', '/'],
    ['/a//b/./c/', '/a/b/c'],
    ['/a/', '/a'],
    ['/a/b', '/a/b'],
    ['///a', '/a'],
  ])('%j -> %j', (input, expected) => {
    expect(normalizeAbsolute(input)).toBe(expected);
  });

  it('is idempotent and never ends with / (except /)', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom('a', 'bc', '.', '', 'd.e'), { maxLength: 6 }), (parts) => {
        const p = `/${parts.join('/')}`;
        const n = normalizeAbsolute(p);
        expect(normalizeAbsolute(n)).toBe(n);
        expect(n.startsWith('/')).toBe(true);
        if (n !== '/') expect(n.endsWith('/')).toBe(false);
        expect(n.split('/').includes('.')).toBe(false);
      }),
      { numRuns: 200 },
    );
  });
});

describe('covers', () => {
  it.each([
    ['/a', '/a', true],
    ['/a', '/a/b', true],
    ['/a', '/ab', false],
    ['/a/b', '/a', false],
    ['/', '/x', true],
    ['/', '/', true],
    ['/a/', '/a/b', true],
    ['/a', '/a/', true],
    ['/a//', '/a/b/', true],
    ['/a/./b', '/a/b/c', true],
    ['/workspace', '/workspace2', false],
    ['/workspace/out', '/workspace', false],
  ] as const)('covers(%j, %j) = %s', (mount, target, expected) => {
    expect(covers(mount, target)).toBe(expected);
  });

  it('property: a path covers everything joined below it', () => {
    fc.assert(
      fc.property(absPath, fc.array(segment, { maxLength: 4 }), (p, q) => {
        expect(covers(p, posix.join(p, ...q))).toBe(true);
        expect(covers(`${p}/`, posix.join(p, ...q))).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('property: never covers a sibling whose name merely starts with the same text', () => {
    fc.assert(
      fc.property(absPath, segment, fc.array(segment, { maxLength: 3 }), (p, suffix, below) => {
        const sibling = `${p}${suffix}`;
        expect(covers(p, sibling)).toBe(false);
        expect(covers(p, posix.join(sibling, ...below))).toBe(false);
        expect(covers(sibling, p)).toBe(false);
      }),
      { numRuns: 200 },
    );
  });
});

describe('overlaps', () => {
  it('is symmetric covering', () => {
    expect(overlaps('/a', '/a/b')).toBe(true);
    expect(overlaps('/a/b', '/a')).toBe(true);
    expect(overlaps('/a', '/a')).toBe(true);
    expect(overlaps('/a', '/ab')).toBe(false);
    expect(overlaps('/a/x', '/a/y')).toBe(false);
    expect(overlaps('/', '/anything')).toBe(true);
  });

  it('property: overlaps(a, b) === overlaps(b, a)', () => {
    fc.assert(
      fc.property(absPath, absPath, (a, b) => {
        expect(overlaps(a, b)).toBe(overlaps(b, a));
      }),
      { numRuns: 200 },
    );
  });
});

describe('relativeTo', () => {
  it.each([
    ['/a', '/a/b/c', 'b/c'],
    ['/a', '/a', ''],
    ['/a/', '/a/b', 'b'],
    ['/', '/x/y', 'x/y'],
    ['/', '/', ''],
    ['//a//', '/a/./b/', 'b'],
  ])('relativeTo(%j, %j) = %j', (base, path, expected) => {
    expect(relativeTo(base, path)).toBe(expected);
  });

  it('property: join(base, relativeTo(base, path)) === normalized path', () => {
    fc.assert(
      fc.property(absPath, fc.array(segment, { maxLength: 4 }), (base, q) => {
        const path = posix.join(base, ...q);
        expect(normalizeAbsolute(posix.join(base, relativeTo(base, path)))).toBe(normalizeAbsolute(path));
        expect(relativeTo('/', path)).toBe(path.slice(1));
      }),
      { numRuns: 200 },
    );
  });
});
