/**
 * Actions cache keys. Pure.
 *
 * Image layouts: one entry per architecture and manifest digest, so matrix legs and parallel
 * jobs never collide and a moved tag never restores a stale image.
 * Build caches: rolling keys in the manner of rust-cache / ccache-action: every run saves a
 * new key (run id + attempt), and restores the newest entry with the same prefix.
 */
import { sha256Hex } from '../util/random.js';
import { archKey, type ArchInfo } from '../emulation/arch.js';
import type { ActionInputs } from './inputs.js';
import { managedCacheDir } from './inputs-to-request.js';

export const KEY_VERSION = 'v1';
/**
 * v2: an image entry holds the rootfs as one EROFS image (image/erofs/) where mkfs.erofs was there,
 * else the layout. v3: the EROFS record's digest is a sha256 per 64 MiB chunk (image/erofs/digest.ts).
 */
export const IMAGE_KEY_VERSION = 'v3';

export function imageCacheKey(arch: ArchInfo, digest: string): string {
  return `build-cell-image-${IMAGE_KEY_VERSION}-${archKey(arch)}-${digest.replace(/^sha256:/, '')}`;
}

/**
 * The derived image of an install step: arch + base digest + the install's key hash (script,
 * shell, install-key, env names; see install/key.ts). Matrix legs never collide, and a moved
 * tag or an edited script is a new key.
 */
export function installCacheKey(arch: ArchInfo, baseDigest: string, hash: string): string {
  return `build-cell-install-${IMAGE_KEY_VERSION}-${archKey(arch)}-${baseDigest.replace(/^sha256:/, '').slice(0, 16)}-${hash.slice(0, 32)}`;
}

export interface BuildCacheKeys {
  primary: string;
  restoreKeys: string[];
}

/** The build caches of a run: their host directories and keys (the main step restores, it or the post step saves). */
export function buildCaches(
  inputs: Pick<ActionInputs, 'arch' | 'image' | 'caches' | 'cacheKey'>,
  runnerTemp: string,
): BuildCacheKeys & { dirs: string[] } {
  const keys = buildCacheKeys({
    arch: inputs.arch,
    image: inputs.image.full,
    cellPaths: inputs.caches.map((c) => c.cell),
    userKey: inputs.cacheKey,
    runId: process.env.GITHUB_RUN_ID,
    runAttempt: process.env.GITHUB_RUN_ATTEMPT,
  });
  return { dirs: inputs.caches.map((c, i) => c.host ?? managedCacheDir(runnerTemp, i, c.cell)), ...keys };
}

export function buildCacheKeys(options: {
  arch: ArchInfo;
  image: string;
  cellPaths: string[];
  userKey: string;
  job?: string;
  runId?: string;
  runAttempt?: string;
}): BuildCacheKeys {
  const identity = sha256Hex(JSON.stringify([options.image, options.cellPaths])).slice(0, 16);
  const user = options.userKey ? `-${options.userKey.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 200)}` : '';
  const prefix = `build-cell-caches-${KEY_VERSION}-${options.arch.name}-${identity}${user}-`;
  const primary = `${prefix}${options.runId ?? Date.now()}-${options.runAttempt ?? '1'}`;
  // Without a user key part, entries from other cache-key values are not mixed in.
  return { primary, restoreKeys: [prefix] };
}
