import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { isStaticElf } from '../../src/demo/busybox-image.js';

/** A minimal ELF image: header plus program headers of the given types. */
function elf(options: { bits: 32 | 64; little: boolean; types: number[] }): Buffer {
  const { bits, little, types } = options;
  const ehsize = bits === 64 ? 64 : 52;
  const phentsize = bits === 64 ? 56 : 32;
  const buf = Buffer.alloc(ehsize + phentsize * types.length + 16);
  buf.writeUInt32BE(0x7f454c46, 0);
  buf[4] = bits === 64 ? 2 : 1;
  buf[5] = little ? 1 : 2;
  buf[6] = 1;
  const u16 = (v: number, o: number) => (little ? buf.writeUInt16LE(v, o) : buf.writeUInt16BE(v, o));
  const u32 = (v: number, o: number) => (little ? buf.writeUInt32LE(v, o) : buf.writeUInt32BE(v, o));
  if (bits === 64) {
    if (little) buf.writeBigUInt64LE(BigInt(ehsize), 32);
    else buf.writeBigUInt64BE(BigInt(ehsize), 32);
    u16(phentsize, 54);
    u16(types.length, 56);
  } else {
    u32(ehsize, 28);
    u16(phentsize, 42);
    u16(types.length, 44);
  }
  types.forEach((t, i) => u32(t, ehsize + i * phentsize));
  return buf;
}

const PT_LOAD = 1;
const PT_INTERP = 3;
const PT_NOTE = 4;

describe('isStaticElf', () => {
  it.skipIf(
    !existsSync('/bin/busybox') ||
      !readFileSync('/bin/busybox').subarray(0, 4).equals(Buffer.from('\x7fELF', 'latin1')),
  )('is true for the host busybox (busybox-static)', () => {
    expect(isStaticElf(readFileSync('/bin/busybox'))).toBe(true);
  });

  it('is false for node itself (dynamically linked)', () => {
    expect(isStaticElf(readFileSync(process.execPath))).toBe(false);
  });

  it.each([
    ['empty', Buffer.alloc(0)],
    ['text', Buffer.from('#!/bin/sh\necho this is a shell script, not an ELF binary at all\n')],
    ['zeros', Buffer.alloc(128)],
    ['short ELF', Buffer.from('\x7fELF\x02\x01\x01', 'latin1')],
  ])('is false for garbage (%s)', (_what, bytes) => {
    expect(isStaticElf(bytes)).toBe(false);
  });

  it.each([
    [64, true],
    [64, false],
    [32, true],
    [32, false],
  ] as const)('reads %d-bit %s-endian program headers', (bits, little) => {
    expect(isStaticElf(elf({ bits, little, types: [PT_LOAD, PT_LOAD, PT_NOTE] }))).toBe(true);
    expect(isStaticElf(elf({ bits, little, types: [PT_LOAD, PT_INTERP, PT_LOAD] }))).toBe(false);
    expect(isStaticElf(elf({ bits, little, types: [PT_INTERP] }))).toBe(false);
  });
});
