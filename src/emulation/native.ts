/**
 * Native or qemu: whether a guest architecture runs on this host's CPU, and why.
 *
 * - The same architecture runs natively (an arm64 cell on an arm64 runner never uses qemu).
 * - The 32-bit sibling of the host's family (i386 on amd64, armhf on arm64) runs natively
 *   only where this kernel executes it: probed by executing a tiny program (./probe32.ts),
 *   once per process. Elsewhere it runs under qemu like any foreign architecture.
 * - Every other architecture runs under qemu.
 * - `emulation: qemu` (--emulation qemu) runs any architecture under qemu, the host's own
 *   included: to test on a CPU model (qemu-cpu), or to reproduce an emulated CI leg.
 */
import { hostArch, type ArchInfo } from './arch.js';
import { executes32, linux32Personality } from './probe32.js';
import { UserError, show } from '../util/errors.js';
import { bootId, cachedFact } from '../util/fact-cache.js';
import { release } from 'node:os';

export type EmulationMode = 'auto' | 'qemu';
export const EMULATION_MODES: readonly EmulationMode[] = ['auto', 'qemu'];

/** The `emulation` input / --emulation flag: auto (default) or qemu. */
export function parseEmulationMode(value: string | undefined, field: string): EmulationMode {
  const mode = (value ?? '').trim() || 'auto';
  if (!(EMULATION_MODES as readonly string[]).includes(mode))
    throw new UserError(
      field,
      `must be auto (native where this host runs the architecture, else qemu) or qemu (always qemu), got ${show(value)}`,
    );
  return mode as EmulationMode;
}

export interface HostCpu {
  arch: ArchInfo;
  /** Whether this kernel runs the host family's 32-bit programs (i386 / armhf) natively; probed. */
  runs32: (guest: ArchInfo) => boolean;
}

export interface EmulationDecision {
  emulated: boolean;
  /** Why, for the log, the job summary and the result file. */
  reason: string;
}

/** Each 64-bit host's 32-bit sibling, and what the reason calls it. */
const SIBLING_32: Readonly<Record<string, { guest: string; label: string }>> = {
  amd64: { guest: '386', label: '32-bit x86' },
  arm64: { guest: 'arm', label: '32-bit Arm (AArch32)' },
};

/** Native or qemu for `guest` on `host` (pure given the host's answers; unit-tested with fakes). */
export function decideEmulationOn(host: HostCpu, guest: ArchInfo, mode: EmulationMode = 'auto'): EmulationDecision {
  if (mode === 'qemu') return { emulated: true, reason: 'emulation: qemu asks for qemu' };
  if (host.arch.name === guest.name) return { emulated: false, reason: "the host's own architecture" };
  const sibling = SIBLING_32[host.arch.name];
  if (sibling?.guest === guest.name) {
    return host.runs32(guest)
      ? { emulated: false, reason: `this kernel runs ${sibling.label} natively` }
      : { emulated: true, reason: `this kernel cannot run ${sibling.label} natively` };
  }
  return { emulated: true, reason: `a foreign architecture on this ${host.arch.name} host` };
}

/**
 * What a 32-bit guest under qemu should know: qemu is a 64-bit process, so ext4 serves it
 * 64-bit directory offsets, which readdir of a program built without large-file support
 * cannot return (EOVERFLOW). undefined for everything else.
 */
export function thirtyTwoBitNote(guest: ArchInfo, decision: EmulationDecision): string | undefined {
  if (!decision.emulated || guest.bits !== 32) return undefined;
  return `${guest.name} is a 32-bit guest under qemu: programs built without large-file support (_FILE_OFFSET_BITS=64) may get EOVERFLOW from readdir on ext4; --tmpfs / the tmpfs input gives them a directory that works (README: 32-bit guests and directory offsets)`;
}

/** "386: emulated (this kernel cannot run 32-bit x86 natively)", or "... native (...)". */
export function describeDecision(guest: ArchInfo, decision: EmulationDecision): string {
  return `${guest.name}: ${decision.emulated ? 'emulated' : 'native'} (${decision.reason})`;
}

const runs32Answers = new Map<string, boolean>();

/**
 * This host's answer for its 32-bit sibling: the probe program executes, and (armhf) the
 * linux32 personality the cell gets is accepted too. Probed once per process and remembered
 * in the state dir until the next boot (the kernel decides it at boot: ia32_emulation=, the CPU).
 */
export function probeRuns32(guest: ArchInfo): boolean {
  let answer = runs32Answers.get(guest.name);
  if (answer === undefined) {
    answer = cachedFact(
      `runs32-${guest.name}`,
      () => `${bootId()} ${release()}`,
      () => executes32(guest.name) && (guest.name !== 'arm' || linux32Personality()),
    );
    runs32Answers.set(guest.name, answer);
  }
  return answer;
}

export function thisHost(): HostCpu {
  return { arch: hostArch(), runs32: probeRuns32 };
}

/** Native or qemu for `guest` on this host. */
export function decideEmulation(guest: ArchInfo, mode: EmulationMode = 'auto'): EmulationDecision {
  return decideEmulationOn(thisHost(), guest, mode);
}

/** Whether `guest` runs under qemu on this host. */
export function needsEmulation(guest: ArchInfo, mode: EmulationMode = 'auto'): boolean {
  return decideEmulation(guest, mode).emulated;
}

/** The personality a natively run 32-bit guest gets on a 64-bit host (its `uname -m`), if any. */
export function nativePersonality(guest: ArchInfo, host: ArchInfo = hostArch()): 'linux32' | undefined {
  return SIBLING_32[host.name]?.guest === guest.name ? 'linux32' : undefined;
}
