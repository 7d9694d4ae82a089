/**
 * Registry credentials for skopeo, without putting a password in argv (where `ps` shows it):
 * a username/password pair becomes a containers-auth.json in an owner-only temporary
 * directory that exists only while skopeo runs.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ImageReference } from './reference.js';

export interface RegistryOptions {
  tlsVerify: boolean;
  username?: string;
  password?: string;
  /** An existing containers-auth.json / docker config.json. */
  authFile?: string;
}

/** The registry host that a docker:// reference talks to (as containers-auth.json keys it). */
export function registryHost(ref: ImageReference): string {
  const name = ref.full.slice('docker://'.length);
  const first = name.split('/')[0]!;
  if (name.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost')) return first;
  return 'docker.io';
}

/**
 * Run `fn` with skopeo arguments for `prefix` (`--src-` or `--dest-` for copy, `--` for inspect) that
 * carry TLS and credential settings.
 */
export async function withRegistryArgs<T>(
  ref: ImageReference,
  options: RegistryOptions,
  prefix: '--' | '--src-' | '--dest-',
  fn: (args: string[]) => Promise<T>,
): Promise<T> {
  const args: string[] = [];
  if (ref.transport === 'docker') args.push(`${prefix}tls-verify=${options.tlsVerify}`);
  if (ref.transport !== 'docker' || (!options.username && !options.authFile)) return fn(args);
  if (options.authFile && !options.username) return fn([...args, `${prefix}authfile`, options.authFile]);
  const dir = await mkdtemp(join(tmpdir(), 'build-cell-auth-'));
  try {
    const file = join(dir, 'auth.json');
    const auth = Buffer.from(`${options.username}:${options.password ?? ''}`).toString('base64');
    await writeFile(file, JSON.stringify({ auths: { [registryHost(ref)]: { auth } } }), { mode: 0o600 });
    return await fn([...args, `${prefix}authfile`, file]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** What exec must redact from errors and debug logs. */
export function secretsOf(registry: RegistryOptions): string[] {
  return registry.password ? [registry.password] : [];
}
