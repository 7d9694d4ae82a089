/**
 * A real, throw-away OCI registry for integration tests: Debian's
 * `docker-registry` (distribution 2.8) on 127.0.0.1 with filesystem storage in
 * a temporary directory. No mocks: pushes and pulls go through skopeo to this
 * process over HTTP.
 *
 * Needs: docker-registry and skopeo (apt), and for startRegistryWithAuth a
 * bcrypt generator: `htpasswd` from apache2-utils, or python3's crypt module
 * (Debian bookworm's python3 3.11 has it, backed by libxcrypt).
 *
 * The entry point: the docker-registry process is ./registry-process.ts, htpasswd and the
 * skopeo push ./registry-tools.ts, the proxy that injects faults ./faulty-proxy.ts.
 */
import { launch, type Registry } from './registry-process.js';
import type { Credentials } from './registry-tools.js';

export { type Registry } from './registry-process.js';
export { htpasswdLine, pushLayout, type Credentials } from './registry-tools.js';
export { startFaultyProxy, type BlobFault, type FaultyProxy } from './faulty-proxy.js';

export interface AuthRegistry extends Registry {
  credentials: Credentials;
}

/** Start an anonymous (no auth) registry on 127.0.0.1 and wait until GET /v2/ is 200. */
export async function startRegistry(): Promise<Registry> {
  return launch();
}

/**
 * Start a registry that requires HTTP basic auth (htpasswd, bcrypt). Ready
 * means GET /v2/ with these credentials is 200; without them it is 401.
 */
export async function startRegistryWithAuth(username: string, password: string): Promise<AuthRegistry> {
  const credentials = { username, password };
  const reg = await launch(credentials);
  return { ...reg, credentials };
}
