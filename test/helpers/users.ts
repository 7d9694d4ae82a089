/** Throwaway Unix users for the tests that run build-cell as someone other than root. */
import { execFileSync } from 'node:child_process';
import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll } from 'vitest';
import { removeDir, tempDir } from './cli.js';

export function uidOf(user: string): number {
  return Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
}

/** Create `name` (home `home`), with passwordless sudo when asked. Returns its uid. */
export function createUser(name: string, home: string, options: { sudo?: boolean } = {}): number {
  execFileSync('useradd', ['--no-create-home', '--home-dir', home, '--shell', '/bin/sh', name], { stdio: 'ignore' });
  if (options.sudo) writeFileSync(`/etc/sudoers.d/${name}`, `${name} ALL=(ALL) NOPASSWD: ALL\n`, { mode: 0o440 });
  return uidOf(name);
}

export function removeUser(name: string): void {
  rmSync(`/etc/sudoers.d/${name}`, { force: true });
  try {
    execFileSync('userdel', [name], { stdio: 'ignore' });
  } catch {
    // already gone
  }
}

/**
 * A copy of an OCI layout that `user` can read (a fresh clone's fixtures may not be
 * world-readable): the unprivileged tests run skopeo as that user.
 */
export function layoutForUser(layout: string, dir: string, user: string): string {
  const copy = `${dir}/layout`;
  execFileSync('cp', ['-a', layout, copy]);
  execFileSync('chown', ['-R', `${user}:`, copy]);
  return copy;
}

/**
 * For a describe block: a user with passwordless sudo and one without, sharing a home dir
 * (mode 0755), created before its tests and removed after. Returns the names and the home.
 */
export function sudoAndPlainUsers(prefix: string): { sudoUser: string; plainUser: string; home: () => string } {
  const sudoUser = `${prefix}-sudo`;
  const plainUser = `${prefix}-rl`;
  let home = '';
  beforeAll(() => {
    home = tempDir(`${prefix}-home-`);
    chmodSync(home, 0o755);
    createUser(sudoUser, home, { sudo: true });
    createUser(plainUser, home);
  });
  afterAll(async () => {
    removeUser(sudoUser);
    removeUser(plainUser);
    await removeDir(home);
  });
  return { sudoUser, plainUser, home: () => home };
}
