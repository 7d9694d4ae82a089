/**
 * Smoke test of the test helpers themselves: the busybox fixture layout builds,
 * a real local registry starts, takes a multi-arch push, and stops cleanly.
 * (The Debian fixture is slow and is exercised by the e2e test that needs it.)
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARCHES, MULTI_TAG, busyboxLayout } from '../helpers/fixtures.js';
import { pushLayout, startRegistry, startRegistryWithAuth, type Registry } from '../helpers/registry.js';

const exec = promisify(execFile);
const INDEX = 'application/vnd.oci.image.index.v1+json';
const REF = 'org.opencontainers.image.ref.name';

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function inspectRaw(
  ref: string,
  creds?: string,
): Promise<{ mediaType?: string; manifests?: { platform?: { architecture?: string } }[] }> {
  const args = ['inspect', '--tls-verify=false', '--raw', ...(creds ? ['--creds', creds] : []), ref];
  const { stdout } = await exec('skopeo', args, { timeout: 60_000 });
  return JSON.parse(stdout);
}

describe('test fixtures', () => {
  let layout: string;
  const registries: Registry[] = [];

  beforeAll(async () => {
    layout = await busyboxLayout();
  }, 15 * 60_000);

  afterAll(async () => {
    await Promise.all(registries.map((r) => r.stop()));
  });

  it('busybox layout has every arch tag and the multi index', async () => {
    const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as {
      manifests: { mediaType: string; annotations?: Record<string, string> }[];
    };
    const tags = index.manifests.map((m) => m.annotations?.[REF]);
    expect(tags).toEqual(expect.arrayContaining([...ARCHES, MULTI_TAG]));
    expect(index.manifests.find((m) => m.annotations?.[REF] === MULTI_TAG)?.mediaType).toBe(INDEX);
  });

  it('pushes the multi index to a local registry and stops it', async () => {
    const reg = await startRegistry();
    registries.push(reg);
    expect(reg.host).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(pidAlive(reg.pid)).toBe(true);

    await pushLayout(layout, MULTI_TAG, reg.host, 'busybox', 'multi');
    const raw = await inspectRaw(`docker://${reg.host}/busybox:multi`);
    expect(raw.mediaType).toBe(INDEX);
    expect(raw.manifests).toHaveLength(2);
    expect(raw.manifests?.map((m) => m.platform?.architecture).sort()).toEqual(['amd64', 'arm64']);

    await reg.stop();
    expect(pidAlive(reg.pid)).toBe(false);
    await reg.stop(); // idempotent
  }, 120_000);

  it('auth registry refuses anonymous access and accepts its credentials', async () => {
    const reg = await startRegistryWithAuth('cell', 's3cret-pass');
    registries.push(reg);
    const anon = await fetch(`http://${reg.host}/v2/`);
    expect(anon.status).toBe(401);

    await expect(pushLayout(layout, 'arm64', reg.host, 'busybox', 'arm64')).rejects.toThrow();
    await pushLayout(layout, 'arm64', reg.host, 'busybox', 'arm64', reg.credentials);
    const raw = await inspectRaw(`docker://${reg.host}/busybox:arm64`, 'cell:s3cret-pass');
    expect(raw.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');

    await reg.stop();
    expect(pidAlive(reg.pid)).toBe(false);
  }, 120_000);
});
