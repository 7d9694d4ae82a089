/**
 * The on-disk store under the state dir. Every entry is written to a temporary name and
 * renamed into place when complete, so a killed download or unpack never leaves a
 * half-written entry that a later run would use.
 *
 *   STATE/images/refs/<sha256(reference, arch)>.json   what a reference resolved to
 *   STATE/images/layouts/<arch>-<digest hex>/          OCI layout of one image (tag "image")
 *   STATE/images/rootfs/<arch>-<digest hex>/           its unpacked, pristine rootfs
 *   STATE/images/erofs/<arch>-<digest hex>.erofs       or its rootfs as one EROFS image (./erofs/),
 *   STATE/images/erofs/<arch>-<digest hex>.json          with what the engine needs of the image
 *   STATE/images/mounts/<arch>-<digest hex>/           where cells mount it (the sentinel alone)
 *   STATE/cells/<id>/                                  one cell's scratch
 *   STATE/locks/, STATE/tmp/
 */
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { ownerIsAlive } from '../util/lock.js';
import { randomHex, sha256Hex } from '../util/random.js';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { archKey, type ArchInfo } from '../emulation/arch.js';

export const LAYOUT_RECORD = 'build-cell.json';
/** Written into each prepared rootfs: it holds the runtime prefix (the state dir) it belongs to. */
export const ROOT_SENTINEL = '.build-cell-root';

export interface RefRecord {
  reference: string;
  arch: string;
  /** Digest of the image manifest (for the requested platform) at the source. */
  digest: string;
  resolvedAt: string;
}

export interface LayoutRecord extends RefRecord {
  /** Digest of the manifest as stored in the layout (differs when skopeo converted formats). */
  layoutDigest: string;
}

/** From an image config: its environment (NAME=VALUE) and working directory. */
export interface ImageConfig {
  env: string[];
  workingDir?: string;
}

/** What an EROFS entry carries besides the image: checked before the kernel ever sees the file. */
export interface ErofsRecord {
  /** The image's manifest digest (the entry's name). */
  digest: string;
  arch: string;
  /** The image config's environment and working directory (there is no layout to read them from). */
  config: ImageConfig;
  /** The image file's size, and the sha256 of each chunkBytes-long chunk of it (./erofs/digest.ts). */
  bytes: number;
  chunkBytes: number;
  chunkSha256: string[];
}

export class Store {
  constructor(readonly stateDir: string) {}

  get imagesDir() {
    return join(this.stateDir, 'images');
  }
  get cellsDir() {
    return join(this.stateDir, 'cells');
  }
  get locksDir() {
    return join(this.stateDir, 'locks');
  }
  get tmpDir() {
    return join(this.stateDir, 'tmp');
  }

  archKey(arch: ArchInfo): string {
    return archKey(arch);
  }

