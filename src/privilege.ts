/**
 * How build-cell gets the privileges a cell needs (namespaces, mounts):
 *   root      already root;
 *   rootless  an unprivileged user namespace (`unshare --user --map-root-user`): no sudo anywhere;
 *   sudo      the engine re-runs itself through `sudo -n` (never prompting).
 * `auto` picks root when root, then rootless when user namespaces work, then sudo. Probes are
 * cached for the process and cost a few milliseconds. A failure says exactly why, with the fix.
 */
import { lazyChildProcess } from './util/builtins.js';
import { readFileSync } from 'node:fs';
import { CellSetupError } from './util/errors.js';
import { which } from './util/which.js';

export const PRIVILEGES = ['auto', 'root', 'sudo', 'rootless'] as const;
export type Privilege = (typeof PRIVILEGES)[number];
export type Mode = 'root' | 'sudo' | 'rootless';

export interface ProbeResult {
  ok: boolean;
  why?: string;
}

/** The kernel settings that decide whether unprivileged user namespaces work. */
export interface UsernsSysctls {
  /** kernel.apparmor_restrict_unprivileged_userns (Ubuntu 23.10+). */
  apparmorRestrict?: string;
  /** kernel.unprivileged_userns_clone (Debian's and some distributions' patch). */
  unprivilegedClone?: string;
  /** user.max_user_namespaces. */
  maxUserNamespaces?: string;
}

function readSysctl(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

export function readUsernsSysctls(): UsernsSysctls {
  return {
    apparmorRestrict: readSysctl('/proc/sys/kernel/apparmor_restrict_unprivileged_userns'),
    unprivilegedClone: readSysctl('/proc/sys/kernel/unprivileged_userns_clone'),
    maxUserNamespaces: readSysctl('/proc/sys/user/max_user_namespaces'),
  };
}

/**
 * Why user namespaces do not work, from the sysctls and the result of a real `unshare`
 * attempt. Pure, so each failure's message is unit-tested.
 */
export function diagnoseUserns(sysctls: UsernsSysctls, attempt: { ok: boolean; stderr?: string; missing?: boolean }): ProbeResult {
  if (attempt.ok) return { ok: true };
  if (attempt.missing) return { ok: false, why: 'unshare (util-linux) is not installed' };
  if (sysctls.apparmorRestrict === '1') {
    return { ok: false, why: 'AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns=1, as on Ubuntu 24.04); lift it with: sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0' };
  }
  if (sysctls.unprivilegedClone === '0') {
    return { ok: false, why: 'unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone=0); enable them with: sudo sysctl -w kernel.unprivileged_userns_clone=1' };
  }
  if (sysctls.maxUserNamespaces === '0') {
    return { ok: false, why: 'user namespaces are disabled (user.max_user_namespaces=0); enable them with: sudo sysctl -w user.max_user_namespaces=15000' };
  }
  return { ok: false, why: `unprivileged user namespaces do not work here: unshare --user --map-root-user failed: ${(attempt.stderr ?? '').trim() || 'no message'}` };
}

let usernsProbe: ProbeResult | undefined;
let sudoProbe: ProbeResult | undefined;

/** Can this user create a user namespace with mount and PID namespaces, as a cell needs? */
export function probeUserns(): ProbeResult {
  if (!usernsProbe) {
    const unshare = which('unshare');
    const result = unshare ? lazyChildProcess().spawnSync(unshare, ['--user', '--map-root-user', '--mount', '--pid', '--fork', '--', 'true'], { encoding: 'utf8', timeout: 10_000 }) : undefined;
    usernsProbe = diagnoseUserns(readUsernsSysctls(), { ok: result?.status === 0, stderr: result?.stderr, missing: !unshare });
  }
  return usernsProbe;
}

/** `sudo -n true`, once per process. */
export function probeSudo(): ProbeResult {
  if (!sudoProbe) {
    const result = lazyChildProcess().spawnSync('sudo', ['-n', 'true'], { encoding: 'utf8', timeout: 10_000 });
    if (result.error) sudoProbe = { ok: false, why: `sudo is not available (${result.error.message})` };
    else if (result.status !== 0) sudoProbe = { ok: false, why: `sudo -n refused: ${(result.stderr || '').trim() || `exit ${result.status}`} (sudo needs a password, or this user may not use it)` };
    else sudoProbe = { ok: true };
  }
  return sudoProbe;
}

export function chooseMode(privilege: Privilege, uid: number, field = '--privilege'): Mode {
  if (privilege === 'root') {
    if (uid !== 0) throw new CellSetupError(`${field} root: build-cell is not running as root (uid ${uid})`);
    return 'root';
  }
  if (privilege === 'rootless') {
    const userns = probeUserns();
    if (!userns.ok) throw new CellSetupError(`${field} rootless: ${userns.why}`);
    return 'rootless';
  }
  if (uid === 0) return 'root';
  if (privilege === 'sudo') {
    const sudo = probeSudo();
    if (!sudo.ok) throw new CellSetupError(`${field} sudo: ${sudo.why}`);
    return 'sudo';
  }
  const userns = probeUserns();
  if (userns.ok) return 'rootless';
  const sudo = probeSudo();
  if (sudo.ok) return 'sudo';
  throw new CellSetupError(`build-cell needs root, user namespaces or passwordless sudo, and has none: rootless: ${userns.why}; sudo: ${sudo.why}`);
}
