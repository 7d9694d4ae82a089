// Files under the temp dir: the trash (nothing is deleted mid-run), workspace trees, and the
// file-creation probe that tells how slow this disk is right now.
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { state } from './state.mjs';
import { q, round } from './util.mjs';

/**
 * Nothing is deleted while the bench runs: on an ext4 without a journal (as here), creating a
 * file scans the inodes freed in the last 5 s (305 s while their inode table is dirty) one by
 * one (recently_deleted() in find_inode_bit), so a copy right after an `rm -rf` of a big tree
 * is many times slower. What a run leaves is renamed into TMP/trash and removed at the end.
 */
const TRASH_FN = () => `t() { [ ! -e "$1" ] || mv "$1" ${q(join(state.tmp, 'trash'))}/$(date +%s%N); }`;
/** A shell snippet (for a `prepare`) that moves `paths` into the trash. */
export const trashSh = (...paths) => `${TRASH_FN()}; ${paths.map((p) => `t ${q(p)}`).join('; ')}`;
export function trash(path) {
  if (existsSync(path)) renameSync(path, join(state.tmp, 'trash', `js-${++state.trashSeq}`));
}

/** `count` files of 100 bytes: DIR/d<i/100>/f<i%100>, i.e. directories of 100 files each. */
export function makeTree(dir, count) {
  const content = Buffer.alloc(100, 'x');
  content.write('bench\n');
  for (let i = 0; i < count; i++) {
    const d = join(dir, `d${Math.floor(i / 100)}`);
    if (i % 100 === 0) mkdirSync(d, { recursive: true });
    writeFileSync(join(d, `f${i % 100}`), content);
  }
}
export function makeBigFile(dir, bytes) {
  mkdirSync(dir, { recursive: true });
  const chunk = randomBytes(1 << 20);
  const fd = openSync(join(dir, 'big.bin'), 'w');
  for (let done = 0; done < bytes; done += chunk.length) writeSync(fd, chunk, 0, Math.min(chunk.length, bytes - done));
  closeSync(fd);
}

/** µs to create one empty file in a fresh directory under TMP (see the trash comment above). */
export function createProbe(n = 2000) {
  const dir = join(state.tmp, `probe-${++state.probeSeq}`);
  mkdirSync(dir);
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) closeSync(openSync(join(dir, `f${i}`), 'w'));
  const us = Number(process.hrtime.bigint() - t) / 1e3 / n;
  trash(dir);
  return round(us, 1);
}
