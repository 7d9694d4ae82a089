/**
 * An image in a registry beyond pulling it (prepare.ts pulls): its config read without its
 * layers, so that its labels say what it is before anything large is downloaded; whether a
 * tag is there at all; and a layout pushed. skopeo does all three, with the registry's
 * credentials as for pulls (registry-auth.ts: never in argv).
 */
import { tool } from '../util/which.js';
import { exec, ExecError } from '../util/exec.js';
import { CellSetupError } from '../util/errors.js';
import { dockerReferenceByDigest, type ImageReference } from './reference.js';
import { secretsOf, withRegistryArgs, type RegistryOptions } from './registry-auth.js';

/** The labels in the config blob of `ref`'s manifest `digest`, an image's or an artifact's: one small blob, no layers. */
export async function remoteLabels(
  ref: ImageReference,
  digest: string,
  registry: RegistryOptions,
): Promise<Record<string, string>> {
  const target = dockerReferenceByDigest(ref, digest);
  const raw = await withRegistryArgs(ref, registry, '--', (args) =>
    exec(tool('skopeo'), ['inspect', '--config', '--raw', ...args, target], `cannot read the config of ${target}`, {
      secrets: secretsOf(registry),
      dieWithParent: true,
    }),
  );
  let config: { config?: { Labels?: unknown } } | null;
  try {
    config = JSON.parse(raw.stdout) as typeof config;
  } catch {
    throw new CellSetupError(`the config of ${target} is not JSON: ${raw.stdout.slice(0, 120)}`);
  }
  if (!config || typeof config !== 'object' || Array.isArray(config))
    throw new CellSetupError(`the config of ${target} is not an object: ${raw.stdout.slice(0, 120)}`);
  const labels = config.config?.Labels;
  return labels && typeof labels === 'object' ? stringEntries(labels as Record<string, unknown>) : {};
}

/**
 * Whether a failed registry request means only that the tag (or repository) does not exist:
 * a miss, not a fault. skopeo words it as the registry's error code or the HTTP status.
 */
export function isNotFound(error: unknown): boolean {
  if (!(error instanceof ExecError)) return false;
  return /manifest unknown|name unknown|not found|404/i.test(error.result.stderr);
}

/** Copy the manifest `digest` of `ref` (an image or an artifact) into the OCI layout `layoutDir` as `tag`, every blob checked. */
export async function pullToLayout(
  ref: ImageReference,
  digest: string,
  registry: RegistryOptions,
  layoutDir: string,
  tag: string,
): Promise<void> {
  const source = dockerReferenceByDigest(ref, digest);
  await withRegistryArgs(ref, registry, '--src-', (args) =>
    exec(tool('skopeo'), ['copy', '--quiet', ...args, source, `oci:${layoutDir}:${tag}`], `cannot copy ${source}`, {
      secrets: secretsOf(registry),
      dieWithParent: true,
    }),
  );
}

/** Push the image tagged `tag` in the OCI layout `layoutDir` to `target` (docker://host/repo:tag). */
export async function pushLayout(
  layoutDir: string,
  tag: string,
  target: ImageReference,
  registry: RegistryOptions,
): Promise<void> {
  await withRegistryArgs(target, registry, '--dest-', (args) =>
    exec(
      tool('skopeo'),
      // Uncompressed layers (the install's) are compressed on the way, as a registry expects.
      ['copy', '--quiet', ...args, `oci:${layoutDir}:${tag}`, target.full],
      `cannot push to ${target.full.slice('docker://'.length)}`,
      { secrets: secretsOf(registry), dieWithParent: true },
    ),
  );
}

function stringEntries(record: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(record).filter((entry): entry is [string, string] => typeof entry[1] === 'string'),
  );
}
