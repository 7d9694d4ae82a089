import { describe, expect, it } from 'vitest';
import { release } from 'node:os';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveArch } from '../../src/emulation/arch.js';
import { kernelHasPrivateBinfmt, kernelVersion, ruleBytes, ruleMatches } from '../../src/emulation/binfmt.js';
import { emulationFor, unmatchedQemuCopy } from '../../src/emulation/setup.js';
import { PROBE_ELF } from '../../src/emulation/probe32.js';

describe('kernelVersion', () => {
  it.each([
    ['6.6.0', [6, 6]],
    ['6.7.0-rc1', [6, 7]],
    ['6.18.44-fc-v509', [6, 18]],
    ['5.15.0-1064-azure', [5, 15]],
    ['7.0', [7, 0]],
    ['10.2', [10, 2]],
    ['garbage', [0, 0]],
    ['', [0, 0]],
    ['6', [0, 0]],
    ['v6.8', [0, 0]],
  ] as const)('%j -> %j', (text, expected) => {
    expect(kernelVersion(text)).toEqual(expected);
  });

  it('defaults to os.release()', () => {
    expect(kernelVersion()).toEqual(kernelVersion(release()));
  });
});

describe('kernelHasPrivateBinfmt', () => {
  it.each([
    ['6.6.0', false],
    ['6.6.99-lts', false],
    ['5.19.0', false],
    ['4.19.0', false],
    ['6.7.0', true],
    ['6.8.0-1-generic', true],
    ['6.18.44-fc', true],
    ['7.0', true],
    ['8.1.0', true],
    ['garbage', false],
    ['', false],
  ] as const)('%j -> %s', (text, expected) => {
    expect(kernelHasPrivateBinfmt(text)).toBe(expected);
  });
});

describe('findQemu', () => {
  it('says which package to install when the qemu binary is missing', async () => {
    const { findQemu } = await import('../../src/emulation/binfmt.js');
    const { resolveArch } = await import('../../src/emulation/arch.js');
    const missing = { ...resolveArch('riscv64'), qemu: 'qemu-nonexistent-static' };
    expect(() => findQemu(missing)).toThrow(/needs qemu-nonexistent-static on PATH: install qemu-user-static/);
  });
});

describe('ruleMatches: what binfmt_misc hands to a rule', () => {
  const arch = (name: string) => resolveArch(name);
  it('reads the rules as bytes', () => {
    expect([...ruleBytes('\\x7fELF\\x02')]).toEqual([0x7f, 0x45, 0x4c, 0x46, 2]);
  });
  it('matches the 32-bit probe programs to their own rules only', () => {
    expect(ruleMatches(arch('386'), PROBE_ELF['386']!)).toBe(true);
    expect(ruleMatches(arch('amd64'), PROBE_ELF['386']!)).toBe(false);
    expect(ruleMatches(arch('arm'), PROBE_ELF.arm!)).toBe(true);
    expect(ruleMatches(arch('arm64'), PROBE_ELF.arm!)).toBe(false);
    expect(ruleMatches(arch('386'), Buffer.from('\x7fELF'))).toBe(false);
  });
  const hostQemu = '/usr/bin/qemu-x86_64-static';
  it.skipIf(process.arch !== 'x64' || !existsSync(hostQemu))(
    "qemu for the host's own arch matches its own rule (the kernel would loop); the copy with EI_PAD set does not",
    () => {
      const amd64 = arch('amd64');
      expect(ruleMatches(amd64, readFileSync(hostQemu).subarray(0, 128))).toBe(true);
      const dir = mkdtempSync(join(tmpdir(), 'bc-qemu-copy-'));
      try {
        const copy = unmatchedQemuCopy({ arch: amd64, qemuPath: hostQemu, binfmt: 'private', ruleName: 'x' }, dir);
        const header = readFileSync(copy).subarray(0, 128);
        expect(ruleMatches(amd64, header)).toBe(false);
        expect(header[9]).toBe(1);
        expect(readFileSync(copy).length).toBe(readFileSync(hostQemu).length);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});

describe("emulation: qemu for the host's own architecture", () => {
  const hostQemu = '/usr/bin/qemu-x86_64-static';
  it.skipIf(process.arch !== 'x64' || !existsSync(hostQemu))(
    'needs a private binfmt_misc: a global rule would send every host program through qemu',
    () => {
      const saved = process.env.BUILD_CELL_BINFMT;
      process.env.BUILD_CELL_BINFMT = 'global';
      try {
        const amd64 = resolveArch('amd64');
        expect(() => emulationFor(amd64, 'id', false, { mode: 'qemu', qemuPath: hostQemu }, [], [])).toThrow(
          /emulation: qemu for amd64, the host's own architecture, needs a binfmt_misc instance of the cell's own/,
        );
        process.env.BUILD_CELL_BINFMT = 'private';
        const setup = emulationFor(amd64, 'id', false, { mode: 'qemu', qemuPath: hostQemu }, [], [])!;
        expect(setup.emulation).toMatchObject({ selfMatching: true, binfmt: 'private', qemuPath: hostQemu });
        expect(setup.decision).toEqual({ emulated: true, reason: 'emulation: qemu asks for qemu' });
      } finally {
        if (saved === undefined) delete process.env.BUILD_CELL_BINFMT;
        else process.env.BUILD_CELL_BINFMT = saved;
      }
    },
  );
});
