/**
 * Whether this kernel executes 32-bit programs of the host's own CPU family: i386 on an
 * x86-64 host, arm (EABI) on an arm64 host. Probed by executing one, never assumed:
 * - x86-64 kernels since 6.7 take `ia32_emulation=0`, some distributions build with
 *   CONFIG_IA32_EMULATION_DEFAULT_DISABLED, and some hypervisors and sandboxes (gVisor, some
 *   lightweight VM kinds) have no 32-bit mode at all: the exec then fails with ENOEXEC.
 * - arm64: many server cores (Neoverse V1/N2, Graviton 3 and later, Apple M) have no AArch32
 *   at EL0, and a kernel without CONFIG_COMPAT runs none either. Linux gates both the exec of
 *   an AArch32 ELF (compat_elf_check_arch) and personality(PER_LINUX32) (arm64_personality)
 *   on the same system_supports_32bit_el0(), so on Linux they agree; the exec is still what is
 *   probed, so that a sandbox that accepts the personality but cannot run AArch32 code is
 *   caught too, and the personality the cell gets (`setarch linux32`) is checked beside it.
 *
 * The probe is a tiny static ELF that build-cell carries (below, 96 bytes each: one program
 * header, three instructions that exit with status 42). Exit status 42 means the kernel ran
 * it; anything else (ENOEXEC makes glibc's execvp hand the file to /bin/sh, which then fails)
 * means it did not. A few milliseconds, once per process.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { which } from '../util/which.js';

export const PROBE_EXIT = 42;

/** ELF32 little-endian header + one PT_LOAD header + `code`, loaded at `base`. */
function elf32(machine: number, flags: number, base: number, code: number[]): Buffer {
  const size = 52 + 32 + code.length;
  const b = Buffer.alloc(size);
  Buffer.from([0x7f, 0x45, 0x4c, 0x46, 1, 1, 1, 0]).copy(b, 0); // ELFCLASS32, LSB, version 1, SysV
  b.writeUInt16LE(2, 16); // ET_EXEC
  b.writeUInt16LE(machine, 18);
  b.writeUInt32LE(1, 20); // EV_CURRENT
  b.writeUInt32LE(base + 84, 24); // entry: the code after the headers
  b.writeUInt32LE(52, 28); // program headers right after the ELF header
  b.writeUInt32LE(flags, 36);
  b.writeUInt16LE(52, 40); // e_ehsize
  b.writeUInt16LE(32, 42); // e_phentsize
  b.writeUInt16LE(1, 44); // e_phnum
  b.writeUInt32LE(1, 52); // PT_LOAD of the whole file
  b.writeUInt32LE(0, 56);
  b.writeUInt32LE(base, 60);
  b.writeUInt32LE(base, 64);
  b.writeUInt32LE(size, 68);
  b.writeUInt32LE(size, 72);
  b.writeUInt32LE(5, 76); // PF_R | PF_X
  b.writeUInt32LE(0x1000, 80);
  Buffer.from(code).copy(b, 84);
  return b;
}

/** The probe programs by guest architecture name (ArchInfo.name). */
export const PROBE_ELF: Readonly<Record<string, Buffer>> = {
  // mov ebx, 42; mov eax, 1 (exit); int 0x80
  '386': elf32(3, 0, 0x08048000, [0xbb, PROBE_EXIT, 0, 0, 0, 0xb8, 1, 0, 0, 0, 0xcd, 0x80]),
  // mov r0, #42; mov r7, #1 (exit); svc #0 (ARM mode). EABI 5, hard float: arm64's
  // compat_elf_check_arch wants an EABI version in e_flags.
  arm: elf32(40, 0x05000400, 0x10000, [PROBE_EXIT, 0, 0xa0, 0xe3, 1, 0x70, 0xa0, 0xe3, 0, 0, 0, 0xef]),
};

export type Runner = (file: string, args: string[]) => number | null;

const spawnStatus: Runner = (file, args) => spawnSync(file, args, { stdio: 'ignore', timeout: 10_000 }).status;

/**
 * Execute the probe of `guest` (a name in PROBE_ELF) from a fresh private directory; true
 * when the kernel ran it. `run` is injectable for tests (e.g. qemu-i386-static FILE).
 */
export function executes32(guest: string, run: Runner = spawnStatus): boolean {
  const elf = PROBE_ELF[guest];
  if (!elf) return false;
  const dir = mkdtempSync(join(tmpdir(), 'build-cell-probe-'));
  try {
    const file = join(dir, `probe-${guest}`);
    writeFileSync(file, elf, { mode: 0o700 });
    return run(file, []) === PROBE_EXIT;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Whether `setarch linux32 true` works: the personality a natively run 32-bit cell gets. */
export function linux32Personality(run: Runner = spawnStatus): boolean {
  const setarch = which('setarch');
  return !!setarch && run(setarch, ['linux32', 'true']) === 0;
}
