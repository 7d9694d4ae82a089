/**
 * The key of a derived image (the cached install step): what the install's result may depend
 * on, and nothing else. Pure.
 *
 * arch + base manifest digest + the script (and the shell that runs it) + install-key + the
 * names of the environment variables given to it. Values are never part of it (they may be
 * secrets, and are never written to disk): an install whose result depends on a value takes
 * an install-key. A moved tag is a new base digest, so a new install; matrix legs differ in
 * arch, so they never share (or overwrite) an entry.
 */
import { sha256Hex } from '../util/random.js';
import { archKey, type ArchInfo } from '../emulation/arch.js';
import type { ImageReference } from '../image/reference.js';
import type { ScriptShell } from '../cellspec/types.js';

/** Bumped whenever what an entry holds, or how it is made, changes. */
export const INSTALL_FORMAT = 'install-v1';

export type InstallShell = ScriptShell;

export interface InstallKeyParts {
  arch: ArchInfo;
  baseDigest: string;
  script: string;
  shell: InstallShell;
  installKey: string;
  envNames: string[];
}

/** What names an install step: the fields of its request its key is made of (port.ts InstallRequest extends it). */
export interface InstallIdentity {
  script: string;
  shell: InstallShell;
  /** install-key: an extra key part (e.g. a hash of the files the install reads). */
  key: string;
  /** The names that key the derived image (the user's env names; never their values). */
  keyEnvNames: string[];
}

/**
 * The one install key, for the store and the Actions cache alike: both take it from the same
 * identity (the engine from the request, the action from install-cache.ts before the request).
 */
export function installKey(identity: InstallIdentity, arch: ArchInfo, baseDigest: string): string {
  return installHash({
    arch,
    baseDigest,
    script: identity.script,
    shell: identity.shell,
    installKey: identity.key,
    envNames: identity.keyEnvNames,
  });
}

/** The key's hash: 64 hex digits. */
export function installHash(parts: InstallKeyParts): string {
  const names = [...new Set(parts.envNames)].sort();
  return sha256Hex(
    JSON.stringify([
      INSTALL_FORMAT,
      archKey(parts.arch),
      parts.baseDigest,
      parts.shell,
      sha256Hex(parts.script),
      parts.installKey,
      names,
    ]),
  );
}

/**
 * The store's name for a derived image: a reference of its own, so the store records what it
 * resolved to (STATE/images/refs) and its layout and rootfs are an image's like any other.
 * Never pulled: only the store and the Actions cache dir hold it.
 */
/** How the store names an install step's derived image: this, then the key's hash. */
export const INSTALL_REFERENCE_PREFIX = 'build-cell-install:';

export function installReference(hash: string): ImageReference {
  return {
    original: `install step ${hash.slice(0, 12)}`,
    full: `${INSTALL_REFERENCE_PREFIX}${hash}`,
    transport: 'oci',
  };
}
