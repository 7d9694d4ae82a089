/**
 * The pinned qemu (src/tools/pinned.ts) for tests that must run cells under exactly the qemu
 * build-cell downloads: its binaries, extracted once from the real pinned .deb (fetched by
 * ensureDeb, checked against its sha256) into test/.cache/pinned-qemu/VERSION, under the
 * names build-cell looks up (qemu-ARCH-static). Put the directory first on PATH.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ARCHES } from '../../src/emulation/arch.js';
import { extractDebMembers } from '../../src/tools/deb.js';
import { pinFor, qemuMember, toolCacheVersion } from '../../src/tools/pinned.js';
import { REPO_ROOT } from './fixtures.js';
import { ensureDeb } from './tools-source.js';

export async function pinnedQemuDir(): Promise<{ dir: string; version: string }> {
  const pin = pinFor('qemu-user-static');
  if (!pin) throw new Error(`no qemu pin for this ${process.arch} host`);
  const dir = join(REPO_ROOT, 'test', '.cache', 'pinned-qemu', toolCacheVersion(pin.version));
  const names = ARCHES.map((a) => a.qemu);
  if (names.every((name) => existsSync(join(dir, name)))) return { dir, version: pin.version };
  const deb = await ensureDeb(pin);
  const work = `${dir}.tmp-${process.pid}`;
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  try {
    const members = names.map((name) => qemuMember(pin, name));
    const extracted = await extractDebMembers(deb, join(work, 'root'), members, { scratchDir: work });
    for (const [i, name] of names.entries()) {
      const file = extracted[members[i]!];
      if (!file) throw new Error(`${members[i]} is not in ${deb}`);
      await chmod(file, 0o755);
      await rename(file, join(work, name));
    }
    await rm(join(work, 'root'), { recursive: true, force: true });
    await rm(dir, { recursive: true, force: true });
    await rename(work, dir);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return { dir, version: pin.version };
}
