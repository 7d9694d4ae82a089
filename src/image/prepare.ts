/**
 * Image preparation: reference -> pristine rootfs in the store, reused across cells.
 *
 * pull "missing": a reference already resolved in the store is used with no network at all.
 * pull "always":  the reference is re-resolved (one manifest request); an unchanged digest
 *                 reuses the stored layout and rootfs.
 * pull "never":   only the store is used.
 */
import { existsSync, readFileSync } from 'node:fs';
import { readFile, writeFile, rm } from 'node:fs/promises';
import type { Owner } from '../util/fs.js';
import { now, phaseTimer } from '../util/timing.js';
import { sha256Hex } from '../util/random.js';
import { join } from 'node:path';
import { ACCEPTED_ARCH_NAMES, type ArchInfo } from '../emulation/arch.js';
import { CellSetupError, UserError, show } from '../util/errors.js';
import { exec } from '../util/exec.js';
import { withLock } from '../util/lock.js';
import { tool } from '../util/which.js';
import { dockerReferenceByDigest, type ImageReference } from './reference.js';
import { secretsOf, withRegistryArgs, type RegistryOptions } from './registry-auth.js';
import {
  LAYOUT_RECORD,
  Store,
  writeRootSentinel,
  type ImageConfig,
  type LayoutRecord,
  type RefRecord,
} from './store.js';
import { unpackDerived } from './derived-unpack.js';
import { LAYOUT_TAG, blobPath } from './layout.js';
import { copyEntry, handToCache, type Handoff } from './cache-handoff.js';
import { fromErofs, type ErofsImage } from './erofs/restore.js';

export type PullPolicy = 'missing' | 'always' | 'never';
export const PULL_POLICIES: readonly PullPolicy[] = ['missing', 'always', 'never'];

export interface PrepareRequest {
  ref: ImageReference;
  arch: ArchInfo;
  pull: PullPolicy;
  registry: RegistryOptions;
  /** Unpack without root (umoci --rootless): files are owned by the invoking user. */
  rootless?: boolean;
  /** The manifest digest for `arch`, when the caller already resolved it (the action does, for its cache key). */
  digest?: string;
  /**
   * A second store (same layout as STATE/images) that the Actions cache restores into and
   * saves from: layouts missing from the store are taken from it, and new ones are put there.
   */
  cacheDir?: string;
  /** Owner of what is written to cacheDir (the runner user behind sudo). */
  cacheOwner?: Owner;
  /** The image must have its OCI layout (an install step's base): an EROFS entry alone will not do. */
  needLayout?: boolean;
  /** The rootfs as a directory (`build-cell prepare` prints it): an EROFS entry is extracted, not mounted. */
  needRootfs?: boolean;
}

export interface PreparedImage {
  /** The rootfs directory; for a mounted image, its mount point (empty but for the sentinel). */
  rootfs: string;
  /** The image file mounted read-only on `rootfs` inside each cell (see image/erofs/), and how. */
  mount?: { file: string; options: string };
  layoutDir: string;
  digest: string;
  /** Which steps ran: none of them on a warm run. */
  resolved: boolean;
  copied: boolean;
  unpacked: boolean;
  /** The layout (or EROFS image) came from cacheDir (the Actions cache) rather than the registry. */
  fromCache: boolean;
  /** How the rootfs came to be, when not from the layout: an EROFS image mounted or extracted, and why. */
  how?: string;
  /** What the front end should say as a warning (a refused cache entry). */
  warnings?: string[];
  timings: { resolve?: number; pull?: number; unpack?: number };
  /** From the image config: its environment (NAME=VALUE) and working directory. */
  config: ImageConfig;
}

export type { ImageConfig } from './store.js';

const INDEX_TYPES = new Set([
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
]);

