import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chunkDigests } from '../../src/image/erofs/digest.js';

const MiB = 1 << 20;
let base: string;
beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'bc-erofs-digest-'));
});
afterAll(() => rm(base, { recursive: true, force: true }));

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

describe('chunk digests of an image file', () => {
  it('are the sha256 of each chunk in order, the last one short, hashed on several threads', async () => {
    const bytes = randomBytes(5 * MiB + 12345);
    const file = join(base, 'image');
    await writeFile(file, bytes);
    const expected = [0, 1, 2, 3, 4, 5].map((i) => sha256(bytes.subarray(i * MiB, (i + 1) * MiB)));
    expect(await chunkDigests(file, bytes.length, MiB)).toEqual(expected);
    // One chunk: the file's own sha256 (what `sha256sum` prints).
    expect(await chunkDigests(file, bytes.length, 8 * MiB)).toEqual([sha256(bytes)]);
  });

  it('see a flipped byte in the chunk that holds it, and fail for a missing file', async () => {
    const bytes = randomBytes(3 * MiB);
    const file = join(base, 'flipped');
    await writeFile(file, bytes);
    const before = await chunkDigests(file, bytes.length, MiB);
    bytes[2 * MiB + 7]! ^= 1;
    await writeFile(file, bytes);
    const after = await chunkDigests(file, bytes.length, MiB);
    expect(after.map((hex, i) => hex === before[i])).toEqual([true, true, false]);
    await expect(chunkDigests(join(base, 'absent'), MiB, MiB)).rejects.toThrow(/ENOENT/);
  });

  it('of an empty file is one digest, of nothing', async () => {
    const file = join(base, 'empty');
    await writeFile(file, '');
    expect(await chunkDigests(file, 0, MiB)).toEqual([sha256(Buffer.alloc(0))]);
  });
});
