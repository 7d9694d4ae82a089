/**
 * EROFS entries of a store (see ../store.ts): a prepared rootfs as one image file with its
 * record, made from a rootfs directory (to hand to the Actions cache), copied from another
 * store (the restored cache dir) only after its size and digests match the record, and the
 * mount point cells mount it on.
 */
import { chmod, copyFile, mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ArchInfo } from '../../emulation/arch.js';
import { CellSetupError } from '../../util/errors.js';
import { ROOT_SENTINEL, writeRootSentinel, type ErofsRecord, type Store } from '../store.js';
import { buildErofs } from './build.js';
import { chunkDigests } from './digest.js';

/** A cache entry that does not match its record: refused before any mount (the caller pulls instead). */
export class ErofsEntryError extends CellSetupError {
  override name = 'ErofsEntryError';
}

/** Write `rootfs` as the EROFS entry of `digest` in `into` (the record last). */
export async function writeErofsEntry(
  into: Store,
  mkfs: string,
  rootfs: string,
  arch: ArchInfo,
  digest: string,
  config: ErofsRecord['config'],
): Promise<ErofsRecord> {
  const file = into.erofsFile(arch, digest);
  await mkdir(join(file, '..'), { recursive: true });
  const built = await buildErofs(mkfs, rootfs, file, [ROOT_SENTINEL]);
  const record: ErofsRecord = { digest, arch: arch.name, config, ...built };
  await into.writeErofsRecord(arch, record);
  return record;
}

/**
 * Take the EROFS entry of `digest` from `from` (the restored cache dir, which a hit does not
 * save again) into `into`, checking the file against its record (digest, arch, size, then
 * the sha256 of every chunk): a cut or altered entry never reaches the kernel.
 */
export async function takeErofsEntry(from: Store, into: Store, arch: ArchInfo, digest: string): Promise<ErofsRecord> {
  // Held before it is there: no prune removes it before the run that takes it uses it.
  into.useImage(arch, digest);
  const source = from.erofsFile(arch, digest);
  const record = checkRecord(await from.readErofs(arch, digest), source, arch, digest);
  const size = await checkSize(source, record);
  const temp = await into.tempDir('erofs');
  try {
    // Checked where it will be used: what is checked is what the kernel reads. Moved where the
    // cache dir lies on the store's file system (nothing copied), else copied.
    const copy = join(temp, 'image.erofs');
    await rename(source, copy).catch(async (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EXDEV') throw error;
      await copyFile(source, copy);
    });
    // A loop device's setup flushes the file's dirty pages first (about 0.3 s for a 345 MB image
    // just restored): flushed here, beside the digest check, they no longer hold up the mount.
    await Promise.all([checkChunks(copy, size, record, source), flushToDisk(copy)]);
    const file = into.erofsFile(arch, digest);
    await mkdir(join(file, '..'), { recursive: true });
    await rename(copy, file);
    await into.writeErofsRecord(arch, record);
    return record;
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
}

/** What is wrong with an EROFS entry of the store (`store verify`): undefined when it is whole. */
export async function erofsEntryProblem(store: Store, arch: ArchInfo, digest: string): Promise<string | undefined> {
  const file = store.erofsFile(arch, digest);
  try {
    const record = checkRecord(await store.readErofs(arch, digest), file, arch, digest);
    await checkChunks(file, await checkSize(file, record), record, file);
    return undefined;
  } catch (error) {
    if (error instanceof ErofsEntryError) return error.message;
    throw error;
  }
}

function checkRecord(record: ErofsRecord | undefined, source: string, arch: ArchInfo, digest: string): ErofsRecord {
  if (!record || record.arch !== arch.name || !validConfig(record.config) || !validDigests(record))
    throw new ErofsEntryError(`the EROFS entry ${source} has no usable record for ${arch.name} ${digest}`);
  return record;
}

async function checkSize(source: string, record: ErofsRecord): Promise<number> {
  const size = (await stat(source)).size;
  if (size !== record.bytes)
    throw new ErofsEntryError(`the EROFS image ${source} has ${size} bytes, its record says ${record.bytes}`);
  return size;
}

/** Every chunk's sha256 as the record says (`file` is where the bytes are, `source` what the message names). */
async function checkChunks(file: string, size: number, record: ErofsRecord, source: string): Promise<void> {
  const digests = await chunkDigests(file, size, record.chunkBytes);
  const bad = digests.findIndex((hex, i) => hex !== record.chunkSha256[i]);
  if (bad >= 0)
    throw new ErofsEntryError(
      `the EROFS image ${source} has sha256 ${digests[bad]} in chunk ${bad} (bytes from ${bad * record.chunkBytes}), its record says ${record.chunkSha256[bad]}`,
    );
}

async function flushToDisk(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.datasync();
  } finally {
    await handle.close();
  }
}

/** Whole-MiB chunks (at least 1 MiB), one sha256 for each. */
function validDigests(record: ErofsRecord): boolean {
  const { bytes, chunkBytes, chunkSha256 } = record;
  return (
    Number.isSafeInteger(chunkBytes) &&
    chunkBytes >= 1 << 20 &&
    chunkBytes % (1 << 20) === 0 &&
    Array.isArray(chunkSha256) &&
    chunkSha256.length === Math.max(1, Math.ceil(bytes / chunkBytes)) &&
    chunkSha256.every((hex) => typeof hex === 'string' && /^[0-9a-f]{64}$/.test(hex))
  );
}

function validConfig(config: unknown): config is ErofsRecord['config'] {
  const c = config as ErofsRecord['config'] | undefined;
  return (
    !!c &&
    Array.isArray(c.env) &&
    c.env.every((e) => typeof e === 'string') &&
    (c.workingDir === undefined || typeof c.workingDir === 'string')
  );
}

/** The empty directory cells mount the image on, with the sentinel that ties it to this store. */
export async function ensureMountPoint(store: Store, arch: ArchInfo, digest: string): Promise<string> {
  const dir = store.mountDir(arch, digest);
  const sentinel = join(dir, ROOT_SENTINEL);
  try {
    if ((await stat(sentinel)).isFile()) return dir;
  } catch {
    // not made yet
  }
  const temp = await store.tempDir('mount');
  try {
    await writeRootSentinel(temp, store.stateDir);
    await chmod(temp, 0o755);
    await store.commit(temp, dir);
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
  return dir;
}
