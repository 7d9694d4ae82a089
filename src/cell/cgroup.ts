/**
 * The process-count limit. RLIMIT_NPROC is never enforced for root (the kernel exempts
 * uid 0), so when the cell runs as root the limit is also enforced with a pids cgroup that
 * the cell joins. The cgroup is removed after the run; ones left by killed runs are removed
 * by the next run.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ownerIsAlive } from '../util/lock.js';

const PREFIX = 'build-cell-';

/** The directory under which a pids-limited cgroup can be created, if any. */
export function pidsCgroupRoot(): string | undefined {
  try {
    const v2 = '/sys/fs/cgroup';
    if (
      existsSync(join(v2, 'cgroup.controllers')) &&
      readFileSync(join(v2, 'cgroup.subtree_control'), 'utf8').split(/\s+/).includes('pids')
    )
      return v2;
  } catch {
    // fall through to cgroup v1
  }
  const v1 = '/sys/fs/cgroup/pids';
  return existsSync(join(v1, 'cgroup.procs')) ? v1 : undefined;
}

export async function createPidsCgroup(root: string, id: string, maxProcesses: number): Promise<string> {
  await removeStaleCgroups(root);
  const dir = join(root, `${PREFIX}${process.pid}-${id}`);
  await mkdir(dir);
  // +1: the cell's init (the helper) counts too.
  await writeFile(join(dir, 'pids.max'), String(maxProcesses + 1));
  return dir;
}

export async function removeCgroup(dir: string): Promise<void> {
  // The cell's processes are gone once its PID namespace is; rmdir can still race their exit.
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      await rmdir(dir);
      return;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY') throw error;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

async function removeStaleCgroups(root: string): Promise<void> {
  for (const name of await readdir(root).catch(() => [] as string[])) {
    const match = new RegExp(`^${PREFIX}(\\d+)-`).exec(name);
    if (!match || ownerIsAlive({ pid: Number(match[1]) })) continue;
    const procs = await readFile(join(root, name, 'cgroup.procs'), 'utf8').catch(() => 'x');
    if (procs.trim() === '') await rmdir(join(root, name)).catch(() => undefined);
  }
}
