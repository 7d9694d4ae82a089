import { describe, expect, it } from 'vitest';
import { release } from 'node:os';
import { kernelHasPrivateBinfmt, kernelVersion } from '../../src/emulation/binfmt.js';

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
