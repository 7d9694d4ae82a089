/**
 * What build-cell's OCI layouts look like, for every module that reads or writes one: the tag
 * of the image in a stored layout, the tag of a derived image's base, the media type of the
 * install step's layer, where a blob lives, and the writing of a small blob and of the index.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { lazyCrypto } from '../util/builtins.js';

/** The tag of the image in every layout of the store. */
export const LAYOUT_TAG = 'image';
/** The tag of the base image's manifest in a derived layout (the install step's; see derived-unpack.ts). */
export const BASE_TAG = 'base';
/** An OCI image manifest's media type (build-cell writes no other kind). */
export const MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json';
/** The install step's own layer: an uncompressed tar. */
export const LAYER_TYPE = 'application/vnd.oci.image.layer.v1.tar';

/** A blob of `layout` by its digest (`sha256:HEX` -> blobs/sha256/HEX). */
export function blobPath(layout: string, digest: string): string {
  return join(layout, 'blobs', ...digest.split(':'));
}

/** `content` (a config, a manifest) written as a blob of `layout`, whose blobs/sha256 exists. */
export async function writeBlob(layout: string, content: string): Promise<{ digest: string; size: number }> {
  const bytes = Buffer.from(content);
  const digest = `sha256:${lazyCrypto().createHash('sha256').update(bytes).digest('hex')}`;
  await writeFile(blobPath(layout, digest), bytes, { mode: 0o644 });
  return { digest, size: bytes.length };
}

/** The layout's oci-layout marker and index.json, listing `manifests` (descriptors, tagged by their annotations). */
export async function writeIndex(layout: string, manifests: object[]): Promise<void> {
  await writeFile(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests }));
}