/** The manifest digest a request names: given, known to the store, or resolved (one manifest request). */
export interface DigestChoice {
  digest: string;
  resolved: boolean;
  /** What the store itself recorded for the reference, if anything (a cache dir's record is not the store's). */
  known?: { digest: string };
  resolveMs?: number;
}

export async function imageDigest(store: Store, request: PrepareRequest): Promise<DigestChoice> {
  const { ref, arch } = request;
  const cache = request.cacheDir ? new Store(request.cacheDir) : undefined;
  const known = await store.readRef(ref.full, arch);
  // A reference the Actions cache restored (an install step's derived image) is known by its
  // cache dir until this run writes it into the store.
  const digest = request.digest ?? known?.digest ?? (await cache?.readRef(ref.full, arch))?.digest;
  if (request.pull === 'never' && !digest) {
    throw new UserError(
      'pull',
      `image ${show(ref.original)} (${arch.name}) is not in the store ${store.stateDir} and pull is "never"`,
    );
  }
  if (digest && !(request.pull === 'always' && !request.digest)) return { digest, resolved: false, known };
  const start = now();
  const resolved = await resolveDigest(ref, arch, request.registry);
  return { digest: resolved, resolved: true, known, resolveMs: now() - start };
}

export async function prepareImage(
  store: Store,
  request: PrepareRequest,
  chosen?: DigestChoice,
): Promise<PreparedImage> {
  const { ref, arch } = request;
  const cache = request.cacheDir ? new Store(request.cacheDir) : undefined;
  const timer = phaseTimer<keyof PreparedImage['timings']>();
  const { digest, resolved, known, resolveMs } = chosen ?? (await imageDigest(store, request));
  if (resolveMs !== undefined) timer.since('resolve', now() - resolveMs);
  const record = { reference: ref.full, arch: arch.name, digest, resolvedAt: new Date().toISOString() };
  await holdImage(store, request, digest);
  // Warm fast path: a complete store entry is only ever renamed into place, so no lock is needed to use it.
  const hasLayout = !!(await store.readLayout(arch, digest));
  const ready = hasLayout && store.hasRootfs(arch, digest);
  // Else an EROFS entry (a fresh runner's Actions cache): mounted or extracted, never unpacked.
  const erofs =
    hasLayout || request.needLayout
      ? { warnings: [] }
      : await timer.timed('unpack', () => erofsImage(store, cache, request, digest));
  if (erofs.image) {
    if (known?.digest !== digest) await store.writeRef(record, arch);
    const handed =
      cache && !erofs.image.fromCache ? await handToCache(store, cache, handoff(request, record, 'erofs')) : undefined;
    const warnings = [...erofs.warnings, ...(handed ? [handed] : [])];
    return preparedFromErofs(erofs.image, digest, resolved, timer.timings, warnings);
  }
  const steps = ready ? NO_STEPS : await fetchAndUnpack(store, cache, request, digest, timer.timed);
  if (known?.digest !== digest) await store.writeRef(record, arch);
  // A cache failure never fails a build: the image is simply not saved, and the front end says so.
  const layoutDir = store.layoutDir(arch, digest);
  const config = await readImageConfig(layoutDir);
  const handed =
    cache && !steps.fromCache
      ? await handToCache(store, cache, handoff(request, record, { rootfs: config }))
      : undefined;
  const warnings = [...erofs.warnings, ...(handed ? [handed] : [])];
  return {
    rootfs: store.rootfsDir(arch, digest),
    layoutDir,
    digest,
    resolved,
    ...steps,
    timings: timer.timings,
    config,
    ...(warnings.length ? { warnings } : {}),
  };
}

type Steps = Pick<PreparedImage, 'copied' | 'unpacked' | 'fromCache'>;
const NO_STEPS: Steps = { copied: false, unpacked: false, fromCache: false };
type Timed = ReturnType<typeof phaseTimer<keyof PreparedImage['timings']>>['timed'];

