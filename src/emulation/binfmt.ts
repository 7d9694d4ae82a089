/**
 * Foreign-architecture support: which qemu-*-static to use and how to register it.
 *
 * On Linux 6.7 and later a binfmt_misc instance can be mounted inside a user namespace, so
 * the handler exists only for that cell and the host's /proc/sys/fs/binfmt_misc is never
 * touched. On older kernels the fallback is a uniquely named global rule that the helper
 * removes when the command ends (and the engine removes if the helper was killed).
 */
import { release } from 'node:os';
import { CellSetupError } from '../util/errors.js';
import { exec } from '../util/exec.js';
import { which } from '../util/which.js';
import type { ArchInfo } from './arch.js';

export function kernelVersion(text: string = release()): [number, number] {
  const match = /^(\d+)\.(\d+)/.exec(text);
  return match ? [Number(match[1]), Number(match[2])] : [0, 0];
}

/** Whether binfmt_misc can be mounted per user namespace (Linux >= 6.7). */
export function kernelHasPrivateBinfmt(text?: string): boolean {
  const [major, minor] = kernelVersion(text);
  return major > 6 || (major === 6 && minor >= 7);
}

/** The binfmt mode to use: BUILD_CELL_BINFMT=global|private overrides the kernel check (tests). */
export function binfmtMode(): 'private' | 'global' {
  const forced = process.env.BUILD_CELL_BINFMT;
  if (forced === 'global' || forced === 'private') return forced;
  return kernelHasPrivateBinfmt() ? 'private' : 'global';
}

/** A rule's magic or mask as written in arch.ts (`\\x7fELF\\x02...`), as bytes. */
export function ruleBytes(escaped: string): Buffer {
  const bytes: number[] = [];
  for (let i = 0; i < escaped.length;) {
    if (escaped.startsWith('\\x', i)) {
      bytes.push(parseInt(escaped.slice(i + 2, i + 4), 16));
      i += 4;
    } else bytes.push(escaped.charCodeAt(i++));
  }
  return Buffer.from(bytes);
}

/** Whether binfmt_misc would hand a file starting with `header` to `arch`'s rule (magic at offset 0). */
export function ruleMatches(arch: ArchInfo, header: Buffer): boolean {
  const magic = ruleBytes(arch.magic);
  const mask = ruleBytes(arch.mask);
  if (header.length < magic.length) return false;
  // As the kernel's check_magic: every bit the mask keeps equals the magic's.
  return magic.every((byte, i) => ((header[i]! ^ byte) & (mask[i] ?? 0xff)) === 0);
}

export function findQemu(arch: ArchInfo): string {
  const found = which(arch.qemu);
  if (!found) {
    throw new CellSetupError(
      `running ${arch.name} code on this ${process.arch} host needs ${arch.qemu} on PATH: install qemu-user-static (Debian/Ubuntu: apt-get install qemu-user-static)`,
    );
  }
  return found;
}

/** Remove a global rule a killed helper may have left (run in a private mount namespace). */
export async function removeGlobalRule(ruleName: string): Promise<void> {
  const script =
    'd=/proc/sys/fs/binfmt_misc; [ -e "$d/register" ] || mount -t binfmt_misc binfmt_misc "$d" 2>/dev/null; [ ! -e "$d/$1" ] || printf -- -1 > "$d/$1"';
  await exec(
    'unshare',
    ['--mount', '--propagation', 'private', '--', 'sh', '-c', script, 'sh', ruleName],
    `cannot remove binfmt_misc rule ${ruleName}`,
    { allowFailure: true },
  );
}
