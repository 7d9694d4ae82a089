/**
 * The CPU model qemu emulates (`--qemu-cpu` / the `qemu-cpu` input, qemu's `-cpu` / QEMU_CPU).
 *
 * glibc and many programs pick code paths by the CPU features qemu reports, so the model
 * changes what runs: qemu's default for aarch64 is `max` (every feature qemu implements,
 * SVE2 and pointer authentication among them, both slow to emulate), while a real core such
 * as neoverse-n1 (Armv8.2, no SVE, no PAC) makes glibc take the paths that emulate fastest.
 * DEFAULT_QEMU_CPU holds the defaults chosen by measurement (README, "Emulation").
 *
 * Precedence, most specific first: QEMU_CPU in the cell's own env (the user's escape hatch,
 * passed through as given), then the option, then the default for the architecture, else
 * qemu's own default.
 */
import { CellSetupError, UserError, show } from '../util/errors.js';
import { exec, tailLines } from '../util/exec.js';
import type { ArchInfo } from './arch.js';

/**
 * The default model per guest architecture, where one measured faster for apt/compile
 * workloads and is safe (every Debian/Ubuntu package of that architecture runs on it).
 * Architectures not listed run on qemu's own default.
 */
export const DEFAULT_QEMU_CPU: Readonly<Record<string, string>> = {
  // Armv8.2 with LSE atomics: a superset of the Armv8.0 baseline Debian and Ubuntu build for.
  // Without SVE and PAC, glibc's string functions and trixie's branch protection emulate
  // fastest (bench rows 12: apt-get install gcc, bookworm and trixie guests).
  arm64: 'neoverse-n1',
};

export type QemuCpuSource = 'env' | 'option' | 'default' | 'qemu';

export interface QemuCpuChoice {
  /** The model in effect; undefined: qemu's own default (nothing is set). */
  model?: string;
  source: QemuCpuSource;
}

/** name[,prop=value|+feature|-feature]...: qemu's -cpu syntax, checked before qemu sees it. */
const MODEL = /^[A-Za-z0-9][A-Za-z0-9_.-]*(,[+-]?[A-Za-z0-9_.-]+(=[A-Za-z0-9_.:+-]+)?)*$/;

/** The option's syntax (no qemu needed): a clear error before anything touches the host. */
export function parseQemuCpu(value: string | undefined, field: string): string | undefined {
  const model = value?.trim();
  if (!model) return undefined;
  if (model.length > 200 || !MODEL.test(model)) {
    throw new UserError(
      field,
      `must be a qemu CPU model, a name with optional ,feature=value parts (e.g. cortex-a53, arm1176, max,pauth-impdef=on), got ${show(value)}`,
    );
  }
  return model;
}

/** Which model a cell runs with: the env's QEMU_CPU, the option, the default, or qemu's own. */
export function chooseQemuCpu(
  arch: ArchInfo,
  option: string | undefined,
  env: ReadonlyArray<readonly [string, string]>,
): QemuCpuChoice {
  const fromEnv = env.find(([name]) => name === 'QEMU_CPU');
  if (fromEnv) return { model: fromEnv[1], source: 'env' };
  if (option) return { model: option, source: 'option' };
  const fallback = DEFAULT_QEMU_CPU[arch.name];
  return fallback ? { model: fallback, source: 'default' } : { source: 'qemu' };
}

/** How a choice reads in logs and the job summary. */
export function describeQemuCpu(choice: QemuCpuChoice): string {
  switch (choice.source) {
    case 'env':
      return `${choice.model} (QEMU_CPU from the cell's env)`;
    case 'option':
      return `${choice.model} (qemu-cpu)`;
    case 'default':
      return `${choice.model} (build-cell's default for this architecture)`;
    default:
      return "qemu's default";
  }
}

/**
 * The model names `qemu -cpu help` lists. Its formats differ by target and version:
 * "x86 Broadwell  Intel ..." (7.x x86), "  Broadwell  Intel ..." (10.x), "MIPS '24Kc'",
 * "PowerPC mpc5xx  PVR ...", "s390 z900  IBM ...", or bare names; x86 goes on with a blank
 * line and "Recognized CPUID flags:", which are not models.
 */
export function parseCpuHelp(text: string): string[] {
  const names: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (/^Available CPUs:?$/i.test(line)) continue;
    if (!line || /:$/.test(line)) {
      if (names.length) break;
      continue;
    }
    const words = line.replace(/^(x86|s390|PowerPC|MIPS|Sparc|SH4)\s+/, '').split(/\s+/);
    const name = words[0]!.replace(/^'(.*)'$/, '$1');
    if (name && !names.includes(name)) names.push(name);
  }
  return names;
}

/**
 * Check `model` against the qemu that will run the cell: the name must be one `-cpu help`
 * lists, and qemu must accept the whole model, features included. qemu checks the model
 * before it loads the program, so it is given a file that is certainly not a guest binary
 * (itself): "Invalid ELF image" then means the model was accepted.
 */
export async function checkQemuCpu(model: string, qemuPath: string, arch: ArchInfo, field: string): Promise<void> {
  const help = await exec(qemuPath, ['-cpu', 'help'], `listing the CPU models of ${qemuPath}`, { allowFailure: true });
  const names = parseCpuHelp(help.stdout);
  if (!names.length)
    throw new CellSetupError(
      `\`${qemuPath} -cpu help\` listed no CPU models (exit ${help.code}): ${tailLines(help.stderr || help.stdout, 2)}`,
    );
  const name = model.split(',')[0]!;
  if (!names.includes(name)) {
    const close = names.filter((n) => n.toLowerCase() === name.toLowerCase());
    throw new UserError(
      field,
      `${show(name)} is not a CPU model of ${arch.name} in ${qemuPath}${close.length ? ` (did you mean ${close.join(', ')}?)` : ''}; valid are, for example, ${sample(names).join(', ')} (all: ${qemuPath} -cpu help)`,
    );
  }
  if (!model.includes(',')) return;
  const probe = await exec(qemuPath, ['-cpu', model, qemuPath], `checking CPU model ${model}`, { allowFailure: true });
  const said = tailLines(probe.stderr, 1);
  if (!/Invalid ELF image|Exec format error|not an ELF/i.test(said)) {
    throw new UserError(
      field,
      `qemu rejects the CPU model ${show(model)} for ${arch.name}: ${said.replace(/^[^:]*:\s*/, '') || `exit ${probe.code}`}`,
    );
  }
}

/** A few names to show in an error: the generic ones first, then the start of the list. */
function sample(names: readonly string[]): string[] {
  const generic: string[] = names.filter((n) => n === 'max' || n === 'any');
  return [...generic, ...names.filter((n) => !generic.includes(n) && n !== 'host').slice(0, 6)];
}
