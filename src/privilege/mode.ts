/**
 * How build-cell gets the privileges a cell needs (namespaces, mounts):
 *   root      already root;
 *   sudo      the engine runs through `sudo -n` (never prompting; ./sudo.ts);
 *   rootless  an unprivileged user namespace: the user mapped to root and, where /etc/subuid
 *             and /etc/subgid give the user a range (and newuidmap/newgidmap exist), that range
 *             mapped to uids and gids 1..N, so chown to other users works (dpkg, adduser).
 * `auto` never picks a mode that cannot run what users run (apt-get install in a Debian cell):
 *   1. root when already root;
 *   2. rootless when it is complete: the subordinate ranges are mapped (dpkg and adduser chown
 *      to system users) and, for a foreign architecture, the kernel gives the cell a binfmt_misc
 *      instance of its own (Linux 6.7+). Nothing runs as host root, and everything the cell
 *      leaves is the user's (and removable with rm -rf);
 *   3. sudo when `sudo -n` works (GitHub-hosted runners): a root cell, complete everywhere;
 *   4. rootless with root alone mapped, with a warning saying what fails and how to lift it.
 * The probes (./userns.ts, ./sudo.ts) are cached for the process and cost a few milliseconds. A failure says exactly why,
 * with the fix.
 */
import { release } from 'node:os';
import { CellSetupError } from '../util/errors.js';
import { probeSudo } from './sudo.js';
import { probeUserns, type ProbeResult, type RootlessIds, type UsernsProbe } from './userns.js';
import type { ArchInfo } from '../emulation/arch.js';
import { needsEmulation, type EmulationMode } from '../emulation/native.js';
import { binfmtMode } from '../emulation/binfmt.js';

export const PRIVILEGES = ['auto', 'root', 'sudo', 'rootless'] as const;
export type Privilege = (typeof PRIVILEGES)[number];
export type Mode = 'root' | 'sudo' | 'rootless';

/** The mode a run uses, and why (for the log, the job summary and --result-file). */
export interface PrivilegeChoice {
  mode: Mode;
  reason: string;
  /** Rootless: the ids the cell maps. */
  ids?: RootlessIds;
}

export interface PrivilegeNeeds {
  /** The cell runs a foreign architecture (rootless needs a private binfmt_misc instance for it). */
  emulated?: boolean;
  /** Whether this kernel gives a user namespace its own binfmt_misc (Linux 6.7+). */
  privateBinfmt?: boolean;
}

/** What a cell of `guest` needs of its mode: whether it emulates, and whether this kernel gives it a private binfmt_misc. */
export function needsOf(guest: ArchInfo, mode?: EmulationMode): PrivilegeNeeds {
  return { emulated: needsEmulation(guest, mode), privateBinfmt: binfmtMode() === 'private' };
}

export interface Probes {
  userns: () => UsernsProbe;
  sudo: () => ProbeResult;
}

const NO_PRIVATE_BINFMT =
  "a foreign architecture without root needs a binfmt_misc instance of the cell's own (Linux 6.7 or later)";

/** The mode and its reason, from the probes (real, or faked by the unit tests). */
export function choosePrivilege(
  privilege: Privilege,
  uid: number,
  field = '--privilege',
  needs: PrivilegeNeeds = {},
  probes: Probes = { userns: probeUserns, sudo: probeSudo },
): PrivilegeChoice {
  const rootless = (reason: string): PrivilegeChoice => {
    const ids = probes.userns().ids!;
    return { mode: 'rootless', reason: `${reason}; ${ids.note}`, ids };
  };
  if (privilege === 'root') {
    if (uid !== 0) throw new CellSetupError(`${field} root: build-cell is not running as root (uid ${uid})`);
    return { mode: 'root', reason: `${field} root` };
  }
  if (privilege === 'rootless') {
    const userns = probes.userns();
    if (!userns.ok) throw new CellSetupError(`${field} rootless: ${userns.why}`);
    // Said before the image is touched, not when the cell would register its handler.
    if (needs.emulated && !needs.privateBinfmt)
      throw new CellSetupError(
        `${field} rootless: ${NO_PRIVATE_BINFMT} (this kernel: ${release()}); run as root or through sudo instead`,
      );
    return rootless(`${field} rootless`);
  }
  if (uid === 0)
    return { mode: 'root', reason: privilege === 'auto' ? 'auto: running as root' : `${field} sudo: already root` };
  if (privilege === 'sudo') {
    const sudo = probes.sudo();
    if (!sudo.ok) throw new CellSetupError(`${field} sudo: ${sudo.why}`);
    return { mode: 'sudo', reason: `${field} sudo` };
  }
  const userns = probes.userns();
  const incomplete = !userns.ok
    ? userns.why!
    : !userns.ids?.uids
      ? userns.ids!.note
      : needs.emulated && !needs.privateBinfmt
        ? NO_PRIVATE_BINFMT
        : undefined;
  if (!incomplete) return rootless('auto: not root; user namespaces work with the subordinate ids mapped');
  const sudo = probes.sudo();
  if (sudo.ok)
    return { mode: 'sudo', reason: `auto: not root; rootless would be incomplete (${incomplete}); sudo -n works` };
  if (userns.ok && !(needs.emulated && !needs.privateBinfmt))
    return rootless(`auto: not root, ${sudo.why}; user namespaces work`);
  throw new CellSetupError(
    `build-cell needs root, passwordless sudo or user namespaces, and has none that can run this cell: rootless: ${incomplete}; sudo: ${sudo.why}`,
  );
}
