/**
 * Architecture names, their OCI platform, the qemu-user-static binary that emulates them,
 * and the binfmt_misc magic/mask for their ELF binaries (as in qemu's qemu-binfmt-conf.sh
 * and Debian's /usr/lib/binfmt.d/qemu-*.conf; a unit test compares them when present).
 */
import { UserError, show } from '../util/errors.js';

export interface ArchInfo {
  /** Canonical name: the OCI architecture (plus variant for arm). */
  name: string;
  ociArch: string;
  ociVariant?: string;
  /** What `uname -m` says inside the cell. */
  uname: string;
  /** Word size: 32-bit guests under qemu meet 64-bit directory offsets (see emulation/native.ts). */
  bits: 32 | 64;
  qemu: string;
  magic: string;
  mask: string;
  aliases: readonly string[];
}

const ELF64_LE_MASK =
  '\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff\\xff';
const X86_MASK = '\\xff\\xff\\xff\\xff\\xff\\xfe\\xfe\\x00\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff\\xff';

export const ARCHES: readonly ArchInfo[] = [
  {
    name: 'amd64',
    ociArch: 'amd64',
    uname: 'x86_64',
    bits: 64,
    qemu: 'qemu-x86_64-static',
    aliases: ['x86_64', 'x86-64', 'x64'],
    magic: '\\x7fELF\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\x3e\\x00',
    mask: X86_MASK,
  },
  {
    name: 'arm64',
    ociArch: 'arm64',
    uname: 'aarch64',
    bits: 64,
    qemu: 'qemu-aarch64-static',
    aliases: ['aarch64', 'arm64/v8'],
    magic: '\\x7fELF\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\xb7\\x00',
    mask: ELF64_LE_MASK,
  },
  {
    name: 'riscv64',
    ociArch: 'riscv64',
    uname: 'riscv64',
    bits: 64,
    qemu: 'qemu-riscv64-static',
    aliases: [],
    magic: '\\x7fELF\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\xf3\\x00',
    mask: ELF64_LE_MASK,
  },
  {
    name: 'arm',
    ociArch: 'arm',
    ociVariant: 'v7',
    uname: 'armv7l',
    bits: 32,
    qemu: 'qemu-arm-static',
    aliases: ['armv7', 'arm/v7', 'armhf', 'armv7l'],
    magic: '\\x7fELF\\x01\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\x28\\x00',
    mask: ELF64_LE_MASK,
  },
  {
    name: 'ppc64le',
    ociArch: 'ppc64le',
    uname: 'ppc64le',
    bits: 64,
    qemu: 'qemu-ppc64le-static',
    aliases: ['ppc64el'],
    magic: '\\x7fELF\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\x15\\x00',
    mask: '\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfc\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff\\x00',
  },
  {
    name: 's390x',
    ociArch: 's390x',
    uname: 's390x',
    bits: 64,
    qemu: 'qemu-s390x-static',
    aliases: [],
    magic: '\\x7fELF\\x02\\x02\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\x16',
    mask: '\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfc\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff',
  },
  {
    name: '386',
    ociArch: '386',
    uname: 'i686',
    bits: 32,
    qemu: 'qemu-i386-static',
    aliases: ['i386', 'i686', 'x86'],
    magic: '\\x7fELF\\x01\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\x03\\x00',
    mask: X86_MASK,
  },
  {
    name: 'mips64le',
    ociArch: 'mips64le',
    uname: 'mips64',
    bits: 64,
    qemu: 'qemu-mips64el-static',
    aliases: ['mips64el'],
    magic: '\\x7fELF\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\x08\\x00',
    mask: '\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xfe\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff\\xff',
  },
];

export const ACCEPTED_ARCH_NAMES = ARCHES.flatMap((a) => [a.name, ...a.aliases]);

/** Resolve a user-supplied name (any case, with or without `linux/`) to its ArchInfo. */
export function resolveArch(value: string, field = 'arch'): ArchInfo {
  const name = value
    .trim()
    .toLowerCase()
    .replace(/^linux\//, '');
  const found = ARCHES.find((a) => a.name === name || a.aliases.includes(name));
  if (!found) {
    throw new UserError(
      field,
      `unsupported architecture ${show(value)}: accepted are ${ARCHES.map((a) => [a.name, ...a.aliases].join('/')).join(', ')}`,
    );
  }
  return found;
}

/** The architecture this Node process runs on. */
export function hostArch(nodeArch: string = process.arch): ArchInfo {
  const map: Record<string, string> = {
    x64: 'amd64',
    arm64: 'arm64',
    arm: 'arm',
    ppc64: 'ppc64le',
    s390x: 's390x',
    riscv64: 'riscv64',
    ia32: '386',
    mips64el: 'mips64le',
  };
  const name = map[nodeArch];
  if (!name) throw new UserError('host', `unsupported host architecture ${show(nodeArch)}`);
  return resolveArch(name);
}

/** The binfmt_misc registration line for `arch` with interpreter `interpreter`. */
export function binfmtRule(ruleName: string, arch: ArchInfo, interpreter: string): string {
  if (!/^[A-Za-z0-9_.-]+$/.test(ruleName)) throw new UserError('binfmt rule', `invalid name ${show(ruleName)}`);
  if (interpreter.includes(':') || interpreter.includes('\n'))
    throw new UserError('qemu path', `must not contain ':' or newlines: ${show(interpreter)}`);
  // F: open the interpreter now, so it need not be reachable from inside the chroot.
  // P: keep argv[0] (qemu >= 6 reads AT_FLAGS_PRESERVE_ARGV0). C: setuid binaries keep their credentials.
  return `:${ruleName}:M::${arch.magic}:${arch.mask}:${interpreter}:FPC`;
}

/** The arch as the store and the cache keys name it: OCI arch, and variant when there is one (arm-v7). */
export function archKey(arch: ArchInfo): string {
  return arch.ociVariant ? `${arch.ociArch}-${arch.ociVariant}` : arch.ociArch;
}