  /**
   * The ref record's file name: the arch and the reference, escaped to [A-Za-z0-9._-] and %XX
   * (one name per reference, and no hashing on the warm path); a long one is hashed instead.
   */
  refKey(reference: string, arch: ArchInfo): string {
    const escaped = encodeURIComponent(reference).replace(
      /[!'()*~]/g,
      (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
    );
    const archKey = this.archKey(arch);
    return escaped.length <= 180
      ? `${archKey}-${escaped}`
      : `${archKey}-sha256-${sha256Hex(`${reference}\narch=${archKey}`)}`;
  }

  refFile(reference: string, arch: ArchInfo): string {
    return join(this.imagesDir, 'refs', `${this.refKey(reference, arch)}.json`);
  }

  entryName(arch: ArchInfo, digest: string): string {
    return `${this.archKey(arch)}-${digest.replace(/^sha256:/, '')}`;
  }

  layoutDir(arch: ArchInfo, digest: string): string {
    return join(this.imagesDir, 'layouts', this.entryName(arch, digest));
  }

  rootfsDir(arch: ArchInfo, digest: string): string {
    return join(this.imagesDir, 'rootfs', this.entryName(arch, digest));
  }

  erofsFile(arch: ArchInfo, digest: string): string {
    return join(this.imagesDir, 'erofs', `${this.entryName(arch, digest)}.erofs`);
  }

  erofsRecordFile(arch: ArchInfo, digest: string): string {
    return join(this.imagesDir, 'erofs', `${this.entryName(arch, digest)}.json`);
  }

  mountDir(arch: ArchInfo, digest: string): string {
    return join(this.imagesDir, 'mounts', this.entryName(arch, digest));
  }

  /** The record of an EROFS entry whose image file is there (the record is written last). */
  async readErofs(arch: ArchInfo, digest: string): Promise<ErofsRecord | undefined> {
    const record = await readJson<ErofsRecord>(this.erofsRecordFile(arch, digest));
    return record?.digest === digest && existsSync(this.erofsFile(arch, digest)) ? record : undefined;
  }

  /** Write an EROFS entry's record (after its image file: the record says the entry is whole). */
  async writeErofsRecord(arch: ArchInfo, record: ErofsRecord): Promise<void> {
    await writeAtomic(this.erofsRecordFile(arch, record.digest), `${JSON.stringify(record, null, 2)}\n`);
  }

  lockDir(name: string): string {
    return join(this.locksDir, `${name}.lock`);
  }

  async readRef(reference: string, arch: ArchInfo): Promise<RefRecord | undefined> {
    const record = await readJson<RefRecord>(this.refFile(reference, arch));
    // A record is only ever for its own reference (whatever its file is named).
    return record?.reference === reference ? record : undefined;
  }

  async writeRef(record: RefRecord, arch: ArchInfo): Promise<void> {
    await writeAtomic(this.refFile(record.reference, arch), `${JSON.stringify(record, null, 2)}\n`);
  }

  async readLayout(arch: ArchInfo, digest: string): Promise<LayoutRecord | undefined> {
    return readJson<LayoutRecord>(join(this.layoutDir(arch, digest), LAYOUT_RECORD));
  }

  hasRootfs(arch: ArchInfo, digest: string): boolean {
    return existsSync(join(this.rootfsDir(arch, digest), ROOT_SENTINEL));
  }

  /** Remove temporary entries of runs that died (their PID is in the name). */
  async removeStaleTemps(): Promise<void> {
    for (const name of await readdir(this.tmpDir).catch(() => [] as string[])) {
      const pid = Number(/^[a-z]+-(\d+)-/.exec(name)?.[1]);
      if (pid && !ownerIsAlive({ pid })) await rm(join(this.tmpDir, name), { recursive: true, force: true });
    }
  }

  /** A fresh directory under STATE/tmp, to be renamed into place. */
  async tempDir(prefix: string): Promise<string> {
    const dir = join(this.tmpDir, `${prefix}-${process.pid}-${randomHex(4)}`);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return dir;
  }

  /** Move a finished temporary entry into place; if another process won the race, keep theirs. */
  async commit(tempPath: string, finalPath: string): Promise<void> {
    await mkdir(join(finalPath, '..'), { recursive: true });
    try {
      await rename(tempPath, finalPath);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw error;
      await rm(tempPath, { recursive: true, force: true });
    }
  }
}

async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    // Synchronous: a small record read on every warm run.
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/**
 * Write the sentinel that ties a rootfs (or an image's mount point) to its runtime prefix, the
 * state dir (see cell/runtime-root.ts). An entry of that name already there (an image's own, a
 * symlink to a host file, say) is replaced, never written through.
 */
export async function writeRootSentinel(dir: string, prefix: string): Promise<void> {
  const sentinel = join(dir, ROOT_SENTINEL);
  await rm(sentinel, { recursive: true, force: true });
  await writeFile(sentinel, prefix, { mode: 0o444, flag: 'wx' });
}

export async function writeAtomic(file: string, content: string, mode = 0o644): Promise<void> {
  await mkdir(join(file, '..'), { recursive: true });
  const temp = `${file}.${process.pid}.${randomHex(4)}.tmp`;
  await writeFile(temp, content, { mode });
  await rename(temp, file);
}
