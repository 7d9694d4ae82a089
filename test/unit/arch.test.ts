import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ACCEPTED_ARCH_NAMES, ARCHES, binfmtRule, hostArch, resolveArch } from '../../src/emulation/arch.js';
import { type ArchInfo } from '../../src/emulation/arch.js';
import {
  decideEmulationOn,
  describeDecision,
  nativePersonality,
  parseEmulationMode,
  thirtyTwoBitNote,
} from '../../src/emulation/native.js';
import { PROBE_EXIT, executes32, linux32Personality } from '../../src/emulation/probe32.js';
import { expectUserError } from './spec-fixture.js';

const arch = (name: string) => resolveArch(name);

describe('resolveArch', () => {
  it.each([
    ['amd64', 'amd64'],
    ['x86_64', 'amd64'],
    ['x86-64', 'amd64'],
    ['x64', 'amd64'],
    ['linux/amd64', 'amd64'],
    ['AMD64', 'amd64'],
    ['arm64', 'arm64'],
    ['aarch64', 'arm64'],
    ['ARM64', 'arm64'],
    ['linux/arm64', 'arm64'],
    ['arm64/v8', 'arm64'],
    ['linux/arm64/v8', 'arm64'],
    ['AArch64', 'arm64'],
    ['riscv64', 'riscv64'],
    ['linux/riscv64', 'riscv64'],
    ['arm', 'arm'],
    ['armv7', 'arm'],
    ['arm/v7', 'arm'],
    ['linux/arm/v7', 'arm'],
    ['armhf', 'arm'],
    ['armv7l', 'arm'],
    ['ARMHF', 'arm'],
    ['ppc64le', 'ppc64le'],
    ['ppc64el', 'ppc64le'],
    ['linux/ppc64le', 'ppc64le'],
    ['s390x', 's390x'],
    ['S390X', 's390x'],
    ['386', '386'],
    ['i386', '386'],
    ['i686', '386'],
    ['x86', '386'],
    ['linux/386', '386'],
    ['mips64le', 'mips64le'],
    ['mips64el', 'mips64le'],
    ['  arm64  ', 'arm64'],
    ['LINUX/ARM64', 'arm64'],
  ])('%j -> %s', (input, expected) => {
    expect(resolveArch(input).name).toBe(expected);
  });

  it('resolves every canonical name and alias to its own entry', () => {
    for (const a of ARCHES) {
      for (const name of [a.name, ...a.aliases]) expect(resolveArch(name)).toBe(a);
    }
  });

  it('knows the OCI platform, uname and qemu of each', () => {
    expect(arch('arm')).toMatchObject({ ociArch: 'arm', ociVariant: 'v7', uname: 'armv7l', qemu: 'qemu-arm-static' });
    expect(arch('arm64')).toMatchObject({ ociArch: 'arm64', uname: 'aarch64', qemu: 'qemu-aarch64-static' });
    expect(arch('arm64').ociVariant).toBeUndefined();
    expect(arch('amd64')).toMatchObject({ ociArch: 'amd64', uname: 'x86_64', qemu: 'qemu-x86_64-static' });
    expect(arch('386')).toMatchObject({ ociArch: '386', qemu: 'qemu-i386-static' });
    expect(arch('mips64le')).toMatchObject({ qemu: 'qemu-mips64el-static' });
  });

  it.each(['sparc', 'arm/v6', 'linux/', '', 'amd64 arm64', 'windows/amd64'])(
    'rejects %j, listing every accepted name',
    (input) => {
      const message = expectUserError(
        () => resolveArch(input, '--arch'),
        '--arch',
        `unsupported architecture ${JSON.stringify(input)}`,
        'accepted are',
      );
      for (const name of ACCEPTED_ARCH_NAMES) expect(message).toContain(name);
    },
  );

  it('uses "arch" as the default field', () => {
    expectUserError(() => resolveArch('vax'), 'arch', '"vax"');
  });
});

describe('hostArch', () => {
  it.each([
    ['x64', 'amd64'],
    ['arm64', 'arm64'],
    ['arm', 'arm'],
    ['ppc64', 'ppc64le'],
    ['s390x', 's390x'],
    ['riscv64', 'riscv64'],
    ['ia32', '386'],
    ['mips64el', 'mips64le'],
  ])('node %s -> %s', (nodeArch, expected) => {
    expect(hostArch(nodeArch).name).toBe(expected);
  });

  it('defaults to process.arch', () => {
    expect(hostArch()).toBe(hostArch(process.arch));
  });

  it('rejects unknown node architectures', () => {
    expectUserError(() => hostArch('sparc'), 'host', 'unsupported host architecture "sparc"');
  });
});

