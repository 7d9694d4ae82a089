/**
 * Node built-ins loaded on first use. In the bundle a static import runs at start-up, and some
 * built-ins cost milliseconds there: node:crypto (~2 ms) and node:child_process (~2 ms, with
 * the net and stream modules it pulls in). A warm `prepare`, `--version` or `--help` needs
 * neither, and a warm cell needs no crypto at all.
 */
import { createRequire } from 'node:module';

const load = createRequire(import.meta.url);
let crypto: typeof import('node:crypto') | undefined;
let childProcess: typeof import('node:child_process') | undefined;

export function lazyCrypto(): typeof import('node:crypto') {
  return (crypto ??= load('node:crypto') as typeof import('node:crypto'));
}

export function lazyChildProcess(): typeof import('node:child_process') {
  return (childProcess ??= load('node:child_process') as typeof import('node:child_process'));
}
