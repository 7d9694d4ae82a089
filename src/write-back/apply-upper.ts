/**
 * Apply an overlay upper layer (what a cell changed) to the host directory that was its lower
 * layer: caches synced back, the workspace written back. Costs what the cell changed: only the
 * upper is walked, and for each directory in it, the names of the host and view directories.
 *
 * The host directory may hold symlinks that the user or a hostile build planted, and the upper
 * may turn any name into a symlink or a directory: this walk never follows a symlink on the
 * host. Every directory it creates entries in or descends into was checked by it with lstat to
 * be a real directory (or made by it with mkdir, which never follows); every entry is made at
 * a fresh temporary name (O_EXCL, never an existing entry) and renamed into place, and rename
 * and rm replace or remove a symlink itself, never its target.
 */
import { constants, createReadStream, type Stats } from 'node:fs';
import {
  chmod,
  copyFile,
  lchown,
  link,
  lstat,
  lutimes,
  mkdir,
  open,
  readdir,
  readlink,
  rename,
  rm,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { CellSetupError } from '../util/errors.js';
import { randomHex } from '../util/random.js';
import type { Owner } from '../util/fs.js';

export interface ApplyOptions {
  /**
   * Owner of everything created or replaced on the host (the user behind sudo); undefined:
   * the upper entry's owner where this process may set it (as `cp -a` does), else its own.
   */
  owner?: Owner;
  /** Called for each entry that is not applied (fifo, socket, device node other than a whiteout), with its path relative to the root. */
  onSkipped?: (rel: string, kind: 'fifo' | 'socket' | 'device') => void;
  /** What the caller does, for error messages: `cannot WHAT /host/path: ...` ('sync the cache back to', 'write back'). */
  what?: string;
  /**
   * Entries (paths relative to the root) left as the host has them, neither applied nor
   * deleted: build-cell's own, such as mount points it made, and what the caller protects.
   */
  skip?: (rel: string) => boolean;
}

export interface ApplyCounts {
  /** Files, symlinks and directories created or replaced. */
  written: number;
  /** Host entries removed (whiteouts, names a changed directory no longer shows). */
  deleted: number;
  /** Fifos, sockets and device nodes, never created on the host. */
  skipped: number;
}

/**
 * Apply `upper` (an overlay upper dir) onto `host` (the dir that was its lower layer), using
 * `view` (the live merged view of the overlay, i.e. the cell's mount) to see which names a
 * changed directory still shows (names in host but not in view were deleted, which also
 * covers overlay opaque directories and whiteouts).
 */
export async function applyUpper(
  upper: string,
  view: string,
  host: string,
  options: ApplyOptions = {},
): Promise<ApplyCounts> {
  const walk = new Walk(options);
  const info = await lstat(host).catch((error: unknown) => {
    throw walk.failure(host, error);
  });
  if (!info.isDirectory())
    throw new CellSetupError(
      `cannot ${walk.what} ${host}: it is not a directory${info.isSymbolicLink() ? ' but a symlink' : ''}`,
    );
  // The root's own mode, owner and times are the host's: the upper's root is the engine's mkdir.
  await walk.children(upper, view, host, '', false);
  return walk.counts;
}

/** An overlayfs whiteout: a character device 0/0 in an upper layer. */
export function isWhiteout(info: Stats): boolean {
  return info.isCharacterDevice() && info.rdev === 0;
}

class Walk {
  readonly counts: ApplyCounts = { written: 0, deleted: 0, skipped: 0 };
  readonly what: string;
  /** Upper inode (dev:ino) of a multiply linked file -> its first copy on the host. */
  private readonly copies = new Map<string, string>();
  // Temp names: short (the destination's name may be 255 bytes long), unguessable, one random read per walk.
  private readonly prefix = `.build-cell-${process.pid}-${randomHex(4)}`;
  private serial = 0;

  constructor(private readonly options: ApplyOptions) {
    this.what = options.what ?? "apply the cell's changes to";
  }

  /** Apply upper dir `from` into host dir `to`, a real directory (checked or made by this walk). */
  async children(from: string, seen: string, to: string, rel: string, fresh: boolean): Promise<void> {
    if (!fresh) await this.prune(seen, to, rel);
    const names = await readdir(from).catch((error: unknown) => {
      throw this.failure(to, error);
    });
    for (const name of names) {
      const child = rel ? `${rel}/${name}` : name;
      if (!this.options.skip?.(child)) await this.entry(join(from, name), join(seen, name), join(to, name), child);
    }
  }

  /** Delete what the cell no longer sees in `to` (deleted names, whiteouts, an opaque directory's old contents). */
  private async prune(seen: string, to: string, rel: string): Promise<void> {
    const visible = new Set(
      await readdir(seen).catch((error: unknown) => {
        throw this.failure(to, error, `the cell's view ${seen}: `);
      }),
    );
    const present = await readdir(to).catch((error: unknown) => {
      throw this.failure(to, error);
    });
    for (const name of present) {
      if (visible.has(name) || this.options.skip?.(rel ? `${rel}/${name}` : name)) continue;
      await this.remove(join(to, name));
    }
  }

  private async entry(from: string, seen: string, to: string, rel: string): Promise<void> {
    try {
      const info = await lstat(from);
      if (isWhiteout(info)) {
        // Usually gone already (a whited-out name is not in the view): this covers a view that shows it anyway.
        if (await lstatIfAny(to)) await this.remove(to);
      } else if (info.isDirectory()) {
        await this.directory(from, seen, to, rel, info);
      } else if (info.isFile()) {
        await this.file(from, to, info);
      } else if (info.isSymbolicLink()) {
        // Bytes as they are: a target is never resolved, wherever it points (/etc is fine, it is just a link).
        const target = await readlink(from, { encoding: 'buffer' });
        await this.put(
          to,
          (temp) => symlink(target, temp),
          (temp) => this.settle(temp, info),
        );
      } else {
        this.counts.skipped++;
        this.options.onSkipped?.(rel, info.isFIFO() ? 'fifo' : info.isSocket() ? 'socket' : 'device');
      }
    } catch (error) {
      throw this.failure(to, error);
    }
  }

  private async directory(from: string, seen: string, to: string, rel: string, info: Stats): Promise<void> {
    const existing = await lstatIfAny(to);
    const fresh = !existing?.isDirectory();
    if (fresh) {
      // A file or a symlink (to anywhere) in its place is removed, never descended into. mkdir
      // never follows either: an entry that appeared meanwhile fails it (EEXIST).
      if (existing) await rm(to, { force: true });
      await mkdir(to, { mode: 0o700 });
      this.counts.written++;
    }
    await this.children(from, seen, to, rel, fresh);
    // After the children: they change its mtime, and a read-only mode would have stopped them.
    await this.settle(to, info, info.mode & 0o7777);
  }

  private async file(from: string, to: string, info: Stats): Promise<void> {
    const key = info.nlink > 1 ? `${info.dev}:${info.ino}` : undefined;
    const first = key === undefined ? undefined : this.copies.get(key);
    if (first !== undefined) {
      // Another name of an inode already copied: one inode on the host too (unless a mount
      // point of the host lies between the two names: EXDEV, a copy of its own then).
      const linked = await this.put(
        to,
        (t) => link(first, t),
        async () => {},
      ).catch((error: unknown) => {
        if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
      });
      // rename does nothing when both names are already links of one inode (a second run).
      if (linked !== undefined) {
        await rm(linked, { force: true });
        return;
      }
    }
    await this.put(
      to,
      (temp) => copyContent(from, temp, info.mode),
      (temp) => this.settle(temp, info, info.mode & 0o1777),
    );
    if (key !== undefined) this.copies.set(key, to);
  }

  /**
   * Make an entry at a fresh temp name next to `to` (`create` leaves nothing behind if it
   * fails), settle it, and rename it over `to`. Returns the temp name.
   */
  private async put(
    to: string,
    create: (temp: string) => Promise<void>,
    settle: (temp: string) => Promise<void>,
  ): Promise<string> {
    const temp = join(dirname(to), `${this.prefix}${(this.serial++).toString(16)}.tmp`);
    await create(temp);
    try {
      await settle(temp);
      await replace(temp, to);
    } catch (error) {
      await rm(temp, { force: true }).catch(() => undefined);
      throw error;
    }
    this.counts.written++;
    return temp;
  }

  /** Owner, then mode (chown clears setuid bits; the mode is set as given), then times. */
  private async settle(path: string, info: Stats, mode?: number): Promise<void> {
    const owner = this.options.owner;
    if (owner) await lchown(path, owner.uid, owner.gid);
    else {
      await lchown(path, info.uid, info.gid).catch((error: unknown) => {
        // Not ours to give away (not root): kept as created, as cp -a does.
        if ((error as NodeJS.ErrnoException).code !== 'EPERM') throw error;
      });
    }
    if (mode !== undefined) await chmod(path, mode);
    await lutimes(path, info.atimeMs / 1000, info.mtimeMs / 1000);
  }

  /** rm never follows a symlink: a link to a directory is unlinked, its target left alone. */
  private async remove(path: string): Promise<void> {
    await rm(path, { recursive: true, force: true }).catch((error: unknown) => {
      throw this.failure(path, error, 'delete: ');
    });
    this.counts.deleted++;
  }

  failure(path: string, error: unknown, context = ''): CellSetupError {
    if (error instanceof CellSetupError) return error;
    return new CellSetupError(`cannot ${this.what} ${path}: ${context}${reason(error)}`);
  }
}

/**
 * Copy a file's content to `temp`, a new name (O_EXCL: never an existing entry, never through a
 * symlink). If it fails, `temp` does not exist (or is not ours: EEXIST).
 */
async function copyContent(from: string, temp: string, mode: number): Promise<void> {
  if (!(mode & 0o6000)) {
    // A reflink where the filesystem has them; libuv removes its partial copy on failure.
    await copyFile(from, temp, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE);
    return;
  }
  // copyFile creates the copy with the source's mode: a setuid file would be a setuid-root file
  // in a directory the host's users can see until the chmod. Such (rare) files are copied by
  // hand into an owner-only file.
  const out = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    await writeFile(out, createReadStream(from));
    await out.close();
  } catch (error) {
    await out.close().catch(() => undefined);
    await rm(temp, { force: true });
    throw error;
  }
}

/** rename replaces a file or symlink atomically, not a directory: one the cell replaced is removed first. */
async function replace(temp: string, to: string): Promise<void> {
  try {
    await rename(temp, to);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EISDIR') throw error;
    await rm(to, { recursive: true, force: true });
    await rename(temp, to);
  }
}

async function lstatIfAny(path: string): Promise<Stats | undefined> {
  try {
    return await lstat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * "Description (CODE, syscall)", the description as strerror(3) words it: Node's own message
 * also names the paths, temp names among them.
 */
function reason(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const { code, syscall } = error as NodeJS.ErrnoException;
  const match = code ? new RegExp(`^${code}: (.*?)(?:, ${syscall ?? ''}.*)?$`, 's').exec(error.message) : undefined;
  if (!match) return error.message;
  const text = match[1]!;
  return `${text.charAt(0).toUpperCase()}${text.slice(1)} (${[code, syscall].filter(Boolean).join(', ')})`;
}