describe('decideEmulationOn (faked hosts)', () => {
  const host = (name: string, runs32: boolean) => {
    const asked: string[] = [];
    return { cpu: { arch: arch(name), runs32: (g: ArchInfo) => (asked.push(g.name), runs32) }, asked };
  };
  it.each([
    ['amd64', 'amd64', false],
    ['amd64', 'arm64', true],
    ['amd64', 'arm', true],
    ['arm64', 'arm64', false],
    ['arm64', 'amd64', true],
    ['arm64', 'riscv64', true],
    ['arm64', '386', true],
    ['386', 'amd64', true],
    ['ppc64le', 's390x', true],
  ] as const)('host %s, guest %s -> emulated %s (the 32-bit probe never asked)', (hostName, guest, expected) => {
    const { cpu, asked } = host(hostName, true);
    expect(decideEmulationOn(cpu, arch(guest)).emulated).toBe(expected);
    expect(asked).toEqual([]);
  });
  it('an arm64 cell on an arm64 host never uses qemu, whatever the CPU', () => {
    expect(decideEmulationOn(host('arm64', false).cpu, arch('arm64'))).toEqual({
      emulated: false,
      reason: "the host's own architecture",
    });
  });
  it('386 on an amd64 host whose kernel runs 32-bit x86 is native, and says so', () => {
    const { cpu, asked } = host('amd64', true);
    const decision = decideEmulationOn(cpu, arch('386'));
    expect(decision).toEqual({ emulated: false, reason: 'this kernel runs 32-bit x86 natively' });
    expect(describeDecision(arch('386'), decision)).toBe('386: native (this kernel runs 32-bit x86 natively)');
    expect(asked).toEqual(['386']);
  });
  it('386 on an amd64 host whose kernel cannot (ia32_emulation=0, gVisor) is emulated, and says why', () => {
    const decision = decideEmulationOn(host('amd64', false).cpu, arch('i386'));
    expect(describeDecision(arch('386'), decision)).toBe('386: emulated (this kernel cannot run 32-bit x86 natively)');
  });
  it('armhf on an arm64 host with AArch32 runs natively', () => {
    const { cpu, asked } = host('arm64', true);
    expect(decideEmulationOn(cpu, arch('armhf')).emulated).toBe(false);
    expect(asked).toEqual(['arm']);
  });
  it('armhf on an arm64 host without AArch32 (e.g. Neoverse V1, Graviton 3) is emulated', () => {
    expect(decideEmulationOn(host('arm64', false).cpu, arch('arm/v7'))).toEqual({
      emulated: true,
      reason: 'this kernel cannot run 32-bit Arm (AArch32) natively',
    });
  });
  it.each([
    ['amd64', 'amd64'],
    ['amd64', '386'],
    ['arm64', 'arm64'],
    ['arm64', 'arm'],
    ['amd64', 'arm64'],
  ] as const)('emulation qemu on host %s runs %s under qemu, without probing', (hostName, guest) => {
    const { cpu, asked } = host(hostName, true);
    expect(decideEmulationOn(cpu, arch(guest), 'qemu')).toEqual({
      emulated: true,
      reason: 'emulation: qemu asks for qemu',
    });
    expect(asked).toEqual([]);
  });
  it('a 32-bit guest run natively on a 64-bit host gets the linux32 personality (uname -m i686 / armv8l)', () => {
    expect(nativePersonality(arch('386'), arch('amd64'))).toBe('linux32');
    expect(nativePersonality(arch('armhf'), arch('arm64'))).toBe('linux32');
    expect(nativePersonality(arch('amd64'), arch('amd64'))).toBeUndefined();
    expect(nativePersonality(arch('arm64'), arch('arm64'))).toBeUndefined();
    expect(nativePersonality(arch('arm'), arch('amd64'))).toBeUndefined();
  });
});

describe('thirtyTwoBitNote', () => {
  it('points 32-bit guests under qemu at --tmpfs, and nothing else', () => {
    const emulated = { emulated: true, reason: 'x' };
    expect(thirtyTwoBitNote(arch('armhf'), emulated)).toMatch(/arm is a 32-bit guest under qemu: .*EOVERFLOW.*--tmpfs/);
    expect(thirtyTwoBitNote(arch('386'), emulated)).toMatch(/^386 is a 32-bit guest/);
    expect(thirtyTwoBitNote(arch('386'), { emulated: false, reason: 'x' })).toBeUndefined();
    expect(thirtyTwoBitNote(arch('arm64'), emulated)).toBeUndefined();
    expect(ARCHES.filter((a) => a.bits === 32).map((a) => a.name)).toEqual(['arm', '386']);
  });
});

describe('parseEmulationMode', () => {
  it('accepts auto (also empty) and qemu', () => {
    expect(parseEmulationMode(undefined, 'emulation')).toBe('auto');
    expect(parseEmulationMode(' ', 'emulation')).toBe('auto');
    expect(parseEmulationMode('auto', 'emulation')).toBe('auto');
    expect(parseEmulationMode(' qemu\n', '--emulation')).toBe('qemu');
  });
  it.each(['native', 'QEMU', 'yes', 'qemu,auto'])('refuses %j, naming the field and what is accepted', (value) => {
    expectUserError(() => parseEmulationMode(value, '--emulation'), '--emulation', 'must be auto');
  });
});

