/**
 * The cached install step: `install` runs once in a cell on the base image, and its changes to
 * the root filesystem become a derived image, an image like any other in the store (its layout
 * and rootfs keyed by arch and its own manifest digest), named by the install's key (see
 * key.ts). The next run with the same key finds it in the store, or in the Actions cache dir,
 * and never runs the install again. The engine runs its cell through the port (./port.ts).
 *
 * What the install cell sees: the base image, the network, the environment, and the caches
 * given outside the workspace path (so an apt archive cache still helps the first install).
 * Not the workspace, imports or exports: the derived image depends on nothing its key leaves
 * out. Concurrent cells with the same key build it once: the others wait on its lock, then
 * reuse it. A failing install caches nothing, and the command does not run.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { covers } from '../cellspec/paths.js';
import { scriptCommand, type CellSpecInput } from '../cellspec/types.js';
import { CellSetupError } from '../util/errors.js';
import { withLock } from '../util/lock.js';
import { now } from '../util/timing.js';
import { holdImage, imageDigest, prepareImage, type PreparedImage, type PrepareRequest } from '../image/prepare.js';
import { Store } from '../image/store.js';
import type { ArchInfo } from '../emulation/arch.js';
import type { InstallCellRunner, InstallRequest, InstallResult } from './port.js';
import { installKey, installReference } from './key.js';
import { installLabels, registryAccess, registryTier, type RegistryTier } from './registry.js';
import { readOwnerRecord, removeStaged, scanDeletions, writeLayer, type Deletions } from './layer.js';
import { writeDerivedLayout } from './oci.js';
import { buildDerivedRootfs } from './rootfs.js';

export class InstallFailedError extends CellSetupError {
  override name = 'InstallFailedError';
}

/** An install under qemu may take long: wait for another cell's build of the same key that long. */
const INSTALL_LOCK_TIMEOUT_MS = 6 * 3600_000;

/** The install cell's spec, from the command's: see the module comment. Pure. */
export function installSpec(spec: CellSpecInput, install: InstallRequest): CellSpecInput {
  return {
    workspacePath: spec.workspacePath,
    workspaceSeed: { kind: 'empty' },
    imports: [],
    caches: install.caches ?? spec.caches.filter((c) => !covers(spec.workspacePath, c.destination)),
    exports: [],
    command: { cwd: '/', ...scriptCommand(install.shell) },
    script: install.script,
    env: install.env ?? spec.env,
    network: 'enabled',
    limits: {},
    cleanup: spec.cleanup,
  };
}

export async function prepareDerived(options: {
  store: Store;
  base: PrepareRequest;
  install: InstallRequest;
  spec: CellSpecInput;
  runCell: InstallCellRunner;
}): Promise<{ image: PreparedImage; install: InstallResult }> {
  const { store, install } = options;
  const access = install.registry
    ? registryAccess(options.base.ref, install.registry.repository, options.base.registry)
    : undefined;
  const base = access ? { ...options.base, registry: access.image } : options.base;
  const chosen = await imageDigest(store, base);
  const hash = installKey(install, base.arch, chosen.digest);
  const labels = installLabels({
    hash,
    arch: base.arch,
    baseDigest: chosen.digest,
    identity: install,
    source: install.source,
  });
  const tier =
    install.registry && access
      ? registryTier({
          store,
          registry: install.registry,
          access: access.install,
          base,
          labels,
          cacheDir: install.cacheDir,
        })
      : undefined;
  const derived: PrepareRequest = {
    ref: installReference(hash),
    arch: base.arch,
    pull: 'never',
    registry: base.registry,
    rootless: base.rootless,
    needRootfs: base.needRootfs,
    cacheDir: install.cacheDir,
    cacheOwner: base.cacheOwner,
  };
  const report = (
    image: PreparedImage,
    source: InstallResult['source'],
    ran?: { seconds: number; pushed: boolean },
  ) => ({
    image,
    install: installResult(image, source, { hash, baseDigest: chosen.digest, tier, ran }),
  });
  const find = () => findDerived(store, derived);
  const found = await find();
  if (found) return report(found, found.fromCache ? 'cache' : 'store');
  return withLock(
    store.lockDir(`install-${store.archKey(base.arch)}-${hash.slice(0, 32)}`),
    async () => {
      const meanwhile = await find();
      if (meanwhile) return report(meanwhile, meanwhile.fromCache ? 'cache' : 'store');
      const pulled = await tier?.pull();
      // Through prepareImage: the ref record written, and the image handed to the cache dir.
      if (pulled) return report(await prepareImage(store, { ...derived, digest: pulled }), 'registry');
      // The install's layer and layout are made from the base's unpacked rootfs and its layout.
      const baseImage = await prepareImage(store, { ...base, needLayout: true }, chosen);
      const start = now();
      const made = { hash, labels, arch: base.arch };
      const digest = await runInstall(store, baseImage, made, install, options.spec, options.runCell);
      const seconds = (now() - start) / 1000;
      const image = await prepareImage(store, { ...derived, digest });
      const pushed = install.registry?.push && tier ? await tier.push(digest) : false;
      return report(image, 'ran', { seconds, pushed });
    },
    { timeoutMs: INSTALL_LOCK_TIMEOUT_MS, what: 'another cell is running the same install step' },
  );
}

