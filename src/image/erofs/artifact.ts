/**
 * An EROFS entry as an OCI artifact in a registry, beside the runnable image: one layer (the
 * image file, compressed with zstd) and a config that holds the entry's record and the labels
 * of the image it is, so that a puller reads both (remoteLabels) before anything large is
 * downloaded. skopeo moves it as any manifest, every blob's digest checked; docker and podman
 * never see it (another tag). A fresh machine then mounts what it downloaded, as from the
 * Actions cache, instead of unpacking thousands of files.
 */
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ArchInfo } from '../../emulation/arch.js';
import { exec } from '../../util/exec.js';
import { CellSetupError } from '../../util/errors.js';
import { sha256File } from '../../util/fs.js';
import { which } from '../../util/which.js';
import { MANIFEST_TYPE, blobPath, writeBlob, writeIndex } from '../layout.js';
import type { ImageReference } from '../reference.js';
import type { RegistryOptions } from '../registry-auth.js';
import { pullToLayout, pushLayout } from '../remote.js';
import { Store, type ErofsRecord } from '../store.js';
import { takeErofsEntry } from './entry.js';

const ARTIFACT_TYPE = 'application/vnd.build-cell.erofs.v1';
const CONFIG_TYPE = 'application/vnd.build-cell.erofs.config.v1+json';
const LAYER_TYPE = 'application/vnd.build-cell.erofs.v1+zstd';
/** The config's field that holds the entry's record. */
const RECORD_FIELD = 'dev.build-cell.erofs';
const TAG = 'erofs';

/** zstd on PATH (both directions need it), or undefined. */
export function artifactZstd(): string | undefined {
  return which('zstd');
}

/** Push `from`'s EROFS entry of `digest` to `target` (docker://repo:tag), labelled with `labels`. */
export async function pushErofsArtifact(options: {
  from: Store;
  arch: ArchInfo;
  digest: string;
  labels: Record<string, string>;
  target: ImageReference;
  registry: RegistryOptions;
  temp: string;
}): Promise<void> {
  const { from, arch, digest, temp } = options;
  const zstd = artifactZstd();
  const record = await from.readErofs(arch, digest);
  if (!zstd || !record) throw new CellSetupError(`no EROFS entry of ${digest} to push, or no zstd on PATH`);
  await mkdir(join(temp, 'blobs', 'sha256'), { recursive: true });
  const packed = join(temp, 'layer.zst');
  await exec(
    zstd,
    ['-q', '-T0', '-3', '-f', '-o', packed, from.erofsFile(arch, digest)],
    'cannot compress the EROFS image',
  );
  const layer = await moveToBlob(temp, packed);
  const config = await writeBlob(
    temp,
    JSON.stringify({
      architecture: arch.ociArch,
      os: 'linux',
      config: { Labels: options.labels },
      rootfs: { type: 'layers', diff_ids: [] },
      [RECORD_FIELD]: record,
    }),
  );
  const manifest = await writeBlob(
    temp,
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MANIFEST_TYPE,
      artifactType: ARTIFACT_TYPE,
      config: { mediaType: CONFIG_TYPE, ...config },
      layers: [{ mediaType: LAYER_TYPE, ...layer }],
    }),
  );
  const tagged = { mediaType: MANIFEST_TYPE, ...manifest, annotations: { 'org.opencontainers.image.ref.name': TAG } };
  await writeIndex(temp, [tagged]);
  await pushLayout(temp, TAG, options.target, options.registry);
}

/**
 * Pull the artifact `digest` of `source` (its labels already checked by the caller) and put
 * its EROFS entry into `into`, checked against its record (size, every chunk's sha256) as an
 * Actions cache entry is. Returns the record; its digest, the artifact's, names the image in
 * the store.
 */
export async function pullErofsArtifact(options: {
  source: ImageReference;
  digest: string;
  registry: RegistryOptions;
  arch: ArchInfo;
  into: Store;
  temp: string;
}): Promise<ErofsRecord> {
  const { arch, temp } = options;
  const zstd = artifactZstd();
  if (!zstd) throw new CellSetupError('zstd is not on PATH');
  const layout = join(temp, 'layout');
  await pullToLayout(options.source, options.digest, options.registry, layout, TAG);
  const read = await readArtifact(layout, options.digest);
  if (read.record.arch !== arch.name)
    throw new CellSetupError(`the EROFS artifact is for ${read.record.arch}, not ${arch.name}`);
  // Named by the artifact's own manifest digest, which skopeo checked, never by the digest its
  // record claims: a record may not plant an entry under another image's name in the store.
  const record: ErofsRecord = { ...read.record, digest: options.digest };
  const { layer } = read;
  // Staged as a store of its own, then taken in as the Actions cache's entries are.
  const staging = new Store(join(temp, 'staging'));
  const file = staging.erofsFile(arch, record.digest);
  await mkdir(join(file, '..'), { recursive: true });
  await exec(zstd, ['-q', '-d', '-f', '-o', file, blobPath(layout, layer)], 'cannot decompress the EROFS image');
  await rm(blobPath(layout, layer), { force: true });
  await staging.writeErofsRecord(arch, record);
  return takeErofsEntry(staging, options.into, arch, record.digest);
}

/** The record and the layer digest of a pulled artifact, its media types checked. */
async function readArtifact(layout: string, digest: string): Promise<{ record: ErofsRecord; layer: string }> {
  const refuse = (why: string) => new CellSetupError(`${digest} is not a build-cell EROFS artifact: ${why}`);
  const manifest = JSON.parse(await readFile(blobPath(layout, digest), 'utf8')) as {
    artifactType?: string;
    config?: { mediaType?: string; digest?: string };
    layers?: Array<{ mediaType?: string; digest?: string }>;
  };
  const layer = manifest.layers?.[0];
  if (manifest.artifactType !== ARTIFACT_TYPE || manifest.config?.mediaType !== CONFIG_TYPE || !manifest.config.digest)
    throw refuse(`artifactType ${String(manifest.artifactType)}`);
  if (manifest.layers?.length !== 1 || layer?.mediaType !== LAYER_TYPE || !layer.digest) throw refuse('its layer');
  const config = JSON.parse(await readFile(blobPath(layout, manifest.config.digest), 'utf8')) as Record<
    string,
    unknown
  >;
  const record = config[RECORD_FIELD] as ErofsRecord | undefined;
  if (
    !record ||
    typeof record !== 'object' ||
    typeof record.digest !== 'string' ||
    !/^sha256:[a-f0-9]{64}$/.test(record.digest)
  )
    throw refuse('its config holds no record');
  return { record, layer: layer.digest };
}

async function moveToBlob(layout: string, file: string): Promise<{ digest: string; size: number }> {
  const [hex, info] = await Promise.all([sha256File(file), stat(file)]);
  const digest = `sha256:${hex}`;
  await rename(file, blobPath(layout, digest));
  return { digest, size: info.size };
}