/** Under the image's lock: the layout from the cache dir or the registry, then unpacked. */
function fetchAndUnpack(
  store: Store,
  cache: Store | undefined,
  request: PrepareRequest,
  digest: string,
  timed: Timed,
): Promise<Steps> {
  const { ref, arch } = request;
  const layoutDir = store.layoutDir(arch, digest);
  return withImageLock(store, request, digest, async () => {
    const steps = { ...NO_STEPS };
    await store.removeStaleTemps();
    if (!(await store.readLayout(arch, digest))) {
      if (cache && (await cache.readLayout(arch, digest))) {
        await timed('pull', () => copyEntry(store, cache.layoutDir(arch, digest), layoutDir));
        steps.fromCache = true;
      } else {
        if (request.pull === 'never')
          throw new UserError(
            'pull',
            `the layout of ${show(ref.original)} is missing from the store and pull is "never"`,
          );
        await timed('pull', () => copyLayout(store, request, digest));
        steps.copied = true;
      }
    }
    if (!store.hasRootfs(arch, digest)) {
      try {
        await timed('unpack', () => unpackRootfs(store, { arch, digest }, !!request.rootless));
      } catch (error) {
        // A layout that cannot be unpacked must not be reused by the next run.
        await rm(layoutDir, { recursive: true, force: true });
        throw new CellSetupError(`cannot prepare ${ref.original} (${arch.name}): ${(error as Error).message}`);
      }
      steps.unpacked = true;
    }
    return steps;
  });
}

/**
 * Hold the image for this run (and mark its use), then wait out a lock held on it now: a
 * prepare, or a prune that may be removing it. After that no prune removes it (it sees the
 * hold), so what the caller then finds stays whole (see ./usage.ts). One existsSync when free.
 */
export async function holdImage(store: Store, request: Pick<PrepareRequest, 'arch' | 'ref'>, digest: string) {
  store.useImage(request.arch, digest);
  if (existsSync(imageLockDir(store, request.arch, digest)))
    await withImageLock(store, request, digest, () => Promise.resolve());
}

export function imageLockDir(store: Store, arch: ArchInfo, digest: string): string {
  return store.lockDir(`image-${store.entryName(arch, digest)}`);
}

/** The lock of one image's store entries (layout, rootfs, EROFS image), whoever prepares or prunes it. */
function withImageLock<T>(
  store: Store,
  request: Pick<PrepareRequest, 'arch' | 'ref'>,
  digest: string,
  fn: () => Promise<T>,
): Promise<T> {
  return withLock(imageLockDir(store, request.arch, digest), fn, {
    what: `preparing ${request.ref.original}`,
  });
}

function handoff(request: PrepareRequest, record: RefRecord, from: Handoff['from']): Handoff {
  return { arch: request.arch, record, rootless: !!request.rootless, owner: request.cacheOwner, from };
}

function preparedFromErofs(
  image: ErofsImage,
  digest: string,
  resolved: boolean,
  timings: PreparedImage['timings'],
  warnings: string[],
): PreparedImage {
  const { rootfs, mount, config, how, fromCache } = image;
  return {
    rootfs,
    ...(mount ? { mount } : {}),
    layoutDir: '',
    digest,
    resolved,
    copied: false,
    unpacked: false,
    fromCache,
    timings,
    config,
    how,
    ...(warnings.length ? { warnings } : {}),
  };
}

/**
 * The image from an EROFS entry of the store or the cache dir (the caller has found no layout
 * in the store, and needs none).
 */
async function erofsImage(
  store: Store,
  cache: Store | undefined,
  request: PrepareRequest,
  digest: string,
): Promise<{ image?: ErofsImage; warnings: string[] }> {
  const { arch } = request;
  if (!(await store.readErofs(arch, digest)) && !(await cache?.readErofs(arch, digest))) return { warnings: [] };
  const use = { rootless: !!request.rootless, needRootfs: !!request.needRootfs };
  return withImageLock(store, request, digest, () => fromErofs(store, cache, arch, digest, use));
}