/** The derived image, when the store or the cache dir (the Actions cache's) has it. */
async function findDerived(store: Store, derived: PrepareRequest): Promise<PreparedImage | undefined> {
  const cache = derived.cacheDir ? new Store(derived.cacheDir) : undefined;
  const { arch } = derived;
  const record = (await store.readRef(derived.ref.full, arch)) ?? (await cache?.readRef(derived.ref.full, arch));
  if (!record) return undefined;
  // Held, then looked at (see image/usage.ts): a prune either keeps it or is done when we look.
  await holdImage(store, derived, record.digest);
  const has = async (where: Store | undefined) =>
    !!where && (!!(await where.readLayout(arch, record.digest)) || !!(await where.readErofs(arch, record.digest)));
  if (!(await has(store)) && !(await has(cache))) return undefined;
  return prepareImage(store, { ...derived, digest: record.digest });
}

/** The engine's report of the install step. Pure. */
function installResult(
  image: PreparedImage,
  source: InstallResult['source'],
  context: { hash: string; baseDigest: string; tier?: RegistryTier; ran?: { seconds: number; pushed: boolean } },
): InstallResult {
  const { tier, ran } = context;
  return {
    ran: !!ran,
    source,
    digest: image.digest,
    baseDigest: context.baseDigest,
    hash: context.hash,
    ...(ran ? { seconds: ran.seconds } : {}),
    ...(source === 'registry' && tier?.pullMs !== undefined ? { pullMs: Math.round(tier.pullMs * 10) / 10 } : {}),
    ...(tier ? { registry: { reference: tier.reference, pushed: !!ran?.pushed, notes: tier.notes } } : {}),
    ...(tier?.warnings.length ? { warnings: tier.warnings } : {}),
  };
}

/** Run the install cell and turn its root changes into a derived image in the store. Returns its digest. */
async function runInstall(
  store: Store,
  base: PreparedImage,
  made: { hash: string; labels: Record<string, string>; arch: ArchInfo },
  install: InstallRequest,
  spec: CellSpecInput,
  runCell: InstallCellRunner,
): Promise<string> {
  const { hash, arch } = made;
  let deletions: Deletions | undefined;
  let digest: string | undefined;
  const result = await runCell(base, installSpec(spec, install), {
    whileAlive: async ({ root, plan }) => {
      const mountPoints = new Set(plan.targets.map((t) => t.cellPath.slice(1)));
      deletions = await scanDeletions(plan.layout.upper, base.rootfs, root, mountPoints);
    },
    afterRelease: async ({ plan, staged }) => {
      const upper = plan.layout.upper;
      await removeStaged(upper, staged.rootCreated);
      const ownership =
        process.getuid?.() === 0
          ? { kind: 'stat' as const }
          : { kind: 'rootless' as const, record: await readOwnerRecord(plan.layout.owners) };
      const temp = await store.tempDir('derived');
      try {
        const layerFile = join(temp, 'layer.tar');
        const layer = await writeLayer(upper, base.rootfs, deletions!, ownership, layerFile);
        const layoutDir = join(temp, 'layout');
        await mkdir(layoutDir);
        const firstLine = install.script.trim().split('\n')[0]!.slice(0, 200);
        const written = await writeDerivedLayout({
          baseLayout: base.layoutDir,
          dir: layoutDir,
          layerFile,
          layer,
          createdBy: `build-cell install: ${firstLine}`,
          comment: `build-cell install key ${hash}`,
          labels: made.labels,
          record: { reference: installReference(hash).full, arch: arch.name },
        });
        const rootfs = join(temp, 'rootfs');
        await buildDerivedRootfs({
          base: base.rootfs,
          upper,
          deletions: deletions!,
          target: rootfs,
          prefix: store.stateDir,
        });
        // Held before it is there (no prune takes it before this run uses it); the layout first:
        // a rootfs is only used with its layout (see prepareImage's warm path).
        store.useImage(arch, written.digest);
        await store.commit(layoutDir, store.layoutDir(arch, written.digest));
        await store.commitRootfs(rootfs, arch, written.digest);
        await store.staleSizes(arch, base.digest);
        digest = written.digest;
      } finally {
        await rm(temp, { recursive: true, force: true });
      }
    },
  });
  if (result.exitCode !== 0 || !digest) {
    const how = result.signal
      ? `was killed by signal ${result.signal} (exit code ${result.exitCode})`
      : `exited with ${result.exitCode}`;
    throw new InstallFailedError(
      `install step failed: the install script ${how}; the command did not run and nothing was cached${result.scratchPreserved ? ` (scratch kept at ${result.scratch})` : ''}`,
    );
  }
  return digest;
}
