/**
 * What a cell of a foreign architecture needs, decided before anything touches the host: the
 * qemu binary, how its binfmt_misc rule is registered, and the CPU model (set as QEMU_CPU in
 * the command's environment, which qemu reads, and which every emulated child inherits).
 */
import { closeSync, copyFileSync, openSync, readSync, writeSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { mergeEnv } from '../cellspec/env.js';
import { CellSetupError } from '../util/errors.js';
import type { ArchInfo } from './arch.js';
import { binfmtMode, findQemu, ruleMatches } from './binfmt.js';
import { checkQemuCpu, chooseQemuCpu, describeQemuCpu, type QemuCpuChoice } from './cpu.js';
import { decideEmulation, type EmulationDecision, type EmulationMode } from './native.js';

export const QEMU_CPU_FIELD = 'qemu-cpu';

/** How one cell of a foreign (or forced) architecture runs under qemu. */
export interface Emulation {
  arch: ArchInfo;
  /** Host path of the qemu-*-static binary. */
  qemuPath: string;
  /** private: a binfmt_misc instance in the cell's own user namespace; global: a uniquely named host rule, removed afterwards. */
  binfmt: 'private' | 'global';
  ruleName: string;
  /**
   * qemu is itself an ELF of the guest's architecture (emulation: qemu of the host's own):
   * the rule would match qemu and the kernel would loop (ELOOP). The cell then gets a copy
   * of qemu that the rule does not match (see unmatchedQemuCopy).
   */
  selfMatching?: boolean;
}

/** What the caller chose: native or qemu, which qemu binary, which CPU model. */
export interface EmulationOptions {
  mode?: EmulationMode;
  /** The qemu-ARCH-static to use (resolved by the caller: --qemu, the action's tools); else PATH. */
  qemuPath?: string;
  qemuCpu?: string;
}

export interface EmulationSetup {
  emulation: Emulation;
  cpu: QemuCpuChoice;
  decision: EmulationDecision;
  /** The command's environment with QEMU_CPU added (unless the env set its own). */
  env: Array<[string, string]>;
}

const qemuFor = (guest: ArchInfo, options: EmulationOptions) => options.qemuPath ?? findQemu(guest);

/**
 * Checked before the image is pulled or unpacked: an emulated guest has its qemu (else an
 * error that says how to get it), and qemu accepts the asked-for CPU model.
 */
export async function checkEmulation(guest: ArchInfo, options: EmulationOptions): Promise<void> {
  if (!decideEmulation(guest, options.mode).emulated) return;
  const qemu = qemuFor(guest, options);
  if (options.qemuCpu) await checkQemuCpu(options.qemuCpu, qemu, guest, QEMU_CPU_FIELD);
}

/**
 * The emulation of one cell, or undefined when `guest` runs natively here. `userEnv` is the
 * env the user gave (its QEMU_CPU wins over everything); `env` the cell's whole environment
 * (an image's own QEMU_CPU in it yields to the option and the default).
 */
export function emulationFor(
  guest: ArchInfo,
  cellId: string,
  rootless: boolean,
  options: EmulationOptions,
  userEnv: ReadonlyArray<readonly [string, string]>,
  env: ReadonlyArray<readonly [string, string]>,
): EmulationSetup | undefined {
  const decision = decideEmulation(guest, options.mode);
  if (!decision.emulated) return undefined;
  const qemuPath = qemuFor(guest, options);
  const emulation: Emulation = {
    arch: guest,
    qemuPath,
    binfmt: binfmtMode(),
    ruleName: `build-cell-${guest.name}-${cellId}`,
    ...(ruleMatches(guest, readHeader(qemuPath)) ? { selfMatching: true } : {}),
  };
  checkBinfmtScope(emulation, rootless);
  const cpu = chooseQemuCpu(guest, options.qemuCpu, userEnv);
  const withCpu =
    cpu.source === 'option' || cpu.source === 'default'
      ? mergeEnv(env, [['QEMU_CPU', cpu.model!]])
      : ([...env] as Array<[string, string]>);
  return { emulation, cpu, decision, env: withCpu };
}

function checkBinfmtScope(emulation: Emulation, rootless: boolean): void {
  if (emulation.binfmt !== 'global') return;
  if (rootless)
    throw new CellSetupError(
      `running ${emulation.arch.name} code without root needs a binfmt_misc instance of the cell's own, which Linux offers from 6.7 on (this kernel: ${release()}); run as root or through sudo instead`,
    );
  // A global rule for the host's own ELF kind would send every program on the host through qemu.
  if (emulation.selfMatching)
    throw new CellSetupError(
      `emulation: qemu for ${emulation.arch.name}, the host's own architecture, needs a binfmt_misc instance of the cell's own, which Linux offers from 6.7 on (this kernel: ${release()}): use emulation auto here`,
    );
}

/** The first bytes of an ELF file: what binfmt_misc matches a rule against. */
function readHeader(path: string): Buffer {
  const header = Buffer.alloc(128);
  const fd = openSync(path, 'r');
  try {
    return header.subarray(0, readSync(fd, header, 0, header.length, 0));
  } finally {
    closeSync(fd);
  }
}

/**
 * A copy of `qemuPath` in `dir` that its own rule does not match: one byte of EI_PAD (ELF
 * header byte 9, reserved, ignored by the kernel's ELF loader and by qemu) set to 1, where
 * every rule's mask demands 0. Every program of the guest still matches; qemu runs natively.
 */
export function unmatchedQemuCopy(emulation: Emulation, dir: string): string {
  const copy = join(dir, `qemu-${process.pid}`);
  copyFileSync(emulation.qemuPath, copy);
  const fd = openSync(copy, 'r+');
  try {
    writeSync(fd, Buffer.from([1]), 0, 1, 9);
  } finally {
    closeSync(fd);
  }
  if (ruleMatches(emulation.arch, readHeader(copy)))
    throw new CellSetupError(
      `a copy of ${emulation.qemuPath} with EI_PAD set still matches the ${emulation.arch.name} rule`,
    );
  return copy;
}

/** One line for logs and summaries: "qemu-aarch64-static, CPU neoverse-n1 (...)". */
export function describeEmulation(setup: Pick<EmulationSetup, 'emulation' | 'cpu'>): string {
  return `${setup.emulation.qemuPath}, CPU ${describeQemuCpu(setup.cpu)}`;
}
