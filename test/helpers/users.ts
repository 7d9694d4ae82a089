/** Throwaway Unix users for the tests that run build-cell as someone other than root. */
import { execFileSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';

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
