/**
 * What a cell of a foreign architecture needs, decided before anything touches the host: the
 * qemu binary, how its binfmt_misc rule is registered, and the CPU model (set as QEMU_CPU in
 * the command's environment, which qemu reads, and which every emulated child inherits).
 */
import { release } from 'node:os';
import { mergeEnv } from '../cellspec/env.js';
import { CellSetupError } from '../util/errors.js';
import type { Emulation } from '../cell/plan.js';
import type { ArchInfo } from './arch.js';
import { binfmtMode, findQemu } from './binfmt.js';
import { checkQemuCpu, chooseQemuCpu, describeQemuCpu, type QemuCpuChoice } from './cpu.js';
import { needsEmulation } from './native.js';

export const QEMU_CPU_FIELD = 'qemu-cpu';

export interface EmulationSetup {
  emulation: Emulation;
  cpu: QemuCpuChoice;
  /** The command's environment with QEMU_CPU added (unless the env set its own). */
  env: Array<[string, string]>;
}

/**
 * Checked before the image is pulled or unpacked: a foreign guest has its qemu (else an error
 * that says how to get it), and qemu accepts the asked-for CPU model.
 */
export async function checkEmulation(guest: ArchInfo, qemuCpu: string | undefined): Promise<void> {
  if (!needsEmulation(guest)) return;
  const qemu = findQemu(guest);
  if (qemuCpu) await checkQemuCpu(qemuCpu, qemu, guest, QEMU_CPU_FIELD);
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
  qemuCpu: string | undefined,
  userEnv: ReadonlyArray<readonly [string, string]>,
  env: ReadonlyArray<readonly [string, string]>,
): EmulationSetup | undefined {
  if (!needsEmulation(guest)) return undefined;
  const emulation: Emulation = {
    arch: guest,
    qemuPath: findQemu(guest),
    binfmt: binfmtMode(),
    ruleName: `build-cell-${guest.name}-${cellId}`,
  };
  if (rootless && emulation.binfmt === 'global') {
    throw new CellSetupError(
      `running ${guest.name} code without root needs a binfmt_misc instance of the cell's own, which Linux offers from 6.7 on (this kernel: ${release()}); run as root or through sudo instead`,
    );
  }
  const cpu = chooseQemuCpu(guest, qemuCpu, userEnv);
  const withCpu =
    cpu.source === 'option' || cpu.source === 'default'
      ? mergeEnv(env, [['QEMU_CPU', cpu.model!]])
      : ([...env] as Array<[string, string]>);
  return { emulation, cpu, env: withCpu };
}

/** One line for logs and summaries: "qemu-aarch64-static, CPU neoverse-n1 (...)". */
export function describeEmulation(setup: Pick<EmulationSetup, 'emulation' | 'cpu'>): string {
  return `${setup.emulation.qemuPath}, CPU ${describeQemuCpu(setup.cpu)}`;
}
