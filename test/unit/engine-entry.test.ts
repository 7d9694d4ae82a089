import { describe, expect, it } from 'vitest';
import { existsSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { offerEngineRequest, readEngineRequest } from '../../src/engine-entry.js';
import { resolveArch } from '../../src/emulation/arch.js';
import { parseReference } from '../../src/image/reference.js';
import type { CellRequest } from '../../src/engine-types.js';
import { baseSpec } from './spec-fixture.js';

const request: CellRequest = {
  stateDir: '/var/lib/build-cell',
  image: {
    ref: parseReference('docker.io/library/debian:bookworm'),
    arch: resolveArch('arm64'),
    pull: 'missing',
    registry: { tlsVerify: true, username: 'u', password: 'a secret\nwith a newline' },
  },
  // A spec with secrets in its env (the engine's own fields, root and scratch, come later).
  spec: (({ root: _root, scratch: _scratch, ...spec }) => spec)(baseSpec({ env: [['TOKEN', 'x=y\n$(z)']] })),
  owner: { uid: 1000, gid: 1000 },
};

describe('the engine request across sudo (a socket, served once)', () => {
  it('arrives whole, secrets included, in an owner-only directory that close removes', async () => {
    const offered = await offerEngineRequest(request);
    expect(statSync(offered.dir).mode & 0o777).toBe(0o700);
    expect(offered.address.length).toBeLessThan(108);
    const received = await readEngineRequest(offered.address);
    expect(received).toEqual(request);
    expect(received.image.arch).toBe(resolveArch('arm64'));
    // Served once: a second reader is refused.
    await expect(readEngineRequest(offered.address)).rejects.toThrow(/cannot read the engine request/);
    await offered.close();
    expect(existsSync(offered.dir)).toBe(false);
  });

  it('refuses what is not an engine request, naming the address', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bc-engine-entry-'));
    const address = join(dir, 'other.sock');
    const server = createServer((socket) => socket.end('{"spec": 1}'));
    await new Promise<void>((resolve) => server.listen(address, resolve));
    try {
      await expect(readEngineRequest(address)).rejects.toThrow(`${address} did not serve an engine request`);
    } finally {
      server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('says which address it could not reach', async () => {
    await expect(readEngineRequest('/nonexistent/engine.sock')).rejects.toThrow(
      /cannot read the engine request at \/nonexistent\/engine\.sock/,
    );
  });
});