describe('the 32-bit probe programs', () => {
  const qemuFor = (name: string) =>
    ['/usr/bin', ...(process.env.PATH ?? '').split(':')].map((d) => join(d, name)).find((p) => existsSync(p));
  const underQemu = (qemu: string) => (file: string, args: string[]) =>
    spawnSync(qemu, [file, ...args], { stdio: 'ignore' }).status;
  it.each([
    ['386', 'qemu-i386-static'],
    ['arm', 'qemu-arm-static'],
  ])('the %s program exits with 42 when its CPU runs it (%s)', (guest, qemuName) => {
    const qemu = qemuFor(qemuName);
    if (!qemu) return; // qemu-user-static is installed by .ci/install-packages; a bare machine skips
    expect(executes32(guest, underQemu(qemu))).toBe(true);
  });
  it('a kernel that refuses the program (ENOEXEC: glibc hands it to /bin/sh) is a no', () => {
    expect(executes32('386', (file) => spawnSync('/bin/sh', [file], { stdio: 'ignore' }).status)).toBe(false);
    expect(executes32('386', () => null)).toBe(false);
    expect(executes32('amd64', () => PROBE_EXIT)).toBe(false);
  });
  it('is written to a private directory and removed afterwards', () => {
    let seen = '';
    executes32('386', (file) => {
      seen = file;
      expect(statSync(file).mode & 0o777).toBe(0o700);
      return PROBE_EXIT;
    });
    expect(existsSync(seen)).toBe(false);
    expect(existsSync(dirname(seen))).toBe(false);
  });
  it('the personality probe runs setarch linux32 true', () => {
    const calls: string[][] = [];
    expect(linux32Personality((cmd, args) => (calls.push([cmd, ...args]), 0))).toBe(true);
    expect(calls[0]!.slice(1)).toEqual(['linux32', 'true']);
    expect(linux32Personality(() => 1)).toBe(false);
  });
});

describe('binfmtRule', () => {
  it('has the format :name:M::magic:mask:interpreter:FPC', () => {
    const a = arch('arm64');
    const rule = binfmtRule('build-cell-1234', a, '/s/root/.build-cell/qemu-aarch64-static');
    expect(rule).toBe(`:build-cell-1234:M::${a.magic}:${a.mask}:/s/root/.build-cell/qemu-aarch64-static:FPC`);
    const fields = rule.split(':');
    expect(fields).toEqual([
      '',
      'build-cell-1234',
      'M',
      '',
      a.magic,
      a.mask,
      '/s/root/.build-cell/qemu-aarch64-static',
      'FPC',
    ]);
  });

  it('keeps every magic and mask free of the ":" separator and of equal length', () => {
    for (const a of ARCHES) {
      expect(a.magic).not.toContain(':');
      expect(a.mask).not.toContain(':');
      const bytes = (s: string) =>
        s
          .replace(/^\\x7fELF/, '\\x7f\\x45\\x4c\\x46')
          .split('\\x')
          .filter(Boolean);
      expect(bytes(a.magic)).toHaveLength(20);
      expect(bytes(a.mask)).toHaveLength(20);
      expect(bytes(a.mask).every((b) => /^[0-9a-f]{2}$/.test(b))).toBe(true);
    }
  });

  it.each(['', 'a:b', 'a b', 'a/b', 'x\n', 'ü'])('rejects the rule name %j', (name) => {
    expectUserError(() => binfmtRule(name, arch('arm'), '/q'), 'binfmt rule', 'invalid name');
  });

  it.each(['/opt/q:emu', '/q\n'])('rejects the interpreter %j', (interp) => {
    expectUserError(() => binfmtRule('ok', arch('arm'), interp), 'qemu path', "must not contain ':' or newlines");
  });
});

describe('magic and mask agree with Debian qemu-user-static', () => {
  /** '\x7fELF' spelled as the Debian files do. */
  const normalize = (s: string) => s.replace('\\x7fELF', '\\x7f\\x45\\x4c\\x46').toLowerCase();
  for (const a of ARCHES) {
    const file = `/usr/lib/binfmt.d/${a.qemu.replace(/-static$/, '')}.conf`;
    it.skipIf(!existsSync(file))(`${a.name} matches ${file}`, () => {
      const line = readFileSync(file, 'utf8')
        .split('\n')
        .find((l) => l.startsWith(':'))!;
      const [, , type, , magic, mask] = line.split(':');
      expect(type).toBe('M');
      expect(normalize(a.magic)).toBe(normalize(magic!));
      expect(normalize(a.mask)).toBe(normalize(mask!));
    });
  }
});
