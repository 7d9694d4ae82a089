// The EROFS entry of a store image, as the action hands it to the Actions cache (rows 1, 3, 8),
// written by build-cell's own code (src/image/erofs/entry.ts, through ts-register.mjs) in a
// process of its own, as in the action.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { REPO } from './state.mjs';

/**
 * Write the entry of store image `entry` (ARCH-HEX) of `state` into the store DIR: returns
 * `erofs`, the dir holding ENTRY.erofs and ENTRY.json (what an Actions cache restore puts in
 * STATE/images/erofs), how long writing it took (mkfs.erofs and the digests: what a miss pays),
 * how long the digests alone take (what the action's check adds to a restore: the CLI has no
 * Actions cache dir to check), and the image's size.
 */
export function makeErofsEntry(state, entry, dir) {
  const src = (path) => JSON.stringify(join(REPO, 'src', path));
  const script = `import { Store } from ${src('image/store.ts')};
import { writeErofsEntry } from ${src('image/erofs/entry.ts')};
import { chunkDigests } from ${src('image/erofs/digest.ts')};
import { readImageConfig } from ${src('image/prepare.ts')};
import { resolveArch } from ${src('emulation/arch.ts')};
const [state, entry, dir] = ${JSON.stringify([state, entry, dir])};
const arch = resolveArch(entry.slice(0, entry.lastIndexOf('-')));
const digest = 'sha256:' + entry.slice(entry.lastIndexOf('-') + 1);
const config = await readImageConfig(join(state, 'images', 'layouts', entry));
const into = new Store(dir);
const start = performance.now();
const record = await writeErofsEntry(into, 'mkfs.erofs', join(state, 'images', 'rootfs', entry), arch, digest, config);
const ms = performance.now() - start;
const hashStart = performance.now();
await chunkDigests(into.erofsFile(arch, digest), record.bytes, record.chunkBytes);
console.log(JSON.stringify({ ms, hashMs: performance.now() - hashStart, bytes: record.bytes, erofs: join(dir, 'images', 'erofs') }));`;
  const output = execFileSync(
    process.execPath,
    [
      '--import',
      join(REPO, 'bench/lib/ts-register.mjs'),
      '--input-type=module',
      '-e',
      `import { join } from 'node:path';\n${script}`,
    ],
    { encoding: 'utf8' },
  );
  return JSON.parse(output);
}
