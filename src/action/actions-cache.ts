/** The Actions cache, when the runner provides it (callers wrap these in bestEffort). */
import * as cache from '@actions/cache';
import * as core from '@actions/core';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

function available(): boolean {
  if (cache.isFeatureAvailable()) return true;
  core.info('the Actions cache service is not available on this runner');
  return false;
}

/** The key that matched, or undefined on a miss. */
export async function restoreCache(
  paths: string[],
  key: string,
  restoreKeys: string[] = [],
): Promise<string | undefined> {
  if (!available()) return undefined;
  return cache.restoreCache(paths, key, restoreKeys);
}

export async function saveCache(paths: string[], key: string): Promise<void> {
  if (!available()) return;
  await cache.saveCache(paths, key);
}

/**
 * Whether an image cache dir holds an image to save: the engine writes its ref record last,
 * after the layout or the EROFS image, so a hand-off that failed half-way is never saved (an
 * empty entry under the key would keep a good one from ever being saved).
 */
export function holdsImage(dir: string): boolean {
  try {
    return readdirSync(join(dir, 'images', 'refs')).length > 0;
  } catch {
    return false;
  }
}
