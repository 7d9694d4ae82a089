// The EROFS entry of a store image, as the action hands it to the Actions cache (rows 3 and 8):
// STATE/images/erofs/ENTRY.erofs and ENTRY.json, made with mkfs.erofs and the record's chunk
// digests computed by build-cell's own code (src/image/erofs/digest.ts, through ts-register.mjs).
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from './state.mjs';

/**
 * Make the entry of store image `entry` (ARCH-HEX) of `state` under DIR/erofs. Returns how long
 * mkfs.erofs took (what a miss pays for it), how long the digests took (what the action's
 * restore adds: the CLI has no Actions cache dir to check), and the image's size.
 */
export function makeErofsEntry(state, entry, dir) {
  const out = join(dir, 'erofs');
  mkdirSync(out, { recursive: true });
  const file = join(out, `${entry}.erofs`);
  const start = performance.now();
  execFileSync('mkfs.erofs', [
    '--quiet',
    '--preserve-mtime',
    '--exclude-path=.build-cell-root',
    file,
    join(state, 'images', 'rootfs', entry),
  ]);
  const ms = performance.now() - start;
  const bytes = statSync(file).size;
  const digests = chunkDigests(file, bytes);
  const layout = join(state, 'images', 'layouts', entry);
  const blob = (digest) => join(layout, 'blobs', 'sha256', digest.replace(/^sha256:/, ''));
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'));
  const manifest = JSON.parse(readFileSync(blob(index.manifests[0].digest), 'utf8'));
  const config = JSON.parse(readFileSync(blob(manifest.config.digest), 'utf8')).config ?? {};
  const record = {
    digest: `sha256:${entry.slice(entry.indexOf('-') + 1)}`,
    arch: entry.slice(0, entry.indexOf('-')),
    config: { env: config.Env ?? [], ...(config.WorkingDir ? { workingDir: config.WorkingDir } : {}) },
    bytes,
    chunkBytes: digests.chunkBytes,
    chunkSha256: digests.chunks,
  };
  writeFileSync(join(out, `${entry}.json`), `${JSON.stringify(record, null, 2)}\n`);
  return { ms, hashMs: digests.ms, bytes };
}

/** build-cell's chunk digests of `file`, and how long they took (in a process of their own, as in the action). */
function chunkDigests(file, bytes) {
  const script = `import { CHUNK_BYTES, chunkDigests } from ${JSON.stringify(join(REPO, 'src/image/erofs/digest.ts'))};
const start = performance.now();
const chunks = await chunkDigests(${JSON.stringify(file)}, ${bytes});
console.log(JSON.stringify({ ms: performance.now() - start, chunkBytes: CHUNK_BYTES, chunks }));`;
  const output = execFileSync(
    process.execPath,
    ['--import', join(REPO, 'bench/lib/ts-register.mjs'), '--input-type=module', '-e', script],
    { encoding: 'utf8' },
  );
  return JSON.parse(output);
}
