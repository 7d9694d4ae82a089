/**
 * The derived image's rootfs, made from what is already on disk: a hard-link copy of the base
 * rootfs (no file data is copied; the store's rootfs dirs are never written to once made, and
 * overlayfs never writes to a lower layer), then the install's upper layer applied to it by
 * moving its entries into place (rename: the scratch is removed afterwards anyway). A file
 * that replaces a base file replaces only that name, so the base's inode is untouched.
 */
import { chmod, lchown, lstat, readdir, rename, rm, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { writeRootSentinel } from '../image/store.js';
import { exec } from '../util/exec.js';
import { childRel, isExcluded, statOrUndefined, type Deletions } from './layer.js';
import { isWhiteout } from '../write-back/apply-upper.js';

export async function buildDerivedRootfs(options: {
  base: string;
  upper: string;
  deletions: Deletions;
  target: string;
  prefix: string;
}): Promise<void> {
  const { upper, deletions, target } = options;
  await exec('cp', ['-al', '--', options.base, target], `cannot link the base rootfs ${options.base} into ${target}`);
  const asRoot = process.getuid?.() === 0;
  // Only directories of the target that this walk checked are entered: every name below one
  // is the base's or the install's, never followed through a symlink.
  const apply = async (rel: string): Promise<void> => {
    for (const name of deletions.get(rel) ?? []) await rm(join(target, rel, name), { recursive: true, force: true });
    for (const name of await readdir(join(upper, rel))) {
      const child = childRel(rel, name);
      if (isExcluded(child)) continue;
      const from = join(upper, child);
      const to = join(target, child);
      const info = await lstat(from);
      if (isWhiteout(info)) continue;
      const existing = await statOrUndefined(to);
      if (info.isDirectory() && existing?.isDirectory()) {
        await apply(child);
        if (asRoot) await lchown(to, info.uid, info.gid);
        await chmod(to, info.mode & 0o7777);
        await utimes(to, info.atime, info.mtime);
        continue;
      }
      if (existing && (existing.isDirectory() || info.isDirectory())) await rm(to, { recursive: true, force: true });
      await rename(from, to);
    }
  };
  await apply('');
  // Written fresh: the install may have removed or replaced it; the base's copy is a hard link.
  await writeRootSentinel(target, options.prefix);
}