/** The manifest digest for `arch`: one raw manifest request, no blobs. */
export async function resolveDigest(ref: ImageReference, arch: ArchInfo, registry: RegistryOptions): Promise<string> {
  const skopeo = tool('skopeo');
  // skopeo refuses name:tag@digest; the digest is what counts.
  const target =
    ref.transport === 'docker' && ref.pinnedDigest ? dockerReferenceByDigest(ref, ref.pinnedDigest) : ref.full;
  const raw = await withRegistryArgs(ref, registry, '--', (args) =>
    exec(skopeo, ['inspect', '--raw', ...args, target], `cannot read the manifest of ${ref.original}`, {
      secrets: secretsOf(registry),
      dieWithParent: true,
    }),
  );
  return pickDigest(ref, arch, raw.stdout);
}

/** From a raw manifest or index, the digest of the manifest for `arch`. Pure. */
export function pickDigest(ref: ImageReference, arch: ArchInfo, rawManifest: string): string {
  let manifest: {
    mediaType?: string;
    manifests?: Array<{ digest: string; platform?: { architecture?: string; os?: string; variant?: string } }>;
  };
  const notAManifest = () =>
    new CellSetupError(
      `the registry answered for ${ref.original} with something that is not a manifest: ${show(rawManifest.slice(0, 120))}`,
    );
  try {
    manifest = JSON.parse(rawManifest) as typeof manifest;
  } catch {
    throw notAManifest();
  }
  if (!manifest || typeof manifest !== 'object' || Array.isArray(manifest)) throw notAManifest();
  if (Array.isArray(manifest.manifests) || INDEX_TYPES.has(manifest.mediaType ?? '')) {
    const entries = manifest.manifests ?? [];
    const matches = entries.filter((m) => m.platform?.os === 'linux' && m.platform.architecture === arch.ociArch);
    const exact =
      matches.find((m) => (m.platform?.variant ?? '') === (arch.ociVariant ?? '')) ??
      (arch.ociArch === 'arm64' ? matches.find((m) => m.platform?.variant === 'v8') : undefined) ??
      matches.find((m) => !m.platform?.variant);
    if (!exact) {
      const available = entries
        .map((m) => [m.platform?.os, m.platform?.architecture, m.platform?.variant].filter(Boolean).join('/'))
        .join(', ');
      throw new UserError(
        'arch',
        `image ${show(ref.original)} has no linux/${arch.name} variant; it has: ${available || 'none'} (accepted arch names: ${ACCEPTED_ARCH_NAMES.join(', ')})`,
      );
    }
    if (!/^sha256:[a-f0-9]{64}$/.test(exact.digest))
      throw new CellSetupError(`malformed digest in the index of ${ref.original}: ${show(exact.digest)}`);
    return exact.digest;
  }
  if (ref.pinnedDigest) return ref.pinnedDigest;
  return `sha256:${sha256Hex(rawManifest)}`;
}

