/**
 * Property test of workspace archive extraction: whatever a hostile archive holds (absolute
 * names, `..`, symlinks to outside, entries written through earlier symlinks, hard links out),
 * extraction either refuses it or writes strictly inside the destination.
 */
import fc from 'fast-check';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unpackArchive } from '../../src/cell/stage.js';
import { tarArchive, type TarEntry } from '../helpers/tar.js';

type Entry = TarEntry & { type: 'file' | 'dir' | 'symlink' | 'hardlink'; link: string };

/** Every path under `dir`, never following symlinks. */
async function tree(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    out.push(`${prefix}${entry.name}`);
    if (entry.isDirectory()) out.push(...(await tree(join(dir, entry.name), `${prefix}${entry.name}/`)));
  }
  return out.sort();
}

let base: string;
let outside: string;

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'bc-archive-fuzz-'));
  outside = join(base, 'outside');
  await import('node:fs/promises').then((fs) => fs.mkdir(outside));
  await writeFile(join(outside, 'victim'), 'untouched\n');
});

afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

const segment = fc.constantFrom('a', 'b', 'c', '..', '.', 'link', 'dir');
const relName = fc.array(segment, { minLength: 1, maxLength: 4 }).map((parts) => parts.join('/'));

describe('workspace archive extraction under hostile input', () => {
  it('never writes outside the destination', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            type: fc.constantFrom('file', 'dir', 'symlink', 'hardlink'),
            name: fc.oneof(
              relName,
              relName.map((n) => `/${n}`),
              fc.constant('link/victim'),
              fc.constant('link/new'),
            ),
            link: fc.oneof(fc.constant('OUTSIDE'), fc.constant('OUTSIDE/victim'), relName, fc.constant('/etc/passwd')),
          }),
          { minLength: 1, maxLength: 6 },
        ),
        async (raw) => {
          const entries = raw.map((e) => ({ ...e, link: e.link.replace('OUTSIDE', outside) })) as Entry[];
          const dir = join(base, `case-${run++}`);
          const dest = join(dir, 'workspace');
          await import('node:fs/promises').then((fs) => fs.mkdir(dest, { recursive: true }));
          const archive = join(dir, 'ws.tar');
          await writeFile(archive, tarArchive(entries));
          // node-tar can stall on some hostile archives: the watchdog refuses them (short here).
          await unpackArchive(archive, dest, { stallMs: 300 }).catch(() => undefined);
          // Nothing outside the destination changed.
          expect(await readdir(outside)).toEqual(['victim']);
          expect(await readFile(join(outside, 'victim'), 'utf8')).toBe('untouched\n');
          expect((await readdir(dir)).sort()).toEqual(['workspace', 'ws.tar']);
          // Extraction is over when unpackArchive settles: nothing appears afterwards.
          const listing = async () => JSON.stringify(await tree(dest));
          const settled = await listing();
          await new Promise((resolve) => setTimeout(resolve, 5));
          expect(await listing()).toBe(settled);
          await rm(dir, { recursive: true, force: true });
        },
      ),
      { numRuns: 150 },
    );
  });
});
