/**
 * The derived image as a real OCI image layout: the base's blobs (hard links, not copies),
 * the install's layer (uncompressed: writing it costs no compression, the Actions cache
 * compresses with zstd, and `skopeo copy --dest-compress` compresses for a registry), a config
 * whose diff_ids and history gain the layer, a manifest, and index.json tagged as the store
 * tags every layout. `skopeo copy oci:DIR:image docker://...` pushes it.
 */
import { copyFile, link, mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LAYOUT_RECORD, type LayoutRecord } from '../image/store.js';
import { BASE_TAG, LAYER_TYPE, LAYOUT_TAG, MANIFEST_TYPE, blobPath, writeBlob, writeIndex } from '../image/layout.js';

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

export interface DerivedLayout {
  /** The derived manifest's digest: the image's digest. */
  digest: string;
  layer: { digest: string; size: number };
}

/**
 * Write the derived layout into `dir` (empty, on the same filesystem as `baseLayout`), with the
 * layer file (already written, uncompressed) moved in as a blob.
 */
export async function writeDerivedLayout(options: {
  baseLayout: string;
  dir: string;
  layerFile: string;
  layer: { digest: string; size: number };
  createdBy: string;
  comment: string;
  /** Added to the base's labels (install/registry.ts: the key's parts). */
  labels: Record<string, string>;
  record: Pick<LayoutRecord, 'reference' | 'arch'>;
}): Promise<DerivedLayout> {
  const { baseLayout, dir, layer } = options;
  const index = JSON.parse(await readFile(join(baseLayout, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
  const baseDescriptor = index.manifests[0]!;
  const manifest = JSON.parse(await readFile(blobPath(baseLayout, baseDescriptor.digest), 'utf8')) as {
    config: Descriptor;
    layers: Descriptor[];
    [k: string]: unknown;
  };
  const config = JSON.parse(await readFile(blobPath(baseLayout, manifest.config.digest), 'utf8')) as {
    config?: { Labels?: Record<string, string> | null; [k: string]: unknown };
    rootfs?: { type: string; diff_ids: string[] };
    history?: unknown[];
    [k: string]: unknown;
  };

  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  for (const name of await readdir(join(baseLayout, 'blobs', 'sha256'))) {
    const from = join(baseLayout, 'blobs', 'sha256', name);
    const to = join(dir, 'blobs', 'sha256', name);
    // A hard link where the filesystem allows it (blobs are never written to once made).
    await link(from, to).catch(() => copyFile(from, to));
  }
  await rename(options.layerFile, blobPath(dir, layer.digest));

  const created = new Date().toISOString();
  const newConfig = {
    ...config,
    created,
    config: { ...config.config, Labels: { ...config.config?.Labels, ...options.labels } },
    rootfs: { type: 'layers', diff_ids: [...(config.rootfs?.diff_ids ?? []), layer.digest] },
    history: [...(config.history ?? []), { created, created_by: options.createdBy, comment: options.comment }],
  };
  const configBlob = await writeBlob(dir, JSON.stringify(newConfig));
  const newManifest = {
    ...manifest,
    config: { ...manifest.config, digest: configBlob.digest, size: configBlob.size },
    layers: [...manifest.layers, { mediaType: LAYER_TYPE, digest: layer.digest, size: layer.size }],
  };
  const manifestBlob = await writeBlob(dir, JSON.stringify(newManifest));
  const descriptor: Descriptor = {
    mediaType: MANIFEST_TYPE,
    digest: manifestBlob.digest,
    size: manifestBlob.size,
    annotations: { 'org.opencontainers.image.ref.name': LAYOUT_TAG },
  };
  // The base stays tagged too: a fresh machine unpacks it with umoci and the install's layer with
  // GNU tar (restore.ts). The image's own entry comes first.
  const base: Descriptor = {
    mediaType: baseDescriptor.mediaType,
    digest: baseDescriptor.digest,
    size: baseDescriptor.size,
    annotations: { 'org.opencontainers.image.ref.name': BASE_TAG },
  };
  await writeIndex(dir, [descriptor, base]);
  const record: LayoutRecord = {
    ...options.record,
    digest: manifestBlob.digest,
    layoutDigest: manifestBlob.digest,
    resolvedAt: created,
  };
  await writeFile(join(dir, LAYOUT_RECORD), `${JSON.stringify(record, null, 2)}\n`);
  return { digest: manifestBlob.digest, layer };
}
