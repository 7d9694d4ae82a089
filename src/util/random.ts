/**
 * Random names and hashes without loading node:crypto at start-up (see ./builtins.ts).
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { lazyCrypto } from './builtins.js';

/** `bytes` random bytes from the kernel (/dev/urandom), as hex: for unique temporary names. */
export function randomHex(bytes: number): string {
  const buffer = Buffer.alloc(bytes);
  const fd = openSync('/dev/urandom', 'r');
  try {
    let got = 0;
    while (got < bytes) got += readSync(fd, buffer, got, bytes - got, null);
  } finally {
    closeSync(fd);
  }
  return buffer.toString('hex');
}

export function sha256Hex(data: string | Buffer): string {
  return lazyCrypto().createHash('sha256').update(data).digest('hex');
}
