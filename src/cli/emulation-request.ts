/**
 * The engine request's emulation fields from the CLI's flags: --emulation, --qemu-cpu, and
 * --qemu 7.2|10.0|path: the chosen build's binary for the guest, resolved in the process that
 * runs the engine (after the privilege choice, so a run through sudo resolves once, as root).
 * Without --qemu the engine takes the qemu-ARCH-static on PATH, as before.
 */
import { needsEmulation } from '../emulation/native.js';
import type { CellRequest, QemuSelection } from '../engine-types.js';
import { describeQemuChoice } from '../tools/pinned.js';
import { resolveQemu } from '../tools/resolve.js';
import type { CommonOptions } from './command.js';

export async function selectQemu(
  options: Pick<CommonOptions, 'image' | 'emulation' | 'qemu' | 'toolsSource'>,
  log: (message: string) => void,
): Promise<QemuSelection | undefined> {
  const guest = options.image.arch;
  if (!options.qemu || !needsEmulation(guest, options.emulation)) return undefined;
  const { qemu } = await resolveQemu({
    qemu: [guest],
    qemuVersion: options.qemu,
    source: options.toolsSource ?? '',
    log,
  });
  return { path: qemu[guest.qemu]!, choice: describeQemuChoice(options.qemu) };
}

/** The mode, the CPU model and the --qemu build resolved, as the engine request takes them. */
export async function emulationRequest(
  command: CommonOptions,
  log: (m: string) => void,
): Promise<Pick<CellRequest, 'emulation' | 'qemuCpu' | 'qemu'>> {
  const qemu = await selectQemu(command, log);
  return {
    emulation: command.emulation,
    ...(command.qemuCpu ? { qemuCpu: command.qemuCpu } : {}),
    ...(qemu ? { qemu } : {}),
  };
}
