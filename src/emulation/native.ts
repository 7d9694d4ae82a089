/**
 * Native is native: whether a guest architecture runs on this host's CPU without qemu.
 *
 * - The same architecture always does (an arm64 cell on an arm64 runner never uses qemu).
 * - i386 on amd64: the x86-64 kernel runs 32-bit x86 binaries (IA32 emulation, on in every
 *   distribution kernel).
 * - armhf (arm/v7) on arm64 only where the CPU has AArch32 at EL0 and the kernel supports it
 *   (CONFIG_COMPAT): many arm64 server cores (Neoverse V1/N2, Ampere Altra's successors,
 *   Apple M, Graviton 3 and later) have no AArch32. Detected, not assumed: arm64 Linux
 *   refuses personality(PER_LINUX32) exactly when 32-bit EL0 is unsupported
 *   (arch/arm64/kernel/sys.c, system_supports_32bit_el0()), so `setarch linux32 true`
 *   succeeds only where an armhf binary would run natively.
 */
import { spawnSync } from 'node:child_process';
import { hostArch, type ArchInfo } from './arch.js';
import { which } from '../util/which.js';

export interface HostCpu {
  arch: ArchInfo;
  /** Whether 32-bit arm binaries run natively (only asked on arm64 hosts). */
  aarch32: () => boolean;
}

/** Whether `guest` needs qemu on `host` (pure given the host's answers; unit-tested with fakes). */
export function needsEmulationOn(host: HostCpu, guest: ArchInfo): boolean {
  if (host.arch.name === guest.name) return false;
  if (host.arch.name === 'amd64' && guest.name === '386') return false;
  if (host.arch.name === 'arm64' && guest.name === 'arm') return !host.aarch32();
  return true;
}

let aarch32Answer: boolean | undefined;

/** This host's AArch32 support, probed once per process (arm64 hosts only). */
export function probeAarch32(run: (cmd: string, args: string[]) => number | null = spawnStatus): boolean {
  if (aarch32Answer === undefined) {
    const setarch = which('setarch');
    aarch32Answer = !!setarch && run(setarch, ['linux32', 'true']) === 0;
  }
  return aarch32Answer;
}

function spawnStatus(cmd: string, args: string[]): number | null {
  return spawnSync(cmd, args, { stdio: 'ignore', timeout: 10_000 }).status;
}

export function thisHost(): HostCpu {
  return { arch: hostArch(), aarch32: () => probeAarch32() };
}

/** The personality a natively run 32-bit guest gets on a 64-bit host (its `uname -m`), if any. */
export function nativePersonality(guest: ArchInfo, host: ArchInfo = hostArch()): 'linux32' | undefined {
  return (host.name === 'amd64' && guest.name === '386') || (host.name === 'arm64' && guest.name === 'arm')
    ? 'linux32'
    : undefined;
}

/** Whether `guest` needs qemu on this host. */
export function needsEmulation(guest: ArchInfo, host: HostCpu = thisHost()): boolean {
  return needsEmulationOn(host, guest);
}
