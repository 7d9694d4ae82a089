import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { resolveArch } from '../../src/emulation/arch.js';
import { pickDigest, PULL_POLICIES } from '../../src/image/prepare.js';
import { parseReference } from '../../src/image/reference.js';
import { CellSetupError, UserError } from '../../src/util/errors.js';
import { expectUserError } from './spec-fixture.js';

const digest = (c: string) => `sha256:${c.repeat(64)}`;
const ref = parseReference('docker://registry.example/app:1');
const entry = (d: string, architecture: string, variant?: string, os = 'linux') => ({
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  digest: d,
  size: 123,
  platform: { os, architecture, ...(variant ? { variant } : {}) },
});
const index = (...manifests: unknown[]) =>
  JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests });

describe('pickDigest from an index', () => {
  const multi = index(
    entry(digest('1'), 'amd64'),
    entry(digest('2'), 'arm64', 'v8'),
    entry(digest('3'), 'arm', 'v6'),
    entry(digest('4'), 'arm', 'v7'),
    entry(digest('5'), 'ppc64le'),
    entry(digest('6'), 'amd64', undefined, 'windows'),
    entry(digest('7'), 's390x', undefined, 'freebsd'),
  );

  it('picks the manifest for the architecture', () => {
    expect(pickDigest(ref, resolveArch('amd64'), multi)).toBe(digest('1'));
    expect(pickDigest(ref, resolveArch('ppc64le'), multi)).toBe(digest('5'));
  });

  it('picks variant v7 for arm, not the first arm entry', () => {
    expect(pickDigest(ref, resolveArch('armhf'), multi)).toBe(digest('4'));
  });

  it('accepts arm64 with variant v8', () => {
    expect(pickDigest(ref, resolveArch('arm64'), multi)).toBe(digest('2'));
  });

  it('accepts arm64 with no variant, preferring it over v8', () => {
    expect(pickDigest(ref, resolveArch('arm64'), index(entry(digest('a'), 'arm64')))).toBe(digest('a'));
    expect(
      pickDigest(ref, resolveArch('arm64'), index(entry(digest('b'), 'arm64', 'v8'), entry(digest('c'), 'arm64'))),
    ).toBe(digest('c'));
  });

  it('accepts an arm entry without a variant for arm/v7', () => {
    expect(pickDigest(ref, resolveArch('arm'), index(entry(digest('d'), 'arm')))).toBe(digest('d'));
  });

  it('recognizes a Docker manifest list by mediaType', () => {
    const list = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json',
      manifests: [entry(digest('e'), 'riscv64')],
    });
    expect(pickDigest(ref, resolveArch('riscv64'), list)).toBe(digest('e'));
  });

  it('ignores the pinned digest for an index (it names the index, not the manifest)', () => {
    const pinned = parseReference(`registry.example/app@${digest('f')}`);
    expect(pickDigest(pinned, resolveArch('amd64'), multi)).toBe(digest('1'));
  });

  it('rejects a missing architecture, listing the available platforms', () => {
    const message = expectUserError(
      () => pickDigest(ref, resolveArch('riscv64'), multi),
      'arch',
      '"docker://registry.example/app:1"',
      'has no linux/riscv64 variant',
      'it has: linux/amd64, linux/arm64/v8, linux/arm/v6, linux/arm/v7, linux/ppc64le, windows/amd64, freebsd/s390x',
      'accepted arch names',
    );
    expect(message).toContain('aarch64');
  });

  it('does not take an entry of another OS', () => {
    expectUserError(() => pickDigest(ref, resolveArch('s390x'), multi), 'arch', 'no linux/s390x variant');
  });

  it('refuses arm v6 only for arm/v7', () => {
    expectUserError(
      () => pickDigest(ref, resolveArch('arm'), index(entry(digest('3'), 'arm', 'v6'))),
      'arch',
      'linux/arm/v6',
    );
  });

  it('says "none" for an empty index', () => {
    expectUserError(() => pickDigest(ref, resolveArch('amd64'), index()), 'arch', 'it has: none');
  });

  it('rejects a malformed digest inside the index', () => {
    expect(() => pickDigest(ref, resolveArch('amd64'), index(entry('sha256:nothex', 'amd64')))).toThrow(CellSetupError);
    expect(() => pickDigest(ref, resolveArch('amd64'), index(entry('sha256:nothex', 'amd64')))).toThrow(
      /malformed digest in the index of docker:\/\/registry.example\/app:1: "sha256:nothex"/,
    );
  });
});

describe('pickDigest from a single manifest', () => {
  const manifest =
    '{\n  "schemaVersion": 2,\n  "mediaType": "application/vnd.oci.image.manifest.v1+json",\n  "config": {"digest": "sha256:x"},\n  "layers": []\n}';

  it('hashes the exact raw text (whitespace included)', () => {
    const expected = `sha256:${createHash('sha256').update(manifest).digest('hex')}`;
    expect(pickDigest(ref, resolveArch('amd64'), manifest)).toBe(expected);
    // A semantically equal but re-serialized manifest has another digest.
    const compact = JSON.stringify(JSON.parse(manifest));
    expect(pickDigest(ref, resolveArch('amd64'), compact)).not.toBe(expected);
    expect(pickDigest(ref, resolveArch('amd64'), compact)).toBe(
      `sha256:${createHash('sha256').update(compact).digest('hex')}`,
    );
  });

  it('uses the pinned digest of the reference', () => {
    const pinned = parseReference(`registry.example/app@${digest('9')}`);
    expect(pickDigest(pinned, resolveArch('arm64'), manifest)).toBe(digest('9'));
  });

  it('rejects garbage with a CellSetupError quoting it', () => {
    for (const garbage of ['<html>502 Bad Gateway</html>', '', '{"a":']) {
      let caught: unknown;
      try {
        pickDigest(ref, resolveArch('amd64'), garbage);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(CellSetupError);
      expect(caught).not.toBeInstanceOf(UserError);
      expect((caught as Error).message).toContain(
        'docker://registry.example/app:1 with something that is not a manifest',
      );
      expect((caught as Error).message).toContain(JSON.stringify(garbage.slice(0, 120)));
    }
  });

  // Regression (fixed): src/image/prepare.ts:144-148 pickDigest: JSON that is valid but not an object is not rejected:
  // `null` crashes with a TypeError ("Cannot read properties of null"), and `42` / `"x"` / `[]`
  // are hashed as if they were a single manifest. Fix: after JSON.parse, require
  // `typeof manifest === 'object' && manifest !== null && !Array.isArray(manifest)` and throw the
  // same CellSetupError("... something that is not a manifest ...") otherwise.
  it('rejects JSON that is not an object (null, a number, a string, an array) with a CellSetupError', () => {
    for (const garbage of ['null', '42', '"manifest"', '[]']) {
      expect(() => pickDigest(ref, resolveArch('amd64'), garbage)).toThrow(CellSetupError);
    }
  });
});

describe('PULL_POLICIES', () => {
  it('is missing, always, never', () => {
    expect(PULL_POLICIES).toEqual(['missing', 'always', 'never']);
  });
});
