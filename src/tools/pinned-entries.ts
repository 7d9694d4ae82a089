/**
 * The tool-cache entries a resolve may fill from a pinned download (umoci, and the qemu
 * programs of a pinned build), so a caller can carry them to a fresh machine: the action keeps
 * them in the Actions cache, and a hosted runner then fetches nothing from the Debian mirror.
 * @actions/tool-cache's layout: ROOT/NAME/VERSION/ARCH, complete once ROOT/NAME/VERSION/ARCH.complete
 * exists (tc.cacheFile writes it last). Entries travel as a staged copy in that same layout
 * below a directory of the caller's (`stage`, `adopt`): the tool cache's own path may differ
 * from machine to machine.
 */
import * as tc from '@actions/tool-cache';
import { existsSync } from 'node:fs';
import { cp } from 'node:fs/promises';
import { join } from 'node:path';
import type { ArchInfo } from '../emulation/arch.js';
import { pinFor, qemuPinFor, toolCacheVersion, type PinnedDeb, type QemuVersion } from './pinned.js';
import { defaultToolCacheDir, withToolCacheEnv } from './tool-cache-env.js';

export interface PinnedEntry {
  /** The program, also the entry's name in the tool cache. */
  name: string;
  /** The tool cache's version and arch keys. */
  version: string;
  arch: string;
  /** The package it comes from, with its version and sha256: what the entry's content is. */
  pin: string;
  /** ROOT/NAME/VERSION/ARCH. */
  dir: string;
}

/** The tool cache's root, as a resolve uses it: RUNNER_TOOL_CACHE, else the CLI's default. */
export function toolCacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  return env.RUNNER_TOOL_CACHE || defaultToolCacheDir(env);
}

/**
 * The entries a resolve of `qemu` (the guests that need it) under `qemuVersion` (and of
 * mkfs.erofs, when the job saves images) may use, in the
 * tool cache at `root`, for this host (`nodeArch`); none for a host build-cell pins nothing for.
 * `qemu: path` takes qemu from PATH alone: no entry.
 */
export function pinnedEntries(
  request: { qemu: readonly ArchInfo[]; qemuVersion?: QemuVersion; mkfsErofs?: boolean },
  root: string,
  nodeArch: string = process.arch,
): PinnedEntry[] {
  const entry = (name: string, pin: PinnedDeb): PinnedEntry => ({
    name,
    version: toolCacheVersion(pin.version),
    arch: nodeArch,
    pin: `${pin.package} ${pin.version} ${pin.arch} sha256:${pin.sha256}`,
    dir: join(root, name, toolCacheVersion(pin.version), nodeArch),
  });
  const umoci = pinFor('umoci', nodeArch);
  const erofs = request.mkfsErofs ? pinFor('erofs-utils', nodeArch) : undefined;
  const qemuPin = request.qemuVersion === 'path' ? undefined : qemuPinFor(request.qemuVersion ?? '7.2', nodeArch);
  const qemuNames = [...new Set(request.qemu.map((arch) => arch.qemu))].sort();
  return [
    ...(umoci ? [entry('umoci', umoci)] : []),
    ...(erofs ? [entry('mkfs.erofs', erofs)] : []),
    ...(qemuPin ? qemuNames.map((name) => entry(name, qemuPin)) : []),
  ];
}

/** Whether the tool cache holds the entry whole (its marker is written last). */
export function complete(entry: PinnedEntry): boolean {
  return existsSync(`${entry.dir}.complete`);
}

/** Where an entry's staged copy lives below `staging`. */
export function stagedPath(entry: PinnedEntry, staging: string): string {
  return join(staging, entry.name, entry.version, entry.arch);
}

/** Copy complete entries into `staging`, for the caller to carry elsewhere. */
export async function stage(entries: readonly PinnedEntry[], staging: string): Promise<void> {
  for (const entry of entries) await cp(entry.dir, stagedPath(entry, staging), { recursive: true });
}

/**
 * Put the staged copies of the entries the tool cache lacks into it (tc.cacheDir writes the
 * marker last); returns the names adopted. The resolve still runs each one before trusting it.
 */
export function adopt(entries: readonly PinnedEntry[], staging: string): Promise<string[]> {
  return withToolCacheEnv(async () => {
    const adopted: string[] = [];
    for (const entry of entries) {
      const staged = stagedPath(entry, staging);
      if (complete(entry) || !existsSync(join(staged, entry.name))) continue;
      await tc.cacheDir(staged, entry.name, entry.version, entry.arch);
      adopted.push(entry.name);
    }
    return adopted;
  });
}
