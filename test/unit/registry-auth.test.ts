import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { parseReference } from '../../src/image/reference.js';
import { registryHost, withRegistryArgs } from '../../src/image/registry-auth.js';

describe('registryHost', () => {
  it.each([
    ['debian:bookworm', 'docker.io'],
    ['debian', 'docker.io'],
    ['library/debian', 'docker.io'],
    ['library/debian:12', 'docker.io'],
    ['docker.io/library/debian', 'docker.io'],
    ['127.0.0.1:5000/x', '127.0.0.1:5000'],
    ['127.0.0.1:5000/a/b:tag', '127.0.0.1:5000'],
    ['localhost/x', 'localhost'],
    ['localhost:5000/x', 'localhost:5000'],
    ['ghcr.io/a/b', 'ghcr.io'],
    [`ghcr.io/a/b@sha256:${'a'.repeat(64)}`, 'ghcr.io'],
    ['myregistry:5000/app', 'myregistry:5000'],
    ['docker://quay.io/org/app:1', 'quay.io'],
  ])('%j -> %s', (input, host) => {
    expect(registryHost(parseReference(input))).toBe(host);
  });
});

describe('withRegistryArgs', () => {
  const docker = parseReference('127.0.0.1:5000/a/b:tag');

  it('passes only the TLS setting without credentials', async () => {
    expect(await withRegistryArgs(docker, { tlsVerify: false }, '--src-', async (a) => a)).toEqual([
      '--src-tls-verify=false',
    ]);
    expect(await withRegistryArgs(docker, { tlsVerify: true }, '--', async (a) => a)).toEqual(['--tls-verify=true']);
  });

  it('passes nothing for a non-docker transport, even with credentials', async () => {
    const oci = parseReference('oci:/srv/layout:tag');
    expect(
      await withRegistryArgs(oci, { tlsVerify: false, username: 'u', password: 'p' }, '--', async (a) => a),
    ).toEqual([]);
  });

  it('passes an existing auth file as is', async () => {
    expect(
      await withRegistryArgs(docker, { tlsVerify: true, authFile: '/home/u/auth.json' }, '--src-', async (a) => a),
    ).toEqual(['--src-tls-verify=true', '--src-authfile', '/home/u/auth.json']);
  });

  it('writes username:password to an owner-only auth file keyed by host, and removes it afterwards', async () => {
    let seen = '';
    const args = await withRegistryArgs(
      docker,
      { tlsVerify: true, username: 'alice', password: 'p@ss:w0rd' },
      '--',
      async (a) => {
        const file = a[2]!;
        seen = file;
        expect(a.slice(0, 2)).toEqual(['--tls-verify=true', '--authfile']);
        expect(statSync(file).mode & 0o777).toBe(0o600);
        const auth = JSON.parse(readFileSync(file, 'utf8')) as { auths: Record<string, { auth: string }> };
        expect(Object.keys(auth.auths)).toEqual(['127.0.0.1:5000']);
        expect(Buffer.from(auth.auths['127.0.0.1:5000']!.auth, 'base64').toString()).toBe('alice:p@ss:w0rd');
        return a;
      },
    );
    expect(args).toHaveLength(3);
    expect(existsSync(seen)).toBe(false);
  });

  it('removes the auth file also when the callback fails', async () => {
    let seen = '';
    await expect(
      withRegistryArgs(docker, { tlsVerify: true, username: 'u', password: 'p' }, '--', async (a) => {
        seen = a[2]!;
        throw new Error('skopeo failed');
      }),
    ).rejects.toThrow('skopeo failed');
    expect(seen).not.toBe('');
    expect(existsSync(seen)).toBe(false);
  });
});
