/**
 * Restoring a derived image from its layout (a fresh runner: the Actions cache gave the
 * layout, nothing is unpacked yet). The base layers are unpacked by umoci, as any image's;
 * the install's own layer, an uncompressed tar that build-cell wrote (and which holds most of
 * a toolchain image), by GNU tar: about 3× faster than umoci on it. GNU tar never writes
 * through a link: a symlink whose target is absolute or holds `..` is made a placeholder until
 * the end of the extraction, members with `..` are refused and leading slashes dropped, so
 * nothing lands outside the rootfs whatever the layer holds. OCI whiteouts (`.wh.NAME`, and
 * `.wh..wh..opq`) are applied first, without following links, and left out of the extraction.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { lstat, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { exec } from '../util/exec.js';
import { tool } from '../util/which.js';
import { BASE_TAG, LAYER_TYPE, LAYOUT_TAG, blobPath } from './layout.js';

interface Descriptor {
  digest: string;
  mediaType?: string;
  annotations?: Record<string, string>;
}

/** The install layer of a derived layout (tagged image, with its base tagged base), or undefined. */
async function derivedLayer(layout: string): Promise<string | undefined> {
  try {
    const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
    const tagged = (tag: string) =>
      index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag);
    const image = tagged(LAYOUT_TAG);
    if (!image || !tagged(BASE_TAG)) return undefined;
    const manifest = JSON.parse(await readFile(blobPath(layout, image.digest), 'utf8')) as { layers: Descriptor[] };
    const last = manifest.layers.at(-1);
    return last?.mediaType === LAYER_TYPE ? blobPath(layout, last.digest) : undefined;
  } catch {
    return undefined;
  }
}

/** The paths of a tar's whiteout entries, read from its headers (contents are skipped). */
export async function tarWhiteouts(file: string): Promise<string[]> {
  // Synchronous reads at offsets: one small read per entry, thousands of them (a thread-pool
  // round trip each would cost more than the read).
  const input = openSync(file, 'r');
  const out: string[] = [];
  try {
    const header = Buffer.alloc(512);
    let offset = 0;
    let paxPath: string | undefined;
    for (;;) {
      const bytesRead = readSync(input, header, 0, 512, offset);
      if (bytesRead < 512 || header.every((b) => b === 0)) break;
      const field = (start: number, length: number) =>
        header
          .subarray(start, start + length)
          .toString('utf8')
          .replace(/\0.*$/s, '');
      const size = parseInt(field(124, 12).trim() || '0', 8);
      const type = field(156, 1);
      offset += 512;
      if (type === 'x') {
        const body = Buffer.alloc(size);
        readSync(input, body, 0, size, offset);
        paxPath = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(body.toString('utf8'))?.[1];
      } else {
        const prefix = field(345, 155);
        const path = paxPath ?? (prefix ? `${prefix}/${field(0, 100)}` : field(0, 100));
        paxPath = undefined;
        if (/(^|\/)\.wh\.[^/]+$/.test(path)) out.push(path.replace(/^\.\//, ''));
      }
      offset += Math.ceil(size / 512) * 512;
    }
  } finally {
    closeSync(input);
  }
  return out;
}

/** `rel` under `root`, reached through real directories only (undefined: not there, or behind a link). */
async function realPath(root: string, rel: string): Promise<string | undefined> {
  let current = root;
  for (const part of rel.split('/').filter((p) => p && p !== '.')) {
    if (part === '..') return undefined;
    const info = await lstat(current).catch(() => undefined);
    if (!info?.isDirectory()) return undefined;
    current = join(current, part);
  }
  return current;
}

/** Apply a layer's whiteouts to `rootfs` (the layers below it), never through a link. */
export async function applyWhiteouts(rootfs: string, whiteouts: string[]): Promise<void> {
  for (const entry of whiteouts) {
    const slash = entry.lastIndexOf('/');
    const dir = slash < 0 ? '' : entry.slice(0, slash);
    const name = entry.slice(slash + 1);
    if (name === '.wh..wh..opq') {
      const path = await realPath(rootfs, dir);
      const info = path ? await lstat(path).catch(() => undefined) : undefined;
      if (path && info?.isDirectory())
        for (const child of await readdir(path)) await rm(join(path, child), { recursive: true, force: true });
      continue;
    }
    const path = await realPath(rootfs, dir ? `${dir}/${name.slice(4)}` : name.slice(4));
    // rm removes a symlink itself, never what it points to.
    if (path) await rm(path, { recursive: true, force: true });
  }
}

/** Unpack a derived layout into `target` (which must not exist). False when `layout` is not one. */
export async function unpackDerived(layout: string, target: string, rootless: boolean): Promise<boolean> {
  const layer = await derivedLayer(layout);
  if (!layer) return false;
  const umoci = tool('umoci');
  await exec(
    umoci,
    ['raw', 'unpack', ...(rootless ? ['--rootless'] : []), '--image', `${layout}:${BASE_TAG}`, target],
    `cannot unpack the base of ${layout}`,
    { dieWithParent: true },
  );
  await applyWhiteouts(target, await tarWhiteouts(layer));
  await exec(
    'tar',
    [
      '--extract',
      '--file',
      layer,
      '--directory',
      target,
      '--preserve-permissions',
      '--numeric-owner',
      rootless ? '--no-same-owner' : '--same-owner',
      '--exclude=.wh.*',
    ],
    `cannot unpack the install layer of ${layout}`,
    { dieWithParent: true },
  );
  return true;
}
