/**
 * The pinned tools a job fetches (umoci, the qemu programs its arch needs), carried between
 * fresh runners in the Actions cache: a hosted runner's tool cache dies with its VM, and
 * without this every job downloads them from the Debian mirror (62.6 MB for qemu) and fails
 * when the mirror does. Restored before the tools are resolved, only when the tool cache
 * lacks an entry the job needs and PATH does not stand in for it; saved after a run that
 * fetched them. Keyed by the pins (package, version, sha256) and the host: a new pin is a new
 * key. The entry is a staged copy under RUNNER_TEMP (as the image layouts are), not the tool
 * cache itself, whose path may differ between machines. Failures are warnings (bestEffort).
 */
import * as core from '@actions/core';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256Hex } from '../util/random.js';
import { adopt, complete, stage, type PinnedEntry } from '../tools/pinned-entries.js';
import { restoreCache, saveCache } from './actions-cache.js';
import { bestEffort } from './best-effort.js';
import { KEY_VERSION } from './cache-keys.js';

export interface ToolsCache {
  key: string;
  /** The staged copy's directory (what the Actions cache holds). */
  dir: string;
  /** The entries the job needs from the tool cache (PATH has none of them). */
  entries: PinnedEntry[];
  /** What the Actions cache restored: the tools will not be downloaded. */
  hit: boolean;
}

/** The key of a set of entries: the host, and the pins. Pure. */
export function toolsCacheKey(
  entries: readonly PinnedEntry[],
  platform = process.platform,
  arch = process.arch,
): string {
  const pins = entries.map((e) => `${e.name} ${e.pin}`).sort();
  return `build-cell-tools-${KEY_VERSION}-${platform}-${arch}-${sha256Hex(JSON.stringify(pins)).slice(0, 32)}`;
}

/**
 * Restore the entries the tool cache lacks into it (undefined: nothing to do). `onPath` says
 * which programs PATH provides (the resolve takes those from there); `work` is RUNNER_TEMP/build-cell.
 */
export async function restoreTools(
  entries: readonly PinnedEntry[],
  onPath: (name: string) => string | undefined,
  work: string,
): Promise<ToolsCache | undefined> {
  const needed = entries.filter((e) => !onPath(e.name));
  if (!needed.length || needed.every(complete)) return undefined;
  const key = toolsCacheKey(needed);
  const dir = join(work, 'tools-cache', key);
  await mkdir(dir, { recursive: true });
  const matched = await bestEffort('restoring the tools from the Actions cache', () => restoreCache([dir], key));
  const adopted = matched === key ? await bestEffort('adopting the cached tools', () => adopt(needed, dir)) : undefined;
  const hit = needed.every(complete);
  core.info(
    hit
      ? `tools restored from the Actions cache (${key}): ${adopted?.join(', ') || 'none missing'}`
      : `no cached tools for ${key}: they are fetched once, and saved`,
  );
  return { key, dir, entries: needed, hit };
}

/** Save the entries after a run that fetched them (all of them complete now). */
export async function saveTools(cache: ToolsCache | undefined): Promise<void> {
  if (!cache || cache.hit || !cache.entries.every(complete)) return;
  await bestEffort('saving the tools to the Actions cache', async () => {
    await rm(cache.dir, { recursive: true, force: true });
    await stage(cache.entries, cache.dir);
    await saveCache([cache.dir], cache.key);
  });
}

/** The summary's line for the tools a fresh tool cache lacked. Pure. */
export function describeTools(cache: ToolsCache): string {
  const names = cache.entries.map((e) => e.name).join(', ');
  return cache.hit
    ? `${names}: restored from the Actions cache`
    : `${names}: fetched from the tools source (not in the Actions cache yet)`;
}
