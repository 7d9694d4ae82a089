/**
 * Random names and hashes without loading node:crypto at startup: that module costs ~2 ms of
 * every start, and a warm cell needs no cryptography at all (see the README's performance notes).
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { createRequire } from 'node:module';

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

let crypto: typeof import('node:crypto') | undefined;

/** node:crypto, loaded on first use. */
export function lazyCrypto(): typeof import('node:crypto') {
  return (crypto ??= createRequire(import.meta.url)('node:crypto') as typeof import('node:crypto'));
}

export function sha256Hex(data: string | Buffer): string {
  return lazyCrypto().createHash('sha256').update(data).digest('hex');
}