async function copyLayout(store: Store, request: PrepareRequest, digest: string): Promise<void> {
  const { ref, arch, registry } = request;
  const skopeo = tool('skopeo');
  const temp = await store.tempDir('layout');
  try {
    // Copy exactly the resolved manifest, so a tag that moves meanwhile cannot swap the image.
    const source = ref.transport === 'docker' ? dockerReferenceByDigest(ref, digest) : ref.full;
    const platform = [
      '--override-os',
      'linux',
      '--override-arch',
      arch.ociArch,
      ...(arch.ociVariant ? ['--override-variant', arch.ociVariant] : []),
    ];
    await withRegistryArgs(ref, registry, '--src-', (args) =>
      exec(
        skopeo,
        ['copy', '--quiet', ...args, ...platform, source, `oci:${temp}:${LAYOUT_TAG}`],
        `cannot copy ${ref.original} (${arch.name})`,
        { secrets: secretsOf(registry), dieWithParent: true },
      ),
    );
    const index = JSON.parse(await readFile(join(temp, 'index.json'), 'utf8')) as {
      manifests: Array<{ digest: string }>;
    };
    const layoutDigest = index.manifests[0]?.digest;
    if (!layoutDigest)
      throw new CellSetupError(`skopeo copied ${ref.original} but the layout ${temp} lists no manifest`);
    await checkPlatform(temp, layoutDigest, request);
    const record: LayoutRecord = {
      reference: ref.full,
      arch: arch.name,
      digest,
      layoutDigest,
      resolvedAt: new Date().toISOString(),
    };
    await writeFile(join(temp, LAYOUT_RECORD), `${JSON.stringify(record, null, 2)}\n`);
    await store.commit(temp, store.layoutDir(arch, digest));
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
}

type ImageConfigBlob = {
  architecture?: string;
  os?: string;
  config?: { Env?: string[]; WorkingDir?: string; Labels?: Record<string, string> };
};

/** The image config of a manifest; anything that is not an image manifest with a config and layers is refused. */
async function readManifestConfig(layout: string, manifestDigest: string, what = layout): Promise<ImageConfigBlob> {
  let manifest: { config?: { digest?: string }; layers?: unknown };
  let config: ImageConfigBlob;
  try {
    // Synchronous: two small blobs, read on every warm run.
    manifest = JSON.parse(readFileSync(blobPath(layout, manifestDigest), 'utf8')) as typeof manifest;
    if (!manifest || typeof manifest.config?.digest !== 'string' || !Array.isArray(manifest.layers))
      throw new Error('no config or layers');
    config = JSON.parse(readFileSync(blobPath(layout, manifest.config.digest), 'utf8')) as ImageConfigBlob;
    if (!config || typeof config !== 'object') throw new Error('the config is not an object');
  } catch (error) {
    throw new CellSetupError(`${what} is not a usable image manifest (${(error as Error).message})`);
  }
  return config;
}

export async function readImageConfig(layout: string): Promise<ImageConfig> {
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as {
    manifests: Array<{ digest: string }>;
  };
  const config = await readManifestConfig(layout, index.manifests[0]!.digest);
  const labels = Object.entries(config.config?.Labels ?? {}).filter(([name]) => name.startsWith('dev.build-cell.'));
  return {
    env: config.config?.Env ?? [],
    workingDir: config.config?.WorkingDir || undefined,
    ...(labels.length ? { labels: Object.fromEntries(labels) } : {}),
  };
}

/** A single-platform image must actually be for the requested architecture. */
async function checkPlatform(layout: string, manifestDigest: string, request: PrepareRequest): Promise<void> {
  const config = await readManifestConfig(layout, manifestDigest, `what the registry sent for ${request.ref.original}`);
  if (config.architecture && config.architecture !== request.arch.ociArch) {
    throw new UserError(
      'arch',
      `image ${show(request.ref.original)} is built for ${config.os ?? 'linux'}/${config.architecture}, not ${request.arch.name}`,
    );
  }
}

async function unpackRootfs(store: Store, image: { arch: ArchInfo; digest: string }, rootless: boolean): Promise<void> {
  const umoci = tool('umoci');
  const layoutDir = store.layoutDir(image.arch, image.digest);
  const temp = await store.tempDir('rootfs');
  try {
    const target = join(temp, 'rootfs');
    // A derived image (the install step) restores faster by its own unpacker; any other by umoci.
    if (!(await unpackDerived(layoutDir, target, rootless))) {
      await exec(
        umoci,
        ['raw', 'unpack', ...(rootless ? ['--rootless'] : []), '--image', `${layoutDir}:${LAYOUT_TAG}`, target],
        `cannot unpack ${layoutDir}`,
        { dieWithParent: true },
      );
    }
    await writeRootSentinel(target, store.stateDir);
    await store.commitRootfs(target, image.arch, image.digest);
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
}
