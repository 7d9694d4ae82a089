/**
 * The registry tier of the install step: after the store and the Actions cache dir, before the
 * install runs. One tag per install key in the user's repository, REPO:install-ARCH-HASH (the
 * key's hash covers arch, base digest, script, shell, install-key and env names, so matrix legs
 * and scripts never share a tag), holding the derived image as a real OCI image: the base's
 * layers, the install's layer, the base's config with labels naming the key's parts. docker and
 * podman run it as it is.
 *
 * A pull is checked as every pull is (skopeo verifies each blob's digest, the platform is
 * checked), and first by its labels, read from its config before any layer is downloaded: an
 * image whose labels name another key is refused. A push follows an install that ran here.
 * Nothing here fails a build: every failure comes back as a warning, and the install runs (or
 * the build stays green).
 */
import type { ArchInfo } from '../emulation/arch.js';
import { archKey } from '../emulation/arch.js';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { prepareImage, readImageConfig, resolveDigest, type PrepareRequest } from '../image/prepare.js';
import { isNotFound, pushLayout, remoteLabels } from '../image/remote.js';
import { artifactZstd, pullErofsArtifact, pushErofsArtifact } from '../image/erofs/artifact.js';
import { writeErofsEntry } from '../image/erofs/entry.js';
import { parseReference, type ImageReference } from '../image/reference.js';
import { registryHost, type RegistryOptions } from '../image/registry-auth.js';
import { Store } from '../image/store.js';
import { LAYOUT_TAG } from '../image/layout.js';
import { UserError, errorMessage, show } from '../util/errors.js';
import { now } from '../util/timing.js';
import { which } from '../util/which.js';
import { sha256Hex } from '../util/random.js';
import { INSTALL_FORMAT, type InstallIdentity } from './key.js';

/** Where the install step's derived images live in a registry, and whether this run may push. */
export interface InstallRegistry {
  /** host/path of the repository, no tag (parseRepository). */
  repository: string;
  push: boolean;
}

/** The labels a derived image carries (its config's Labels): the key's parts, never a value of the env. */
export const LABEL = {
  key: 'dev.build-cell.install.key',
  format: 'dev.build-cell.install.format',
  arch: 'dev.build-cell.install.arch',
  base: 'dev.build-cell.install.base-digest',
  script: 'dev.build-cell.install.script-sha256',
  shell: 'dev.build-cell.install.shell',
  installKey: 'dev.build-cell.install.install-key-sha256',
  envNames: 'dev.build-cell.install.env-names',
  source: 'org.opencontainers.image.source',
} as const;

/** What a derived image's labels are made of. */
export interface LabelParts {
  hash: string;
  arch: ArchInfo;
  baseDigest: string;
  identity: InstallIdentity;
  /** The repository the image was built for (the action: its GitHub repository's URL). */
  source?: string;
}

/** The labels of a derived image. Pure. */
export function installLabels(parts: LabelParts): Record<string, string> {
  const { identity } = parts;
  return {
    [LABEL.key]: parts.hash,
    [LABEL.format]: INSTALL_FORMAT,
    [LABEL.arch]: archKey(parts.arch),
    [LABEL.base]: parts.baseDigest,
    [LABEL.script]: sha256Hex(identity.script),
    [LABEL.shell]: identity.shell,
    // Hashed: an install-key may be anything, and a registry may be public.
    [LABEL.installKey]: sha256Hex(identity.key),
    [LABEL.envNames]: [...new Set(identity.keyEnvNames)].sort().join(','),
    ...(parts.source ? { [LABEL.source]: parts.source } : {}),
  };
}

/** Why `labels` do not name the key `expected` (its labels), or undefined when they do. Pure. */
export function labelMismatch(labels: Record<string, string>, expected: Record<string, string>): string | undefined {
  const wrong = Object.entries(expected)
    .filter(([name]) => name !== LABEL.source)
    .filter(([name, value]) => labels[name] !== value)
    .map(
      ([name, value]) =>
        `${name} is ${labels[name] === undefined ? 'missing' : show(labels[name])}, not ${show(value)}`,
    );
  return wrong.length ? wrong.join('; ') : undefined;
}

/** The repository a workflow runs for, as a URL (a label of the images it builds), or undefined outside one. Pure. */
export function sourceRepository(env: NodeJS.ProcessEnv): string | undefined {
  const repository = env.GITHUB_REPOSITORY;
  if (!repository || !/^[\w.-]+\/[\w.-]+$/.test(repository)) return undefined;
  return `${(env.GITHUB_SERVER_URL || 'https://github.com').replace(/\/+$/, '')}/${repository}`;
}

/** The tag of an install key: install-ARCH-HASH (at most 78 characters, within the registry's 128). Pure. */
export function installTag(arch: ArchInfo, hash: string): string {
  return `install-${archKey(arch)}-${hash}`;
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const HOST =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::\d{1,5})?$/;

