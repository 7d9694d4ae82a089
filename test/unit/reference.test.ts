import { describe, expect, it } from 'vitest';
import { dockerReferenceByDigest, parseReference, TRANSPORTS } from '../../src/image/reference.js';
import { expectUserError } from './spec-fixture.js';

const D = `sha256:${'ab12'.repeat(16)}`;
const D2 = `sha256:${'0f'.repeat(32)}`;

describe('parseReference', () => {
  it.each([
    ['debian:bookworm', 'docker://debian:bookworm'],
    ['busybox', 'docker://busybox'],
    ['library/debian', 'docker://library/debian'],
    ['ghcr.io/a/b:1.0', 'docker://ghcr.io/a/b:1.0'],
    ['127.0.0.1:5000/a/b:tag', 'docker://127.0.0.1:5000/a/b:tag'],
    ['localhost:5000/x', 'docker://localhost:5000/x'],
  ])('a bare %j means %j', (input, full) => {
    const ref = parseReference(input);
    expect(ref.full).toBe(full);
    expect(ref.transport).toBe('docker');
    expect(ref.pinnedDigest).toBeUndefined();
  });

  // Regression (fixed): src/image/reference.ts:27 parseReference re-parses a bare name as `docker://${ref}` and
  // returns that inner result, so `original` ("the reference as given") becomes
  // "docker://debian:bookworm" instead of "debian:bookworm" (and is trimmed). Every message that
  // quotes ref.original (pickDigest, prepareImage, "pull is never") then shows a reference the user
  // never typed. Fix: `return { ...parseReference(`docker://${ref}`, field), original: value };`
  it('keeps the reference as given in `original` for a bare name', () => {
    expect(parseReference('debian:bookworm').original).toBe('debian:bookworm');
    expect(parseReference('  busybox:1 ').original).toBe('  busybox:1 ');
  });

  it.each([
    ['docker://debian:bookworm', 'docker'],
    ['oci:/srv/layout:tag', 'oci'],
    ['oci-archive:/srv/img.tar', 'oci-archive'],
    ['docker-archive:/srv/img.tar:debian:12', 'docker-archive'],
    ['dir:/srv/dir', 'dir'],
    ['containers-storage:localhost/img:latest', 'containers-storage'],
  ] as const)('keeps the transport of %j', (input, transport) => {
    const ref = parseReference(input);
    expect(ref).toEqual({ original: input, full: input, transport });
  });

  it('trims surrounding whitespace', () => {
    expect(parseReference('  busybox:1 ').full).toBe('docker://busybox:1');
    expect(parseReference(' docker://busybox:1\n')).toEqual({
      original: ' docker://busybox:1\n',
      full: 'docker://busybox:1',
      transport: 'docker',
    });
  });

  it('parses a digest-pinned reference', () => {
    expect(parseReference(`debian@${D}`)).toMatchObject({
      full: `docker://debian@${D}`,
      transport: 'docker',
      pinnedDigest: D,
    });
    expect(parseReference(`docker://debian@${D}`)).toEqual({
      original: `docker://debian@${D}`,
      full: `docker://debian@${D}`,
      transport: 'docker',
      pinnedDigest: D,
    });
    expect(parseReference(`docker://127.0.0.1:5000/a/b:tag@${D}`).pinnedDigest).toBe(D);
  });

  it('does not look for digests in non-docker transports', () => {
    expect(parseReference('oci:/srv/l@x:tag').pinnedDigest).toBeUndefined();
  });

  it.each([
    'debian@sha256:abc',
    `debian@sha512:${'a'.repeat(64)}`,
    `debian@sha256:${'A'.repeat(64)}`,
    `debian@sha256:${'a'.repeat(65)}`,
    'debian@',
    `debian@${D}@${D}`,
  ])('rejects the malformed digest in %j', (input) => {
    expectUserError(() => parseReference(input), 'image', 'malformed digest', 'sha256:<64 hex digits>');
  });

  it.each(['deb ian', 'debian:\tbookworm', 'a\nb', 'x\0y'])('rejects whitespace or NUL inside %j', (input) => {
    expectUserError(() => parseReference(input, '--image'), '--image', 'must not contain whitespace or NUL');
  });

  it.each(['', '   '])('rejects the empty reference %j', (input) => {
    expectUserError(() => parseReference(input, '--image'), '--image', 'must name an image');
  });

  it.each(['http://x', 'https://registry.example/app', 'ftp://a/b', 'git+ssh://x'])(
    'rejects the unknown scheme in %j, listing transports',
    (input) => {
      const message = expectUserError(
        () => parseReference(input),
        'image',
        'unsupported transport',
        JSON.stringify(input),
      );
      for (const t of TRANSPORTS) expect(message).toContain(t);
    },
  );

  // Regression (fixed): src/image/reference.ts:23-27 only `scheme://` is recognised as a transport, so other
  // skopeo transports written the usual way (`docker-daemon:img:tag`, `ostree:...`, `sif:...`,
  // `tarball:...`) are silently taken as Docker Hub names (`docker://docker-daemon:img:tag`, not
  // even a valid reference) and fail later inside skopeo with a confusing error. Fix: also reject
  // a leading `name:` where name is a known skopeo transport (docker-daemon, ostree, sif, tarball),
  // listing the accepted transports.
  it('rejects other skopeo transports such as docker-daemon: with the accepted list', () => {
    expectUserError(() => parseReference('docker-daemon:busybox:latest'), 'image', 'unsupported transport');
  });

  it.each(['docker://', 'oci:', 'dir:'])('rejects %j with nothing after the transport', (input) => {
    expectUserError(() => parseReference(input), 'image', 'names no image after');
  });
});

describe('dockerReferenceByDigest', () => {
  const byDigest = (input: string) => dockerReferenceByDigest(parseReference(input), D2);
  it.each([
    ['docker://127.0.0.1:5000/a/b:tag', `docker://127.0.0.1:5000/a/b@${D2}`],
    ['docker://127.0.0.1:5000/a/b', `docker://127.0.0.1:5000/a/b@${D2}`],
    [`docker://127.0.0.1:5000/a/b:tag@${D}`, `docker://127.0.0.1:5000/a/b@${D2}`],
    [`docker://127.0.0.1:5000/a/b@${D}`, `docker://127.0.0.1:5000/a/b@${D2}`],
    ['localhost:5000/app', `docker://localhost:5000/app@${D2}`],
    ['debian:bookworm', `docker://debian@${D2}`],
    ['debian', `docker://debian@${D2}`],
    ['ghcr.io/org/app:v1.2.3', `docker://ghcr.io/org/app@${D2}`],
    [`library/debian:12@${D}`, `docker://library/debian@${D2}`],
  ])('%j -> %j', (input, expected) => {
    expect(byDigest(input)).toBe(expected);
  });
});
