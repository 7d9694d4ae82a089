/**
 * A cross-process lock on the state dir: a directory created with mkdir (atomic on every
 * filesystem) holding the owner's PID and start time. A lock whose owner is gone (SIGKILL,
 * crash, reboot) is taken over, so a killed run never blocks the next one.
 */
import { mkdir, readFile, rm, writeFile, stat } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { CellSetupError } from './errors.js';

const POLL_MS = 50;

/** The kernel's start time of `pid`, so a reused PID is not mistaken for the owner. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

export function ownerIsAlive(owner: { pid: number; start?: string }): boolean {
  const start = processStartTime(owner.pid);
  return start !== undefined && (owner.start === undefined || owner.start === start);
}

export async function withLock<T>(
  lockDir: string,
  fn: () => Promise<T>,
  options: { timeoutMs?: number; what?: string } = {},
): Promise<T> {
  const release = await acquireLock(lockDir, options);
  try {
    return await fn();
  } finally {
    await release();
  }
}

export async function acquireLock(
  lockDir: string,
  options: { timeoutMs?: number; what?: string } = {},
): Promise<() => Promise<void>> {
  const deadline = Date.now() + (options.timeoutMs ?? 30 * 60_000);
  const ownerFile = join(lockDir, 'owner');
  const me = { pid: process.pid, start: processStartTime(process.pid) };
  await mkdir(dirname(lockDir), { recursive: true });
  for (;;) {
    try {
      await mkdir(lockDir);
      await writeFile(ownerFile, JSON.stringify(me));
      return async () => {
        await rm(lockDir, { recursive: true, force: true });
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new CellSetupError(`cannot create lock ${lockDir}: ${(error as Error).message}`);
      }
    }
    if (await isStale(lockDir, ownerFile)) {
      await takeOver(lockDir, ownerFile);
      continue;
    }
    if (Date.now() > deadline) {
      throw new LockBusyError(
        `timed out waiting for the lock ${lockDir}${options.what ? ` (${options.what})` : ''}; if no other build-cell is running, remove it`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/** The lock if it is free (or stale) now; undefined when a live owner holds it. */
export async function tryLock(lockDir: string): Promise<(() => Promise<void>) | undefined> {
  try {
    return await acquireLock(lockDir, { timeoutMs: 0 });
  } catch (error) {
    if (error instanceof LockBusyError) return undefined;
    throw error;
  }
}

class LockBusyError extends CellSetupError {}

/** A lock whose owner is gone (or that never got one, and is old): what acquireLock would take over. */
export function lockIsStale(lockDir: string): Promise<boolean> {
  return isStale(lockDir, join(lockDir, 'owner'));
}

/**
 * Remove a stale lock. Two waiters may both see the same dead owner: the takeover itself is
 * exclusive, and the lock is removed only if it still names that dead owner.
 */
async function takeOver(lockDir: string, ownerFile: string): Promise<void> {
  const takeover = `${lockDir}.takeover`;
  try {
    await mkdir(takeover);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    // Someone else is taking over; a takeover dir left by a crash goes after a while.
    const info = await stat(takeover).catch(() => undefined);
    if (info && Date.now() - info.mtimeMs > 10_000) await rm(takeover, { recursive: true, force: true });
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    return;
  }
  try {
    if (await isStale(lockDir, ownerFile)) await rm(lockDir, { recursive: true, force: true });
  } finally {
    await rm(takeover, { recursive: true, force: true });
  }
}

async function isStale(lockDir: string, ownerFile: string): Promise<boolean> {
  try {
    const owner = JSON.parse(await readFile(ownerFile, 'utf8')) as { pid: number; start?: string };
    return !ownerIsAlive(owner);
  } catch {
    // No owner file yet: the owner is between mkdir and writeFile, or died there.
    try {
      const info = await stat(lockDir);
      return Date.now() - info.mtimeMs > 10_000;
    } catch {
      return false;
    }
  }
}