/**
 * `--install-registry` / `install-registry`: a repository, `[docker://]HOST[:PORT]/PATH` or a
 * Docker Hub `NAME/PATH`, without a tag or digest (build-cell makes the tags). Returns
 * host/path, lowercased. Pure.
 */
export function parseRepository(value: string, field: string): string {
  const accepted = 'a repository without a tag, such as ghcr.io/acme/build-envs or localhost:5000/envs';
  // Lowercased: a registry's names are, and \${{ github.repository }} may not be (as docker/metadata-action does).
  const name = value
    .trim()
    .replace(/^docker:\/\//, '')
    .toLowerCase();
  if (!name || /[\s\0@]/.test(name)) throw new UserError(field, `must be ${accepted}, got ${show(value)}`);
  const parts = name.split('/');
  const first = parts[0]!;
  const hasHost = parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost');
  const path = hasHost ? parts.slice(1) : parts;
  if (hasHost && !HOST.test(first))
    throw new UserError(field, `has a malformed registry host ${show(first)}: must be ${accepted}`);
  if (path.some((p) => p.includes(':')))
    throw new UserError(
      field,
      `must not name a tag (${show(value)}): build-cell tags each install key itself; give ${accepted}`,
    );
  if (!path.length || !path.every((p) => COMPONENT.test(p)))
    throw new UserError(
      field,
      `has a malformed repository path in ${show(value)}: lowercase letters, digits and . _ - between them; must be ${accepted}`,
    );
  const host = hasHost ? first : 'docker.io';
  const full = [host, ...(hasHost || path.length > 1 ? path : ['library', ...path])].join('/');
  if (full.length > 255) throw new UserError(field, `is longer than 255 characters: ${show(value)}`);
  return full;
}

/**
 * Which registry the user's username and password are for: the install registry's, and the
 * image's only where it is the same host (a public base image from another registry is pulled
 * anonymously: Docker Hub refuses a pull that carries another registry's token). An auth file
 * names its registries itself and goes to both. Pure.
 */
export function registryAccess(
  image: ImageReference,
  repository: string,
  registry: RegistryOptions,
): { image: RegistryOptions; install: RegistryOptions } {
  if (!registry.username || image.transport !== 'docker') return { image: registry, install: registry };
  const sameHost = registryHost(image) === repository.split('/')[0];
  const anonymous: RegistryOptions = {
    tlsVerify: registry.tlsVerify,
    ...(registry.authFile ? { authFile: registry.authFile } : {}),
  };
  return { image: sameHost ? registry : anonymous, install: registry };
}

/** The registry tier of one install key, as the install step uses it (install/derive.ts). */
export interface RegistryTier {
  reference: string;
  /** The derived image's digest, pulled into the store, or undefined (and why in `notes` or `warnings`). */
  pull(): Promise<string | undefined>;
  /** Push the store's derived image `digest` (after the install ran); false when it failed (a warning). */
  push(digest: string): Promise<boolean>;
  notes: string[];
  warnings: string[];
  /** How long the pull took, lookups included (ms). */
  pullMs?: number;
}

interface TierContext {
  store: Store;
  /** The Actions cache dir of the install step, whose EROFS entry is pushed when it has one. */
  cacheDir?: string;
  access: RegistryOptions;
  base: PrepareRequest;
  labels: Record<string, string>;
  /** REPO:TAG, the runnable image; REPO:TAG-erofs, its EROFS image (image/erofs/artifact.ts). */
  image: ImageReference;
  erofs: ImageReference;
  tier: RegistryTier;
}

export function registryTier(options: {
  store: Store;
  registry: InstallRegistry;
  access: RegistryOptions;
  base: PrepareRequest;
  labels: Record<string, string>;
  cacheDir?: string;
}): RegistryTier {
  const tag = installTag(options.base.arch, options.labels[LABEL.key]!);
  const image = parseReference(`docker://${options.registry.repository}:${tag}`);
  const erofs = parseReference(`docker://${options.registry.repository}:${tag}${EROFS_SUFFIX}`);
  const tier: RegistryTier = {
    reference: named(image),
    notes: [],
    warnings: [],
    pull: () => pullDerived({ ...options, image, erofs, tier }),
    push: (digest) => pushDerived({ ...options, image, erofs, tier }, digest),
  };
  return tier;
}

/** The tag of a key's EROFS image, after the runnable image's. */
export const EROFS_SUFFIX = '-erofs';

/** The EROFS image where there is one (mounted, or extracted, as from the Actions cache), else the runnable image. */
async function pullDerived(context: TierContext): Promise<string | undefined> {
  const { tier } = context;
  const start = now();
  try {
    const fromErofs = artifactZstd() ? await pullErofs(context) : undefined;
    return fromErofs ?? (await pullImage(context));
  } catch (error) {
    tier.warnings.push(
      `the install step's image could not be pulled from ${tier.reference}, so the install runs: ${errorMessage(error)}`,
    );
    return undefined;
  } finally {
    tier.pullMs = now() - start;
  }
}

/** The manifest digest of `ref` when its labels name the key; undefined when the tag is not there or names another. */
async function lookup(context: TierContext, ref: ImageReference): Promise<string | undefined> {
  let digest: string;
  try {
    digest = await resolveDigest(ref, context.base.arch, context.access);
  } catch (error) {
    if (!isNotFound(error)) throw error;
    context.tier.notes.push(`not in ${named(ref)}`);
    return undefined;
  }
  const mismatch = labelMismatch(await remoteLabels(ref, digest, context.access), context.labels);
  if (!mismatch) return digest;
  context.tier.warnings.push(`refused ${named(ref)} (${digest}): its labels name another install step (${mismatch})`);
  return undefined;
}

/** REPO:TAG as a user names it (no transport). */
const named = (ref: ImageReference) => ref.full.slice('docker://'.length);

async function pullErofs(context: TierContext): Promise<string | undefined> {
  const { store, base, tier } = context;
  const digest = await lookup(context, context.erofs);
  if (!digest) return undefined;
  const temp = await store.tempDir('registry');
  try {
    const record = await pullErofsArtifact({
      source: context.erofs,
      digest,
      registry: context.access,
      arch: base.arch,
      into: store,
      temp,
    });
    tier.notes.push(`pulled the EROFS image from ${named(context.erofs)}`);
    return record.digest;
  } catch (error) {
    // The runnable image may still serve (it is unpacked instead).
    tier.notes.push(`the EROFS image could not be used (${errorMessage(error)}): the image is pulled instead`);
    return undefined;
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
}

/** The runnable image when its labels name the key: pulled into the store (layout and rootfs), as any image. */
async function pullImage(context: TierContext): Promise<string | undefined> {
  const { store, base, tier } = context;
  const digest = await lookup(context, context.image);
  if (!digest) return undefined;
  // Copied by digest (every blob checked by skopeo) and unpacked into the store.
  await prepareImage(store, {
    ref: context.image,
    arch: base.arch,
    pull: 'missing',
    registry: context.access,
    digest,
    rootless: base.rootless,
    needLayout: true,
  });
  tier.notes.push(`pulled from ${tier.reference}`);
  return digest;
}

/** The runnable image, then its EROFS image where one can be had; only the first one's failure is a warning's matter. */
async function pushDerived(context: TierContext, digest: string): Promise<boolean> {
  const { store, base, tier } = context;
  try {
    await pushLayout(store.layoutDir(base.arch, digest), LAYOUT_TAG, context.image, context.access);
    tier.notes.push(`pushed to ${tier.reference}`);
  } catch (error) {
    tier.warnings.push(
      `the install step's image was not pushed to ${tier.reference} (the build goes on): ${errorMessage(error)}`,
    );
    return false;
  }
  const temp = await store.tempDir('registry');
  try {
    const from = await erofsEntry(context, digest, temp);
    if (!from) return true;
    await pushErofsArtifact({
      from,
      arch: base.arch,
      digest,
      labels: context.labels,
      target: context.erofs,
      registry: context.access,
      temp: join(temp, 'artifact'),
    });
    tier.notes.push(`pushed the EROFS image to ${named(context.erofs)}`);
  } catch (error) {
    tier.warnings.push(
      `the install step's EROFS image was not pushed (pulls unpack the image instead; the build goes on): ${errorMessage(error)}`,
    );
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
  return true;
}

/**
 * A store holding the EROFS entry of `digest`: the cache dir's or the store's, else one made
 * here from the rootfs with mkfs.erofs (never from a rootless one, whose files belong to the
 * user). None, with a note saying why, where it cannot be had.
 */
async function erofsEntry(context: TierContext, digest: string, temp: string): Promise<Store | undefined> {
  const { store, base, tier } = context;
  const skip = (why: string) => {
    tier.notes.push(`no EROFS image pushed: ${why}`);
    return undefined;
  };
  if (!artifactZstd()) return skip('zstd is not on PATH');
  const cache = context.cacheDir ? new Store(context.cacheDir) : undefined;
  for (const held of [cache, store]) if (held && (await held.readErofs(base.arch, digest))) return held;
  if (base.rootless) return skip("a rootless rootfs has the user's owners");
  const mkfs = which('mkfs.erofs');
  if (!mkfs) return skip('mkfs.erofs is not on PATH');
  if (!store.hasRootfs(base.arch, digest)) return skip('the store has no rootfs to make it from');
  const made = new Store(join(temp, 'made'));
  const config = await readImageConfig(store.layoutDir(base.arch, digest));
  await writeErofsEntry(made, mkfs, store.rootfsDir(base.arch, digest), base.arch, digest, config);
  return made;
}
