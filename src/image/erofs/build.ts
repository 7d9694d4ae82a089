/**
 * A prepared root filesystem as one EROFS image: what the Actions cache carries to a fresh
 * runner, which then mounts it instead of unpacking ~9,000 files. Uncompressed inside: the
 * Actions cache compresses the entry with zstd anyway, and that way the zstd archive is
 * smaller than of an lz4 image (Debian bookworm: 41 MB against 50 MB), reads cost no CPU, and
 * build-cell's own reader (./read.ts, the fallback where nothing can be mounted) needs no
 * decompressor. Exact: owners, modes, xattrs, hard links, and per-file mtimes
 * (--preserve-mtime; without it mkfs.erofs stamps compact inodes with the build time).
 */
import { rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { exec } from '../../util/exec.js';
import { CHUNK_BYTES, chunkDigests } from './digest.js';

export interface BuiltImage {
  bytes: number;
  chunkBytes: number;
  chunkSha256: string[];
}

/**
 * Write `rootfs` to `file` with `mkfs` (mkfs.erofs), through a temporary name beside it, so
 * `file` is never half-written. `exclude`: names at the top level to leave out (the runtime
 * root sentinel, which names this machine's state dir).
 */
export async function buildErofs(
  mkfs: string,
  rootfs: string,
  file: string,
  exclude: readonly string[] = [],
): Promise<BuiltImage> {
  const temp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  try {
    await exec(
      mkfs,
      ['--quiet', '--preserve-mtime', ...exclude.map((name) => `--exclude-path=${name}`), temp, rootfs],
      `cannot write ${rootfs} as an EROFS image`,
      { dieWithParent: true },
    );
    const bytes = (await stat(temp)).size;
    const built = { bytes, chunkBytes: CHUNK_BYTES, chunkSha256: await chunkDigests(temp, bytes) };
    await rename(temp, file);
    return built;
  } finally {
    await rm(temp, { force: true });
  }
}
