/**
 * A real, throw-away backend for the Actions toolkit's cache and artifact
 * clients, for integration tests. No mocks:
 *
 *  - Blob storage is Azurite (the Azure Storage emulator, a devDependency),
 *    run from node_modules on 127.0.0.1 with a temporary --location
 *    (azurite.ts).
 *  - The "results service" is a small node:http server that speaks the same
 *    Twirp JSON protocol as the service GitHub's runner exposes at
 *    ACTIONS_RESULTS_URL (github.actions.results.api.v1.CacheService and
 *    .ArtifactService), keeps its state in memory and hands out real Azurite
 *    SAS URLs, so @actions/cache (v2 service) and @actions/artifact upload and
 *    download real bytes to a real blob store. This file is its HTTP side; the
 *    methods are in results-handlers.ts, the wire format (notes there) in
 *    twirp.ts, the blob container in results-blobs.ts, the runtime token it
 *    reads in runtime-token.ts.
 *
 * Everything listens on 127.0.0.1 only; processes are stopped by PID.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { openResultsBlobs, type BlobInfo, type OpenBlobsOptions } from './results-blobs.js';
import { artifactService, cacheService, type ArtifactEntry, type CacheEntry } from './results-handlers.js';
import { decodeJwtPayload, runtimeTokenIds } from './runtime-token.js';
import { Fields, readBody, sendJson, TWIRP_STATUS, TwirpError, type Json, type TwirpCode } from './twirp.js';

export {
  AZURITE_ACCOUNT,
  AZURITE_ACCOUNT_KEY,
  AZURITE_BLOB_MAIN,
  startAzurite,
  type Azurite,
  type StartAzuriteOptions,
} from './azurite.js';
export { processExists } from './processes.js';
export type { ArtifactEntry, CacheEntry } from './results-handlers.js';
export {
  backendId,
  decodeJwtPayload,
  fakeRuntimeToken,
  runtimeTokenIds,
  type FakeRuntimeTokenOptions,
  type RuntimeTokenIds,
} from './runtime-token.js';
export { TwirpError, type TwirpCode } from './twirp.js';

export interface RequestRecord {
  service: string;
  method: string;
  status: number;
  /** Twirp error code, for errors. */
  code?: TwirpCode;
  request: unknown;
  response: unknown;
}

export interface ResultsService {
  /** http://127.0.0.1:PORT/ — the value for ACTIONS_RESULTS_URL. */
  url: string;
  /** The Azurite container holding the cache archives and artifacts. */
  container: string;
  /** Blob endpoint the SAS URLs point at. */
  blobEndpoint: string;
  /** Snapshots of the in-memory state. */
  caches(): CacheEntry[];
  artifacts(): ArtifactEntry[];
  /** Every Twirp call so far, in order. */
  requests(): RequestRecord[];
  /** Names of the blobs currently in the container (from Azurite itself). */
  listBlobs(): Promise<BlobInfo[]>;
  /** The bytes of a blob in the container (from Azurite itself). */
  readBlob(blobName: string): Promise<Buffer>;
  /** Replace a blob's bytes in the container (a tampered cache entry). */
  writeBlob(blobName: string, data: Buffer): Promise<void>;
  /** Close the server (and its connections). Idempotent. */
  stop(): Promise<void>;
}

export type StartResultsServiceOptions = OpenBlobsOptions;

const SERVICE_PREFIX = 'github.actions.results.api.v1.';

/**
 * Start the results service for an Azurite blob endpoint
 * (http://127.0.0.1:PORT/devstoreaccount1).
 */
export async function startResultsService(
  blobEndpoint: string,
  options: StartResultsServiceOptions = {},
): Promise<ResultsService> {
  const blobs = await openResultsBlobs(blobEndpoint, options);
  const caches: CacheEntry[] = [];
  const artifacts: ArtifactEntry[] = [];
  const log: RequestRecord[] = [];
  const cacheMethods = cacheService(caches, blobs);
  const artifactMethods = artifactService(artifacts, blobs);

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const m = /^\/twirp\/([\w.]+)\/(\w+)$/.exec(path);
    const record: RequestRecord = {
      service: m?.[1]?.startsWith(SERVICE_PREFIX) ? m[1].slice(SERVICE_PREFIX.length) : (m?.[1] ?? ''),
      method: m?.[2] ?? path,
      status: 0,
      request: undefined,
      response: undefined,
    };
    log.push(record);
    try {
      if (req.method !== 'POST')
        throw new TwirpError('bad_route', `unsupported method ${req.method} (only POST is allowed)`);
      const table =
        record.service === 'CacheService'
          ? cacheMethods
          : record.service === 'ArtifactService'
            ? artifactMethods
            : undefined;
      const fn = m && m[1]!.startsWith(SERVICE_PREFIX) && table ? table[record.method] : undefined;
      if (!fn) throw new TwirpError('bad_route', `no handler for path ${JSON.stringify(path)}`);
      const contentType = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      if (contentType !== 'application/json') {
        throw new TwirpError(
          'bad_route',
          `unexpected Content-Type: ${JSON.stringify(contentType)} (this test service speaks JSON only)`,
        );
      }
      const auth = req.headers.authorization ?? '';
      const token = /^Bearer (\S+)$/.exec(auth)?.[1];
      if (!token || !decodeJwtPayload(token))
        throw new TwirpError('unauthenticated', 'a Bearer runtime token (JWT) is required');
      const ids = runtimeTokenIds(token);
      const text = await readBody(req);
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        throw new TwirpError('malformed', 'the json request could not be decoded');
      }
      record.request = body;
      if (!body || typeof body !== 'object' || Array.isArray(body))
        throw new TwirpError('malformed', 'the json request could not be decoded');
      if (record.service === 'ArtifactService' && !ids) {
        throw new TwirpError('unauthenticated', 'the runtime token has no Actions.Results:<run>:<job> scope');
      }
      const out = await fn(new Fields(body as Json), ids ?? { runBackendId: '', jobBackendId: '' });
      record.status = 200;
      record.response = out;
      sendJson(res, 200, out);
    } catch (err) {
      const e = err instanceof TwirpError ? err : new TwirpError('internal', (err as Error)?.message ?? String(err));
      const status = TWIRP_STATUS[e.code];
      const out = { code: e.code, msg: e.message };
      record.status = status;
      record.code = e.code;
      record.response = out;
      if (!res.headersSent) sendJson(res, status, out);
      else res.destroy();
    }
  }

  const server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  let stopped: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}/`,
    container: blobs.name,
    blobEndpoint: blobs.endpoint,
    caches: () => caches.map((e) => ({ ...e })),
    artifacts: () => artifacts.map((a) => ({ ...a })),
    requests: () => log.map((r) => ({ ...r })),
    listBlobs: () => blobs.list(),
    readBlob: (blobName) => blobs.read(blobName),
    writeBlob: (blobName, data) => blobs.write(blobName, data),
    stop: () =>
      (stopped ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      })),
  };
}
