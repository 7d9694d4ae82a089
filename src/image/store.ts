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
 *   STATE/images/used/<arch>-<digest hex>              its mtime: the image's last use (./usage.ts)
 *   STATE/images/holds/<arch>-<digest hex>/<holder>    who uses it now (./usage.ts)
 *   STATE/images/sizes/<part>-<arch>-<digest hex>.json  a part's disk usage (a rootfs's: when made)
 *   STATE/cells/<id>/                                  one cell's scratch
 *   STATE/locks/, STATE/tmp/
 */
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { ownerIsAlive } from '../util/lock.js';
import { randomHex, sha256Hex } from '../util/random.js';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { diskUsage, usageToJson } from '../util/disk-usage.js';
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
  /** Its build-cell labels (a derived image's install key and base: install/registry.ts). */
  labels?: Record<string, string>;
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

/** The parts an image may have in the store. */
export type EntryPart = 'layout' | 'rootfs' | 'erofs' | 'mount';
export const ENTRY_PARTS: readonly EntryPart[] = ['layout', 'rootfs', 'erofs', 'mount'];

/**
 * A part's disk usage (util/disk-usage.ts), for the inode of its top directory. `made`: a
 * rootfs's entry count when it was made (what `store verify` checks it against); `stale`: a
 * hard link to it was made since (a derived image), so which inodes are shared has changed.
 */
export interface SizeRecord extends ReturnType<typeof usageToJson> {
  ino: number;
  made?: number;
  stale?: boolean;
}

/** The directories of STATE/images that hold image parts, each file or dir in them named by its entry. */
export const PART_DIRS = ['layouts', 'rootfs', 'erofs', 'mounts'] as const;

/** The entry a name in a part dir belongs to (an EROFS image and its record are ENTRY.erofs, ENTRY.json), if any. */
export function entryOfPartName(name: string): string | undefined {
  const entry = name.replace(/\.(erofs|json)$/, '');
  return parseEntryName(entry) ? entry : undefined;
}

/** An entry's name back into its arch key and digest: `arm-v7-<hex>` is arm-v7's. */
export function parseEntryName(name: string): { archKey: string; digest: string } | undefined {
  const match = /^([a-z0-9]+(?:-v\d+)?)-([a-f0-9]{64})$/.exec(name);
  return match ? { archKey: match[1]!, digest: `sha256:${match[2]}` } : undefined;
}

/** Records each use of an image (./usage.ts): the engine's store has one, a staging store none. */
export interface UseRecorder {
  use(store: Store, entry: string): void;
}

export class Store {
  constructor(
    readonly stateDir: string,
    readonly uses?: UseRecorder,
  ) {}

  /** Hold the image for this run and mark its use, before looking at its entry (see ./usage.ts). */
  useImage(arch: ArchInfo, digest: string): void {
    this.uses?.use(this, this.entryName(arch, digest));
  }

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

  /** The file whose mtime is the image's last use. */
  usedFile(entry: string): string {
    return join(this.imagesDir, 'used', entry);
  }

  /** One file per holder of the image (a running engine process, a session). */
  holdsDir(entry: string): string {
    return join(this.imagesDir, 'holds', entry);
  }

  /** The recorded disk usage of one part of an image (its entry count is a rootfs's completeness check). */
  sizeFile(part: EntryPart, entry: string): string {
    return join(this.imagesDir, 'sizes', `${part}-${entry}.json`);
  }

  /** The paths of an image's parts in the store (the EROFS entry is its image file and record). */
  partPaths(entry: string): Record<EntryPart, string[]> {
    const images = this.imagesDir;
    return {
      layout: [join(images, 'layouts', entry)],
      rootfs: [join(images, 'rootfs', entry)],
      erofs: [join(images, 'erofs', `${entry}.erofs`), join(images, 'erofs', `${entry}.json`)],
      mount: [join(images, 'mounts', entry)],
    };
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
    for (const path of await this.staleTemps()) await rm(path, { recursive: true, force: true });
  }

  /** Temporary entries under STATE/tmp of runs that died (tempDir names them `PREFIX-PID-HEX`). */
  async staleTemps(): Promise<string[]> {
    const names = await readdir(this.tmpDir).catch(() => [] as string[]);
    return names.filter((name) => isDead(/^[a-z]+-(\d+)-/.exec(name)?.[1])).map((name) => join(this.tmpDir, name));
  }

  /** Half-written records of runs that died (writeAtomic's `FILE.PID.HEX.tmp`) beside the refs, EROFS records and sizes. */
  async staleRecordTemps(): Promise<string[]> {
    const stale: string[] = [];
    for (const dir of ['refs', 'erofs', 'sizes'].map((d) => join(this.imagesDir, d))) {
      for (const name of await readdir(dir).catch(() => [] as string[]))
        if (isDead(/\.(\d+)\.[0-9a-f]+\.tmp$/.exec(name)?.[1])) stale.push(join(dir, name));
    }
    return stale;
  }

  /** A fresh directory under STATE/tmp, to be renamed into place. */
  async tempDir(prefix: string): Promise<string> {
    const dir = join(this.tmpDir, `${prefix}-${process.pid}-${randomHex(4)}`);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return dir;
  }

  /** Move a finished temporary entry into place; if another process won the race, keep theirs (false). */
  async commit(tempPath: string, finalPath: string): Promise<boolean> {
    await mkdir(join(finalPath, '..'), { recursive: true });
    try {
      await rename(tempPath, finalPath);
      return true;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw error;
      await rm(tempPath, { recursive: true, force: true });
      return false;
    }
  }

  /**
   * Move a finished rootfs into place with its size record: the entry count that
   * `build-cell store verify` checks a rootfs against (a half-removed one has lost entries).
   */
  async commitRootfs(tempPath: string, arch: ArchInfo, digest: string): Promise<void> {
    const usage = diskUsage(tempPath);
    const { ino } = statSync(tempPath);
    if (await this.commit(tempPath, this.rootfsDir(arch, digest)))
      await this.writeSize('rootfs', this.entryName(arch, digest), { ino, made: usage.entries, ...usageToJson(usage) });
  }

  async readSize(part: EntryPart, entry: string): Promise<SizeRecord | undefined> {
    return readJson<SizeRecord>(this.sizeFile(part, entry));
  }

  async writeSize(part: EntryPart, entry: string, record: SizeRecord): Promise<void> {
    await writeAtomic(this.sizeFile(part, entry), JSON.stringify(record));
  }

  /** An image's files gained hard links (a derived image was made from it): its usage is counted again. */
  async staleSizes(arch: ArchInfo, digest: string): Promise<void> {
    const entry = this.entryName(arch, digest);
    for (const part of ['layout', 'rootfs'] as const) {
      const record = await this.readSize(part, entry);
      if (record && !record.stale) await this.writeSize(part, entry, { ...record, stale: true });
    }
  }
}

/** A PID (from a temporary's name) whose process is gone. */
function isDead(pid: string | undefined): boolean {
  return !!pid && !ownerIsAlive({ pid: Number(pid) });
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
