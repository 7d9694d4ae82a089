/**
 * The rootless mode's probe: can this user create the user namespace (with mount and PID
 * namespaces) a cell needs, with which ids, and if not, why (from the kernel's sysctls).
 * Remembered across runs in the state dir (util/fact-cache.ts).
 */
import type { SpawnSyncReturns } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { release, userInfo } from 'node:os';
import { lazyChildProcess } from '../util/builtins.js';
import { cachedFact } from '../util/fact-cache.js';
import { which } from '../util/which.js';

export interface ProbeResult {
  ok: boolean;
  why?: string;
}

/** A subordinate id range (a line of /etc/subuid or /etc/subgid): ids start..start+count-1. */
export interface SubIdRange {
  start: number;
  count: number;
}

/**
 * The ids of a rootless cell: the user is root; with `uids`/`gids`, the ranges map to 1..count.
 * Without them only root is mapped (`note` says why, and what fails).
 */
export interface RootlessIds {
  uids?: SubIdRange;
  gids?: SubIdRange;
  note: string;
}

export interface UsernsProbe extends ProbeResult {
  ids?: RootlessIds;
}

/** The user's first range in an /etc/subuid-style file (by name or by uid). Pure. */
export function parseSubIds(text: string, user: { name?: string; uid: number }): SubIdRange | undefined {
  for (const line of text.split('\n')) {
    const [owner, start, count] = line.trim().split(':');
    if (!owner || (owner !== user.name && owner !== String(user.uid))) continue;
    const range = { start: Number(start), count: Number(count) };
    if (Number.isSafeInteger(range.start) && range.start > 0 && Number.isSafeInteger(range.count) && range.count > 0)
      return range;
  }
  return undefined;
}

/** unshare's arguments for a rootless cell's user namespace. Pure. */
export function rootlessUnshareArgs(ids: RootlessIds | undefined): string[] {
  return [
    '--user',
    '--map-root-user',
    ...(ids?.uids && ids.gids
      ? [`--map-users=${ids.uids.start},1,${ids.uids.count}`, `--map-groups=${ids.gids.start},1,${ids.gids.count}`]
      : []),
  ];
}

/** The rootless id note for a full mapping. Pure. */
export function describeIds(ids: RootlessIds): string {
  return ids.uids && ids.gids
    ? `uids 1-${ids.uids.count} and gids 1-${ids.gids.count} are mapped to the /etc/subuid and /etc/subgid ranges (starting at ${ids.uids.start} and ${ids.gids.start})`
    : ids.note;
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
export function diagnoseUserns(
  sysctls: UsernsSysctls,
  attempt: { ok: boolean; stderr?: string; missing?: boolean },
): ProbeResult {
  if (attempt.ok) return { ok: true };
  if (attempt.missing) return { ok: false, why: 'unshare (util-linux) is not installed' };
  if (sysctls.apparmorRestrict === '1') {
    return {
      ok: false,
      why: 'AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns=1, as on Ubuntu 24.04); lift it with: sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0',
    };
  }
  if (sysctls.unprivilegedClone === '0') {
    return {
      ok: false,
      why: 'unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone=0); enable them with: sudo sysctl -w kernel.unprivileged_userns_clone=1',
    };
  }
  if (sysctls.maxUserNamespaces === '0') {
    return {
      ok: false,
      why: 'user namespaces are disabled (user.max_user_namespaces=0); enable them with: sudo sysctl -w user.max_user_namespaces=15000',
    };
  }
  return {
    ok: false,
    why: `unprivileged user namespaces do not work here: unshare --user --map-root-user failed: ${(attempt.stderr ?? '').trim() || 'no message'}`,
  };
}

let usernsProbe: UsernsProbe | undefined;

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

const ROOT_ONLY =
  'only root is mapped, so chown to any other user or group fails (dpkg and adduser in some packages need it)';

/**
 * Can this user create a user namespace with mount and PID namespaces, as a cell needs? With
 * a subordinate id range, the probe tries the full mapping first (it checks newuidmap, the
 * ranges and unshare's --map-users, util-linux 2.38+, in one process), then root alone.
 */
/**
 * A successful probe is remembered across runs in STATE/probe-userns.json (util/fact-cache.ts):
 * a warm rootless cell then spawns no probe. Its fingerprint is everything the probe depends
 * on: the uid, the kernel, the sysctls, /etc/subuid and /etc/subgid, the unshare and newuidmap
 * binaries.
 */
function probeFingerprint(): string {
  const stat = (path: string | undefined) => {
    if (!path) return '-';
    try {
      const info = statSync(path);
      return `${info.ino}:${info.size}:${info.mtimeMs}`;
    } catch {
      return '-';
    }
  };
  return JSON.stringify([
    process.getuid?.(),
    release(),
    readUsernsSysctls(),
    ...['/etc/subuid', '/etc/subgid'].map(stat),
    ...['unshare', 'newuidmap', 'newgidmap'].map((t) => stat(which(t))),
  ]);
}

export function probeUserns(): UsernsProbe {
  usernsProbe ??= cachedFact('userns', probeFingerprint, runUsernsProbe, (probe) => probe.ok);
  return usernsProbe;
}

function runUsernsProbe(): UsernsProbe {
  const unshare = which('unshare');
  const attempt = unshare ? tryUserns(unshare) : undefined;
  return {
    ...diagnoseUserns(readUsernsSysctls(), {
      ok: attempt?.result.status === 0,
      stderr: attempt?.result.stderr,
      missing: !unshare,
    }),
    ...(attempt?.result.status === 0 ? { ids: attempt.ids } : {}),
  };
}

type Attempt = SpawnSyncReturns<string>;

/** One unshare with the full subordinate mapping where the user has one, else (or when that fails) root alone. */
function tryUserns(unshare: string): { result: Attempt; ids: RootlessIds } {
  const attempt = (mapArgs: string[]): Attempt =>
    lazyChildProcess().spawnSync(unshare, [...mapArgs, '--mount', '--pid', '--fork', '--', 'true'], {
      encoding: 'utf8',
      timeout: 10_000,
    });
  const uid = process.getuid?.() ?? 0;
  let name: string | undefined;
  try {
    name = userInfo().username;
  } catch {
    name = undefined;
  }
  const uids = parseSubIds(readText('/etc/subuid'), { name, uid });
  const gids = parseSubIds(readText('/etc/subgid'), { name, uid });
  let note = `${ROOT_ONLY}; to lift that, give ${name ?? `uid ${uid}`} a range in /etc/subuid and /etc/subgid (usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${name ?? String(uid)}) and install newuidmap (Debian/Ubuntu: apt-get install uidmap)`;
  if (uids && gids && which('newuidmap') && which('newgidmap')) {
    const full = { uids, gids, note: '' };
    const result = attempt(rootlessUnshareArgs(full));
    if (result.status === 0) return { result, ids: { ...full, note: describeIds(full) } };
    note = `${ROOT_ONLY}: mapping the /etc/subuid range failed (${(result.stderr || '').trim().split('\n').pop() || `exit ${result.status}`}; unshare needs --map-users, util-linux 2.38 or later)`;
  } else if (uids && gids)
    note = `${ROOT_ONLY}: newuidmap and newgidmap are missing (Debian/Ubuntu: apt-get install uidmap)`;
  return { result: attempt(rootlessUnshareArgs(undefined)), ids: { note } };
}
