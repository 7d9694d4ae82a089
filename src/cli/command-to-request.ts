/**
 * A CLI command -> the engine request: the cell (run, session start), and the emulation fields
 * every command that runs a cell takes: --emulation, --qemu-cpu, and --qemu 7.2|10.0|path: the chosen build's binary for the guest, resolved in the process that
 * runs the engine (after the privilege choice, so a run through sudo resolves once, as root).
 * Without --qemu the engine takes the qemu-ARCH-static on PATH, as before.
 */
import { needsEmulation } from '../emulation/native.js';
import type { CellRequest, QemuSelection } from '../engine-types.js';
import { describeQemuChoice } from '../tools/pinned.js';
import type { CellSpecInput } from '../cellspec/types.js';
import type { Owner } from '../util/fs.js';
import type { CommonOptions, InstallOption } from './command.js';
import { cliInstallRequest } from './run-args.js';

export async function selectQemu(
  options: Pick<CommonOptions, 'image' | 'emulation' | 'qemu' | 'toolsSource'>,
  log: (message: string) => void,
): Promise<QemuSelection | undefined> {
  const guest = options.image.arch;
  if (!options.qemu || !needsEmulation(guest, options.emulation)) return undefined;
  // Loaded only here: the tool cache and its HTTP client are a large part of a bundle that every
  // warm cell would otherwise load (+100 ms measured), and only --qemu 7.2|10.0|path needs them.
  const { resolveQemu } = await import('../tools/resolve.js');
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

/** The cell of `run` and of `session start`: the command's spec on its image, with the install step and write-back. */
export async function cellRequest(
  command: CommonOptions & {
    spec: CellSpecInput;
    install?: InstallOption;
    writeBack?: boolean;
    writeBackGit?: boolean;
  },
  owner: Owner | undefined,
  log: (m: string) => void,
): Promise<CellRequest> {
  return {
    stateDir: command.stateDir,
    image: command.image,
    spec: command.spec,
    owner,
    inheritImageEnv: true,
    install: command.install ? cliInstallRequest(command.install, command.spec.env) : undefined,
    ...(command.writeBack ? { writeBack: true } : {}),
    ...(command.writeBackGit ? { writeBackGit: true } : {}),
    ...(command.storeMaxSize !== undefined ? { storeMaxSize: command.storeMaxSize } : {}),
    ...(await emulationRequest(command, log)),
  };
}
