/**
 * The runner's ACTIONS_RUNTIME_TOKEN, faked: shared by the results service
 * (results-service.ts, which authorizes artifact calls by its scope) and the
 * action harness (action-harness.ts, which hands it to the steps).
 */
import { randomUUID } from 'node:crypto';

const b64url = (s: string): string => Buffer.from(s, 'utf8').toString('base64url');

export interface FakeRuntimeTokenOptions {
  /** Extra claims merged into the payload. */
  claims?: Record<string, unknown>;
  /** Lifetime in seconds (default 6 h, like the runner's job token). */
  lifetimeSeconds?: number;
}

/**
 * An unsigned JWT shaped like the runner's ACTIONS_RUNTIME_TOKEN. @actions/artifact
 * only decodes it (jwt-decode, no signature check) and takes the workflow run and
 * job backend IDs from the `Actions.Results:<runBackendId>:<jobBackendId>` scope
 * of the space-separated `scp` claim.
 */
export function fakeRuntimeToken(
  runBackendId: string,
  jobBackendId: string,
  options: FakeRuntimeTokenOptions = {},
): string {
  const now = Math.floor(Date.now() / 1000);
  const hostId = '00000000-0000-0000-0000-000000000000';
  const payload = {
    nameid: 'dddddddd-dddd-dddd-dddd-dddddddddddd',
    scp: [
      'Actions.ExampleScope',
      `Actions.GenericRead:${hostId}`,
      `Actions.UploadArtifacts:${hostId}/1:${runBackendId}/${jobBackendId}`,
      `Actions.Results:${runBackendId}:${jobBackendId}`,
    ].join(' '),
    iat: now,
    nbf: now - 60,
    exp: now + (options.lifetimeSeconds ?? 6 * 3600),
    iss: 'vstoken.actions.githubusercontent.com',
    aud: 'vso:build-cell-test',
    ...options.claims,
  };
  // alg "none": an unsecured JWT, empty signature segment (header.payload.).
  return `${b64url(JSON.stringify({ typ: 'JWT', alg: 'none' }))}.${b64url(JSON.stringify(payload))}.`;
}

export interface RuntimeTokenIds {
  runBackendId: string;
  jobBackendId: string;
}

/** The JWT payload, or undefined when the token is not a decodable JWT. */
export function decodeJwtPayload(token: string): Record<string, unknown> | undefined {
  const part = token.split('.')[1];
  if (!part) return undefined;
  try {
    const payload = JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as unknown;
    return payload && typeof payload === 'object' ? (payload as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The backend IDs from the `Actions.Results:<run>:<job>` scope, as @actions/artifact reads them. */
export function runtimeTokenIds(token: string): RuntimeTokenIds | undefined {
  const scp = decodeJwtPayload(token)?.scp;
  if (typeof scp !== 'string') return undefined;
  for (const scope of scp.split(' ')) {
    const parts = scope.split(':');
    if (parts[0] === 'Actions.Results' && parts.length === 3 && parts[1] && parts[2]) {
      return { runBackendId: parts[1], jobBackendId: parts[2] };
    }
  }
  return undefined;
}

/** A random backend ID, shaped like the runner's (a UUID). */
export const backendId = (): string => randomUUID();
