/**
 * Which images of the store are in use, and when each was last used: what `build-cell store`
 * (src/store/) needs to remove the least recently used first and never an image in use.
 *
 *   STATE/images/used/ENTRY                  touched on every use: its mtime is the last use
 *   STATE/images/holds/ENTRY/cell-PID-START  a running engine process uses it, until it ends
 *   STATE/images/holds/ENTRY/session-DIR     a session's root layer is over it, while the layer
 *                                            (the path the file holds) exists
 *
 * With a prune (src/store/remove.ts): a user writes its hold first and only then looks at the
 * image and its lock; a prune takes the image's lock and only then reads the holds. So either
 * the prune sees the hold and keeps the image, or the user sees the lock and takes the locked
 * path (image/prepare.ts), which waits for it and finds the image whole or prepares it again.
 * A cell never sees a half-removed image.
 */
// Synchronous: a few µs of metadata on the warm path, no promise round trips.
import {
  closeSync,
  existsSync,
  openSync,
  unlinkSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { ownerIsAlive, processStartTime } from '../util/lock.js';
import type { Store, UseRecorder } from './store.js';

/** Who holds an image now. */
export type Holder = { kind: 'cell'; pid: number; start: string } | { kind: 'session'; dir: string };

/** The engine's: every image a run uses is held by its process, and by its session if it has one. */
export class ImageHolds implements UseRecorder {
  private readonly mine: string[] = [];
  private readonly self = `cell-${process.pid}-${processStartTime(process.pid) ?? 0}`;

  /** `sessionLayer`: the session's root layer dir, whose existence keeps its hold alive. */
  constructor(private readonly sessionLayer?: string) {}

  use(store: Store, entry: string): void {
    const holds = store.holdsDir(entry);
    const file = join(holds, this.self);
    if (!this.mine.includes(file)) {
      writeHold(holds, this.self, '');
      this.mine.push(file);
    }
    if (this.sessionLayer) writeHold(holds, `session-${basename(this.sessionLayer)}`, this.sessionLayer);
    markUsed(store, entry);
  }

  /** The images this process holds (their entry names). */
  entries(): string[] {
    return this.mine.map((file) => basename(dirname(file)));
  }

  /** This process's holds go (a session's stays while its layer exists). */
  release(): void {
    for (const file of this.mine.splice(0)) {
      try {
        unlinkSync(file);
      } catch {
        // Removed already (a prune takes dead holds; this one was not).
      }
    }
  }
}

function writeHold(dir: string, name: string, content: string): void {
  // The dir may vanish between mkdir and write (a prune removes an empty one): try again.
  for (let attempt = 0; ; attempt++) {
    try {
      if (content) writeFileSync(join(dir, name), content);
      else closeSync(openSync(join(dir, name), 'w'));
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || attempt > 3) throw error;
      mkdirSync(dir, { recursive: true });
    }
  }
}

function markUsed(store: Store, entry: string): void {
  const file = store.usedFile(entry);
  const now = Date.now() / 1000;
  try {
    utimesSync(file, now, now);
  } catch {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, '');
  }
}

/**
 * The live holders of an image; the dead holds (a killed run, a removed session layer) are
 * removed on the way, and so is the holds dir when nothing is left in it.
 */
export function liveHolders(store: Store, entry: string): Holder[] {
  const dir = store.holdsDir(entry);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const live: Holder[] = [];
  for (const name of names) {
    const holder = readHolder(dir, name);
    if (holder && isAlive(holder)) live.push(holder);
    else rmSync(join(dir, name), { force: true });
  }
  if (!live.length) removeEmptyDir(dir);
  return live;
}

function readHolder(dir: string, name: string): Holder | undefined {
  const cell = /^cell-(\d+)-(\d+)$/.exec(name);
  if (cell) return { kind: 'cell', pid: Number(cell[1]), start: cell[2]! };
  if (!name.startsWith('session-')) return undefined;
  try {
    return { kind: 'session', dir: readFileSync(join(dir, name), 'utf8') };
  } catch {
    return undefined;
  }
}

function isAlive(holder: Holder): boolean {
  if (holder.kind === 'session') return !!holder.dir && existsSync(holder.dir);
  return ownerIsAlive(holder);
}

/** rmdir, never recursive: a hold written meanwhile keeps the dir. */
function removeEmptyDir(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    // Not empty, or gone already.
  }
}

/** When the image was last used (ms): its mark, or, for an image never marked, when it was made. */
export function lastUsed(store: Store, entry: string, madeMs: number): number {
  try {
    return Math.max(lstatSync(store.usedFile(entry)).mtimeMs, madeMs);
  } catch {
    return madeMs;
  }
}

/** The mark of a removed image. */
export function forgetUse(store: Store, entry: string): void {
  rmSync(store.usedFile(entry), { force: true });
}
