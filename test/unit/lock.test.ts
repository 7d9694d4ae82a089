import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { acquireLock, ownerIsAlive, withLock } from '../../src/util/lock.js';
import { CellSetupError } from '../../src/util/errors.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A hook run before each fs.rm (default: none), to force an interleaving in one test. */
const hooks = vi.hoisted(() => ({ beforeRm: undefined as undefined | ((path: string) => Promise<void>) }));
vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...actual,
    rm: async (...args: Parameters<typeof actual.rm>) => {
      if (hooks.beforeRm) await hooks.beforeRm(String(args[0]));
      return actual.rm(...args);
    },
  };
});

async function deadPid(): Promise<number> {
  const child = spawn('true', [], { stdio: 'ignore' });
  await new Promise((r) => child.on('exit', r));
  // 'exit' fires after the kernel reaped it (node waits for it): the PID is gone.
  return child.pid!;
}

let dir = '';
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bc-lock-'));
});
afterEach(async () => {
  hooks.beforeRm = undefined;
  await rm(dir, { recursive: true, force: true });
});

describe('withLock', () => {
  it('holds the lock (dir with an owner file) while fn runs and removes it afterwards', async () => {
    const lock = join(dir, 'locks', 'a.lock');
    const value = await withLock(lock, async () => {
      const owner = JSON.parse(await readFile(join(lock, 'owner'), 'utf8')) as { pid: number; start: string };
      expect(owner.pid).toBe(process.pid);
      expect(owner.start).toMatch(/^\d+$/);
      return 42;
    });
    expect(value).toBe(42);
    expect(existsSync(lock)).toBe(false);
  });

  it('releases the lock when fn throws', async () => {
    const lock = join(dir, 'b.lock');
    await expect(
      withLock(lock, async () => {
        throw new Error('inner');
      }),
    ).rejects.toThrow('inner');
    expect(existsSync(lock)).toBe(false);
  });

  it('makes a second acquirer wait until the first releases', async () => {
    const lock = join(dir, 'c.lock');
    const events: string[] = [];
    const release = await acquireLock(lock);
    const second = withLock(
      lock,
      async () => {
        events.push('second');
      },
      { timeoutMs: 5000 },
    );
    await sleep(200);
    expect(events).toEqual([]);
    events.push('released');
    await release();
    await second;
    expect(events).toEqual(['released', 'second']);
  });

  it('takes over a lock whose owner PID is dead', async () => {
    const lock = join(dir, 'd.lock');
    const pid = await deadPid();
    expect(ownerIsAlive({ pid })).toBe(false);
    await mkdir(lock);
    await writeFile(join(lock, 'owner'), JSON.stringify({ pid, start: '1' }));
    const started = Date.now();
    expect(await withLock(lock, async () => 'taken', { timeoutMs: 2000 })).toBe('taken');
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('takes over a lock whose PID was reused (start time differs)', async () => {
    const lock = join(dir, 'e.lock');
    await mkdir(lock);
    await writeFile(join(lock, 'owner'), JSON.stringify({ pid: process.pid, start: 'not-my-start-time' }));
    expect(await withLock(lock, async () => 'taken', { timeoutMs: 2000 })).toBe('taken');
  });

  it('times out with an error naming the lock path and what waited', async () => {
    const lock = join(dir, 'f.lock');
    const release = await acquireLock(lock);
    try {
      const error = await withLock(lock, async () => 'never', { timeoutMs: 150, what: 'preparing busybox' }).catch(
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(CellSetupError);
      expect((error as Error).message).toBe(
        `timed out waiting for the lock ${lock} (preparing busybox); if no other build-cell is running, remove it`,
      );
    } finally {
      await release();
    }
  });

  it('waits on a fresh lock dir without an owner file (the owner is between mkdir and write)', async () => {
    const lock = join(dir, 'g.lock');
    await mkdir(lock);
    const error = await withLock(lock, async () => 'never', { timeoutMs: 150 }).catch((e: unknown) => e);
    expect((error as Error).message).toContain(`timed out waiting for the lock ${lock}`);
    expect(existsSync(lock)).toBe(true);
  });
});

describe('stale lock takeover race', () => {
  // Regression (fixed): src/util/lock.ts:54-56 two waiters that both judged the lock stale both `rm` it: the
  // slower one removes the lock the faster one has just re-created and taken, and both run
  // inside the lock at once (the first one's release() then deletes the second one's lock).
  // The test forces that interleaving by holding back the second waiter's rm. Fix: make the
  // takeover itself exclusive, e.g. `mkdir(lockDir + '.takeover')` (with its own mtime expiry),
  // re-read the owner file inside it and only remove the lock if it still names the same dead
  // owner; or rename the stale dir to a unique name and verify its owner before deleting it.
  it('never lets two waiters that both saw the same dead owner hold the lock together', async () => {
    const lock = join(dir, 'race.lock');
    await mkdir(lock);
    await writeFile(join(lock, 'owner'), JSON.stringify({ pid: await deadPid(), start: '1' }));
    const firstMayGo: Array<() => void> = [];
    let removals = 0;
    hooks.beforeRm = async (path) => {
      if (path !== lock) return;
      removals++;
      if (removals === 1) {
        // The first takeover waits until the second waiter has also decided the lock is stale.
        await Promise.race([new Promise<void>((r) => firstMayGo.push(r)), sleep(1000)]);
      } else if (removals === 2) {
        firstMayGo.forEach((go) => go());
        await sleep(300); // the second takeover is slow: the first one acquires meanwhile
      }
    };
    let inside = 0;
    let maxInside = 0;
    const critical = async () => {
      inside++;
      maxInside = Math.max(maxInside, inside);
      await sleep(600);
      inside--;
    };
    await Promise.all([withLock(lock, critical, { timeoutMs: 5000 }), withLock(lock, critical, { timeoutMs: 5000 })]);
    expect(maxInside).toBe(1);
  });
});

describe('ownerIsAlive', () => {
  it('is true for this process with or without its start time', async () => {
    expect(ownerIsAlive({ pid: process.pid })).toBe(true);
  });
  it('is false for a dead PID', async () => {
    expect(ownerIsAlive({ pid: await deadPid() })).toBe(false);
  });
});
