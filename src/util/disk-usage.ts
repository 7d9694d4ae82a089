/**
 * Disk usage as `du` counts it: allocated blocks (st_blocks × 512) of every file, directory and
 * symlink under a path, each inode once. A file with more than one link (a derived image's
 * rootfs is a hard-link copy of its base's, its layout links the base's blobs) is kept by its
 * inode, so usages can be added up across trees and still count a shared file once.
 */
import { lstatSync, readdirSync, type Stats } from 'node:fs';
import { join } from 'node:path';

export interface DiskUsage {
  /** How many entries the tree holds (files, directories, symlinks, the top included). */
  entries: number;
  /** Bytes of the entries with one link, and of the directories. */
  bytes: number;
  /** Bytes of each inode with more links, by `dev:ino`. */
  shared: Map<string, number>;
}

export function emptyUsage(): DiskUsage {
  return { entries: 0, bytes: 0, shared: new Map() };
}

/** The usage of `path` (a file or a tree), added into `into`. No symlink is followed. */
export function diskUsage(path: string, into: DiskUsage = emptyUsage()): DiskUsage {
  // Synchronous: tens of thousands of lstat calls, where promises would cost more than the calls.
  let info: Stats;
  try {
    info = lstatSync(path);
  } catch {
    return into;
  }
  count(info, into);
  if (info.isDirectory()) walk(path, into);
  return into;
}

/** The usage of `path` itself (a directory without what it holds). */
export function ownUsage(path: string, into: DiskUsage): DiskUsage {
  try {
    count(lstatSync(path), into);
  } catch {
    // Gone: nothing to count.
  }
  return into;
}

function walk(dir: string, into: DiskUsage): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const path = join(dir, name);
    let info: Stats;
    try {
      info = lstatSync(path);
    } catch {
      continue;
    }
    count(info, into);
    if (info.isDirectory()) walk(path, into);
  }
}

function count(info: Stats, into: DiskUsage): void {
  into.entries++;
  const bytes = info.blocks * 512;
  if (info.nlink > 1 && !info.isDirectory()) into.shared.set(`${info.dev}:${info.ino}`, bytes);
  else into.bytes += bytes;
}

/** Usages added up, a shared inode once. */
export function addUsage(into: DiskUsage, usage: DiskUsage): DiskUsage {
  into.entries += usage.entries;
  into.bytes += usage.bytes;
  for (const [inode, bytes] of usage.shared) into.shared.set(inode, bytes);
  return into;
}

export function usageBytes(usage: DiskUsage): number {
  let total = usage.bytes;
  for (const bytes of usage.shared.values()) total += bytes;
  return total;
}

/** As JSON (a size record): the shared inodes as pairs. */
export function usageToJson(usage: DiskUsage): { entries: number; bytes: number; shared: Array<[string, number]> } {
  return { entries: usage.entries, bytes: usage.bytes, shared: [...usage.shared] };
}

export function usageFromJson(json: unknown): DiskUsage | undefined {
  const value = json as { entries?: unknown; bytes?: unknown; shared?: unknown } | undefined;
  if (!value || typeof value.entries !== 'number' || typeof value.bytes !== 'number' || !Array.isArray(value.shared))
    return undefined;
  return { entries: value.entries, bytes: value.bytes, shared: new Map(value.shared as Array<[string, number]>) };
}
