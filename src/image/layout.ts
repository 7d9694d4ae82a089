/**
 * What build-cell's OCI layouts look like, for every module that reads or writes one: the tag
 * of the image in a stored layout, the tag of a derived image's base, the media type of the
 * install step's layer, and where a blob lives.
 */
import { join } from 'node:path';

/** The tag of the image in every layout of the store. */
export const LAYOUT_TAG = 'image';
/** The tag of the base image's manifest in a derived layout (the install step's; see derived-unpack.ts). */
export const BASE_TAG = 'base';
/** The install step's own layer: an uncompressed tar. */
export const LAYER_TYPE = 'application/vnd.oci.image.layer.v1.tar';

/** A blob of `layout` by its digest (`sha256:HEX` -> blobs/sha256/HEX). */
export function blobPath(layout: string, digest: string): string {
  return join(layout, 'blobs', ...digest.split(':'));
}
