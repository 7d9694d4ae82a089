/**
 * The install step's derived image in the Actions cache: restored before the cell (a hit
 * never runs the install, and needs no base image either), saved after a run that made it.
 * Keyed by arch + base digest + the install's key hash (install/key.ts), so matrix legs and
 * edited scripts never collide. Failures are warnings (bestEffort), as for images.
 */
import * as core from '@actions/core';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { installKey } from '../install/key.js';
import { installIdentity } from './inputs-to-request.js';
import type { InstallResult } from '../install/port.js';
import { holdsImage, restoreCache, saveCache } from './actions-cache.js';
import { bestEffort } from './best-effort.js';
import { installCacheKey } from './cache-keys.js';
import type { ActionInputs } from './inputs.js';

export interface InstallCache {
  key: string;
  dir: string;
  /** The derived layout was restored: the install will not run. */
  hit: boolean;
}

export async function restoreInstall(
  inputs: ActionInputs,
  baseDigest: string,
  work: string,
): Promise<InstallCache | undefined> {
  const identity = installIdentity(inputs);
  if (!identity) return undefined;
  const hash = installKey(identity, inputs.arch, baseDigest);
  const key = installCacheKey(inputs.arch, baseDigest, hash);
  const dir = join(work, 'install-cache', key);
  await mkdir(dir, { recursive: true });
  const matched = await bestEffort('restoring the install step from the Actions cache', () => restoreCache([dir], key));
  const hit = matched === key;
  core.info(
    hit
      ? `install step restored from the Actions cache (${key}): it will not run`
      : `no cached install step for ${key}: it runs once, and is saved`,
  );
  return { key, dir, hit };
}

export async function saveInstall(cache: InstallCache | undefined, install: InstallResult | undefined): Promise<void> {
  // Only a run that made or pulled the derived image saves it: a hit (or a store hit) has nothing new.
  const made = install?.ran || install?.source === 'registry';
  if (!cache || cache.hit || !made || !holdsImage(cache.dir)) return;
  await bestEffort('saving the install step to the Actions cache', () => saveCache([cache.dir], cache.key));
}

/** The output install-source: store, actions-cache, registry or ran. Pure. */
export function installSource(install: InstallResult): 'store' | 'actions-cache' | 'registry' | 'ran' {
  return install.source === 'cache' ? 'actions-cache' : install.source;
}

/** The summary's line for the install step: where its image came from, and what the registry tier did. Pure. */
export function describeInstall(install: InstallResult | undefined, cache: InstallCache | undefined): string {
  if (!install) return '–';
  const registry = install.registry;
  const pushed = registry ? (registry.pushed ? `, pushed to ${registry.reference}` : ', not pushed') : '';
  if (install.ran)
    return `ran in ${install.seconds!.toFixed(1)} s${cache ? ', saved to the Actions cache' : ''}${pushed}`;
  if (install.source === 'registry')
    return `pulled from ${registry!.reference} (not run)${cache ? ', saved to the Actions cache' : ''}`;
  return install.source === 'cache'
    ? 'restored from the Actions cache (not run)'
    : 'reused from the state dir (not run)';
}
