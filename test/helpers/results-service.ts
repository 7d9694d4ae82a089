/**
 * A real, throw-away backend for the Actions toolkit's cache and artifact
 * clients, for integration tests. No mocks:
 *
 *  - Blob storage is Azurite (the Azure Storage emulator, a devDependency),
 *    run from node_modules on 127.0.0.1 with a temporary --location.
 *  - The "results service" is a small node:http server that speaks the same
 *    Twirp JSON protocol as the service GitHub's runner exposes at
 *    ACTIONS_RESULTS_URL (github.actions.results.api.v1.CacheService and
 *    .ArtifactService), keeps its state in memory and hands out real Azurite
 *    SAS URLs, so @actions/cache (v2 service) and @actions/artifact upload and
 *    download real bytes to a real blob store.
 *
 * Wire format notes (from @actions/cache 6 / @actions/artifact 6):
 *  - Requests are POST /twirp/<service>/<method>, Content-Type application/json,
 *    `Authorization: Bearer <ACTIONS_RUNTIME_TOKEN>`, body = protobuf JSON with
 *    the *proto* field names (`useProtoFieldName: true`): restore_keys,
 *    size_bytes, workflow_run_backend_id... int64 fields are JSON strings,
 *    wrappers (StringValue, Int64Value) are bare values, Timestamps RFC 3339.
 *  - Responses are parsed with protobuf-ts `fromJson`, which accepts proto or
 *    lowerCamel names; like the real (Go Twirp) service we answer snake_case
 *    (the clients' `maskSecretUrls` looks for `signed_upload_url`, `signed_url`).
 *  - Errors are Twirp JSON `{code, msg}` with the Twirp HTTP status. The clients
 *    retry 5xx (and any non-JSON body!) 5 times with 3 s+ back-off, so errors
 *    here are 4xx JSON unless the service itself is broken.
 *
 * Everything listens on 127.0.0.1 only; processes are stopped by PID.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  BlobSASPermissions,
  BlobServiceClient,
  StorageSharedKeyCredential,
  generateBlobSASQueryParameters,
  type ContainerClient,
} from '@azure/storage-blob';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Azurite's blob-only entry point (the `azurite-blob` bin). */
export const AZURITE_BLOB_MAIN = join(REPO_ROOT, 'node_modules', 'azurite', 'dist', 'src', 'blob', 'main.js');

/** Azurite's well-known development account (documented, not a secret). */
export const AZURITE_ACCOUNT = 'devstoreaccount1';
export const AZURITE_ACCOUNT_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

const READY_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 3_000;
const OUTPUT_TAIL_BYTES = 16 * 1024;

/* ------------------------------------------------------------------------- */
/* processes                                                                 */
/* ------------------------------------------------------------------------- */

/** Whether a process with this PID exists (signal 0; EPERM still means it exists). */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function exitPromise(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
}

/** SIGTERM, then SIGKILL after `graceMs`, by PID; resolves once the child has exited. */
async function stopChild(child: ChildProcess, exited: Promise<void>, graceMs = STOP_GRACE_MS): Promise<void> {
  const pid = child.pid;
  if (pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    /* already gone */
  }
  const timedOut = await Promise.race([exited.then(() => false), sleep(graceMs).then(() => true)]);
  if (timedOut) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
    await exited;
  }
}

/* ------------------------------------------------------------------------- */
/* Azurite                                                                   */
/* ------------------------------------------------------------------------- */

export interface Azurite {
  /** e.g. http://127.0.0.1:PORT/devstoreaccount1 (path-style account URL) */
  blobEndpoint: string;
  pid: number;
  /** Azurite's --location (removed by stop()). */
  location: string;
  /** SIGTERM, SIGKILL after 3 s, wait for exit, remove the location. Idempotent. */
  stop(): Promise<void>;
}

export interface StartAzuriteOptions {
  /** Write Azurite's debug log here (--debug), for diagnosing protocol problems. */
  debugLog?: string;
}

/**
 * Start Azurite's blob service on 127.0.0.1 with an OS-assigned port (--blobPort 0;
 * Azurite prints the address it bound), telemetry off, in a temporary location.
 */
export async function startAzurite(options: StartAzuriteOptions = {}): Promise<Azurite> {
  const location = await mkdtemp(join(tmpdir(), 'build-cell-azurite-'));
  const args = [
    AZURITE_BLOB_MAIN,
    '--blobHost', '127.0.0.1',
    '--blobPort', '0',
    '--location', location,
    '--silent',
    '--skipApiVersionCheck',
    '--loose',
    '--disableTelemetry',
  ];
  if (options.debugLog) args.push('--debug', options.debugLog);
  const env = { ...process.env };
  delete env.AZURITE_ACCOUNTS; // would replace the well-known dev account
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  const exited = exitPromise(child);
  let output = '';
  const onData = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-OUTPUT_TAIL_BYTES);
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const spawnError = new Promise<never>((_, reject) => child.once('error', reject));

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      await stopChild(child, exited);
      await rm(location, { recursive: true, force: true });
    })());

  try {
    const origin = await Promise.race([
      spawnError,
      (async () => {
        const deadline = Date.now() + READY_TIMEOUT_MS;
        while (Date.now() < deadline) {
          const m = /successfully listens on (http:\/\/\S+)/.exec(output);
          if (m) return m[1]!.replace(/\/+$/, '');
          if (child.exitCode !== null || child.signalCode !== null) {
            throw new Error(`azurite exited during startup (code ${child.exitCode}, signal ${child.signalCode})\n${output}`);
          }
          await sleep(50);
        }
        throw new Error(`azurite did not start within ${READY_TIMEOUT_MS / 1000} s\n${output}`);
      })(),
    ]);
    const blobEndpoint = `${origin}/${AZURITE_ACCOUNT}`;
    // Wait until it answers HTTP (any status: an unauthenticated list is a 403).
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      try {
        const res = await fetch(`${blobEndpoint}?comp=list`, { signal: AbortSignal.timeout(2_000) });
        await res.arrayBuffer();
        break;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`azurite at ${blobEndpoint} does not answer: ${(err as Error).message}\n${output}`);
        await sleep(100);
      }
    }
    return { blobEndpoint, pid: child.pid!, location, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/* ------------------------------------------------------------------------- */
/* runtime token                                                             */
/* ------------------------------------------------------------------------- */

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

/* ------------------------------------------------------------------------- */
/* Twirp plumbing                                                            */
/* ------------------------------------------------------------------------- */

const TWIRP_STATUS = {
  canceled: 408,
  unknown: 500,
  invalid_argument: 400,
  malformed: 400,
  deadline_exceeded: 408,
  not_found: 404,
  bad_route: 404,
  already_exists: 409,
  permission_denied: 403,
  unauthenticated: 401,
  resource_exhausted: 429,
  failed_precondition: 412,
  aborted: 409,
  out_of_range: 400,
  unimplemented: 501,
  internal: 500,
  unavailable: 503,
  dataloss: 500,
} as const;
export type TwirpCode = keyof typeof TWIRP_STATUS;

export class TwirpError extends Error {
  constructor(
    readonly code: TwirpCode,
    msg: string,
  ) {
    super(msg);
    this.name = 'TwirpError';
  }
}

type Json = Record<string, unknown>;

/** A protobuf-JSON request body: proto names first, lowerCamel accepted too (as protojson does). */
class Fields {
  constructor(private readonly body: Json) {}

  private raw(name: string): unknown {
    if (name in this.body) return this.body[name];
    const camel = name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
    return this.body[camel];
  }

  string(name: string, required = false): string | undefined {
    const v = this.raw(name);
    if (v === undefined || v === null || v === '') {
      if (required) throw new TwirpError('invalid_argument', `${name} is required`);
      return undefined;
    }
    if (typeof v !== 'string') throw new TwirpError('malformed', `${name}: expected a string, got ${JSON.stringify(v)}`);
    return v;
  }

  strings(name: string): string[] {
    const v = this.raw(name);
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) {
      throw new TwirpError('malformed', `${name}: expected an array of strings, got ${JSON.stringify(v)}`);
    }
    return v as string[];
  }

  /** int64: protobuf JSON writes it as a decimal string; numbers are accepted too. */
  int64(name: string, required = false): number | undefined {
    const v = this.raw(name);
    if (v === undefined || v === null) {
      if (required) throw new TwirpError('invalid_argument', `${name} is required`);
      return undefined;
    }
    if (typeof v === 'string' && /^-?\d+$/.test(v)) return Number(v);
    if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
    throw new TwirpError('malformed', `${name}: expected an int64, got ${JSON.stringify(v)}`);
  }

  int32(name: string): number | undefined {
    const v = this.raw(name);
    if (v === undefined || v === null) return undefined;
    const n = typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isInteger(n) || Math.abs(n) > 2 ** 31) {
      throw new TwirpError('malformed', `${name}: expected an int32, got ${JSON.stringify(v)}`);
    }
    return n;
  }

  timestamp(name: string): Date | undefined {
    const v = this.raw(name);
    if (v === undefined || v === null) return undefined;
    const d = typeof v === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(v) ? new Date(v) : undefined;
    if (!d || Number.isNaN(d.getTime())) throw new TwirpError('malformed', `${name}: expected an RFC 3339 timestamp, got ${JSON.stringify(v)}`);
    return d;
  }
}

/* ------------------------------------------------------------------------- */
/* state                                                                     */
/* ------------------------------------------------------------------------- */

export interface CacheEntry {
  id: number;
  key: string;
  version: string;
  /** Blob name in `ResultsService.container`. */
  blobName: string;
  createdAt: Date;
  finalized: boolean;
  finalizedAt?: Date;
  /** size_bytes from FinalizeCacheEntryUpload (checked against the blob). */
  sizeBytes?: number;
}

export interface ArtifactEntry {
  id: number;
  runBackendId: string;
  jobBackendId: string;
  name: string;
  /** CreateArtifact's version (the v6 client sends 7). */
  version: number;
  mimeType: string;
  expiresAt?: Date;
  blobName: string;
  createdAt: Date;
  finalized: boolean;
  /** size from FinalizeArtifact (checked against the blob). */
  size?: number;
  /** hash from FinalizeArtifact, "sha256:<hex>" (checked against the blob). */
  digest?: string;
  deleted: boolean;
}

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
  listBlobs(): Promise<{ name: string; size: number; contentType?: string }[]>;
  /** The bytes of a blob in the container (from Azurite itself). */
  readBlob(blobName: string): Promise<Buffer>;
  /** Close the server (and its connections). Idempotent. */
  stop(): Promise<void>;
}

export interface StartResultsServiceOptions {
  /** Container name (default results-<random>); created if missing. */
  container?: string;
  /** Lifetime of the SAS URLs handed out (default 60 min). */
  sasLifetimeMinutes?: number;
}

const SERVICE_PREFIX = 'github.actions.results.api.v1.';
const MAX_BODY_BYTES = 4 * 1024 * 1024;

/**
 * Start the results service for an Azurite blob endpoint
 * (http://127.0.0.1:PORT/devstoreaccount1).
 */
export async function startResultsService(
  blobEndpoint: string,
  options: StartResultsServiceOptions = {},
): Promise<ResultsService> {
  const endpoint = blobEndpoint.replace(/\/+$/, '');
  const account = new URL(endpoint).pathname.split('/').filter(Boolean)[0] ?? AZURITE_ACCOUNT;
  const credential = new StorageSharedKeyCredential(account, AZURITE_ACCOUNT_KEY);
  const blobService = new BlobServiceClient(endpoint, credential);
  const containerName = options.container ?? `results-${randomBytes(4).toString('hex')}`;
  const container: ContainerClient = blobService.getContainerClient(containerName);
  await container.createIfNotExists();
  const sasLifetimeMs = (options.sasLifetimeMinutes ?? 60) * 60_000;

  const caches: CacheEntry[] = [];
  const artifacts: ArtifactEntry[] = [];
  const log: RequestRecord[] = [];
  let nextCacheId = 1;
  let nextArtifactId = 1;

  function sasUrl(
    blobName: string,
    permissions: string,
    headers: { contentDisposition?: string; contentType?: string } = {},
  ): string {
    const now = Date.now();
    const sas = generateBlobSASQueryParameters(
      {
        containerName,
        blobName,
        permissions: BlobSASPermissions.parse(permissions),
        startsOn: new Date(now - 5 * 60_000), // clock skew allowance, as real services do
        expiresOn: new Date(now + sasLifetimeMs),
        ...headers,
      },
      credential,
    ).toString();
    return `${container.getBlockBlobClient(blobName).url}?${sas}`;
  }

  async function blobSize(blobName: string): Promise<number | undefined> {
    try {
      const props = await container.getBlockBlobClient(blobName).getProperties();
      return props.contentLength ?? 0;
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return undefined;
      throw err;
    }
  }

  async function blobSha256(blobName: string): Promise<string> {
    const res = await container.getBlockBlobClient(blobName).download();
    const hash = createHash('sha256');
    for await (const chunk of res.readableStreamBody as AsyncIterable<Buffer>) hash.update(chunk);
    return hash.digest('hex');
  }

  /* --- CacheService ------------------------------------------------------ */

  const matchesVersion = (e: CacheEntry, version: string): boolean => e.finalized && e.version === version;
  const newestFirst = (a: CacheEntry, b: CacheEntry): number =>
    (b.finalizedAt?.getTime() ?? 0) - (a.finalizedAt?.getTime() ?? 0) || b.id - a.id;

  const cacheService: Record<string, (f: Fields) => Promise<Json>> = {
    async CreateCacheEntry(f) {
      const key = f.string('key', true)!;
      const version = f.string('version', true)!;
      if (key.length > 512) throw new TwirpError('invalid_argument', 'key cannot be longer than 512 characters');
      if (caches.some((e) => e.key === key && e.version === version)) {
        // What GitHub answers when the entry exists (or another job is creating it).
        throw new TwirpError('already_exists', 'cache entry with the same key, version, and scope already exists');
      }
      const id = nextCacheId++;
      const entry: CacheEntry = {
        id,
        key,
        version,
        blobName: `caches/${id}/${createHash('sha256').update(`${key}\0${version}`).digest('hex')}`,
        createdAt: new Date(),
        finalized: false,
      };
      caches.push(entry);
      return { ok: true, signed_upload_url: sasUrl(entry.blobName, 'cw'), message: '' };
    },

    async FinalizeCacheEntryUpload(f) {
      const key = f.string('key', true)!;
      const version = f.string('version', true)!;
      const sizeBytes = f.int64('size_bytes', true)!;
      if (sizeBytes < 0) throw new TwirpError('invalid_argument', 'size_bytes must not be negative');
      const entry = caches.find((e) => e.key === key && e.version === version);
      if (!entry) throw new TwirpError('not_found', `no cache entry reserved for key ${key} and version ${version}`);
      if (entry.finalized) throw new TwirpError('already_exists', 'cache entry with the same key, version, and scope already exists');
      const actual = await blobSize(entry.blobName);
      if (actual === undefined) throw new TwirpError('failed_precondition', `the cache archive for key ${key} was not uploaded`);
      if (actual !== sizeBytes) {
        throw new TwirpError('invalid_argument', `size_bytes ${sizeBytes} does not match the uploaded archive (${actual} bytes)`);
      }
      entry.finalized = true;
      entry.finalizedAt = new Date();
      entry.sizeBytes = sizeBytes;
      return { ok: true, entry_id: String(entry.id), message: '' };
    },

    async GetCacheEntryDownloadURL(f) {
      const key = f.string('key', true)!;
      const version = f.string('version', true)!;
      const restoreKeys = f.strings('restore_keys');
      const candidates = caches.filter((e) => matchesVersion(e, version)).sort(newestFirst);
      // GitHub's matching: for the key, then each restore key in order, an exact
      // match first, then the most recent entry whose key starts with it.
      let hit: CacheEntry | undefined;
      for (const k of [key, ...restoreKeys]) {
        hit = candidates.find((e) => e.key === k) ?? candidates.find((e) => e.key.startsWith(k));
        if (hit) break;
      }
      if (!hit) return { ok: false, signed_download_url: '', matched_key: '' };
      return { ok: true, signed_download_url: sasUrl(hit.blobName, 'r'), matched_key: hit.key };
    },
  };

  /* --- ArtifactService --------------------------------------------------- */

  const live = (a: ArtifactEntry): boolean => !a.deleted && (!a.expiresAt || a.expiresAt.getTime() > Date.now());

  function checkIds(f: Fields, token: RuntimeTokenIds, sameJob: boolean): RuntimeTokenIds {
    const runBackendId = f.string('workflow_run_backend_id', true)!;
    const jobBackendId = f.string('workflow_job_run_backend_id', true)!;
    if (runBackendId !== token.runBackendId || (sameJob && jobBackendId !== token.jobBackendId)) {
      throw new TwirpError('permission_denied', 'the runtime token does not grant access to this workflow run/job');
    }
    return { runBackendId, jobBackendId };
  }

  const artifactJson = (a: ArtifactEntry): Json => ({
    workflow_run_backend_id: a.runBackendId,
    workflow_job_run_backend_id: a.jobBackendId,
    database_id: String(a.id),
    name: a.name,
    size: String(a.size ?? 0),
    created_at: a.createdAt.toISOString(),
    ...(a.digest ? { digest: a.digest } : {}),
  });

  const artifactService: Record<string, (f: Fields, token: RuntimeTokenIds) => Promise<Json>> = {
    async CreateArtifact(f, token) {
      const ids = checkIds(f, token, true);
      const name = f.string('name', true)!;
      const version = f.int32('version');
      if (version === undefined) throw new TwirpError('invalid_argument', 'version is required');
      if (version < 4) throw new TwirpError('invalid_argument', `unsupported artifact version ${version}`);
      const expiresAt = f.timestamp('expires_at');
      const mimeType = f.string('mime_type') ?? 'application/zip';
      if (/[\\/":<>|*?\r\n]/.test(name)) throw new TwirpError('invalid_argument', `invalid artifact name ${JSON.stringify(name)}`);
      if (artifacts.some((a) => live(a) && a.runBackendId === ids.runBackendId && a.name === name)) {
        throw new TwirpError('already_exists', 'an artifact with this name already exists on the workflow run');
      }
      const id = nextArtifactId++;
      const fileName = mimeType === 'application/zip' && !name.toLowerCase().endsWith('.zip') ? `${name}.zip` : name;
      const entry: ArtifactEntry = {
        id,
        runBackendId: ids.runBackendId,
        jobBackendId: ids.jobBackendId,
        name,
        version,
        mimeType,
        ...(expiresAt ? { expiresAt } : {}),
        blobName: `artifacts/${ids.runBackendId}/${ids.jobBackendId}/${id}/${fileName}`,
        createdAt: new Date(),
        finalized: false,
        deleted: false,
      };
      artifacts.push(entry);
      return { ok: true, signed_upload_url: sasUrl(entry.blobName, 'cw') };
    },

    async FinalizeArtifact(f, token) {
      const ids = checkIds(f, token, true);
      const name = f.string('name', true)!;
      const size = f.int64('size', true)!;
      const hash = f.string('hash');
      const entry = artifacts.find(
        (a) => live(a) && a.runBackendId === ids.runBackendId && a.jobBackendId === ids.jobBackendId && a.name === name,
      );
      if (!entry) throw new TwirpError('not_found', `no artifact named ${JSON.stringify(name)} was created by this job`);
      if (entry.finalized) throw new TwirpError('failed_precondition', `artifact ${JSON.stringify(name)} is already finalized`);
      const actual = await blobSize(entry.blobName);
      if (actual === undefined) throw new TwirpError('failed_precondition', `artifact ${JSON.stringify(name)} was not uploaded`);
      if (actual !== size) throw new TwirpError('invalid_argument', `size ${size} does not match the uploaded blob (${actual} bytes)`);
      if (hash !== undefined) {
        const m = /^sha256:([0-9a-f]{64})$/.exec(hash);
        if (!m) throw new TwirpError('invalid_argument', `hash must be sha256:<64 hex digits>, got ${JSON.stringify(hash)}`);
        const digest = await blobSha256(entry.blobName);
        if (digest !== m[1]) throw new TwirpError('invalid_argument', `hash ${hash} does not match the uploaded blob (sha256:${digest})`);
      }
      entry.finalized = true;
      entry.size = size;
      if (hash !== undefined) entry.digest = hash;
      return { ok: true, artifact_id: String(entry.id) };
    },

    async ListArtifacts(f, token) {
      // Lists the whole run (any job), as download-artifact sees other jobs' artifacts.
      const ids = checkIds(f, token, false);
      const nameFilter = f.string('name_filter');
      const idFilter = f.int64('id_filter');
      const found = artifacts
        .filter((a) => live(a) && a.finalized && a.runBackendId === ids.runBackendId)
        .filter((a) => nameFilter === undefined || a.name === nameFilter)
        .filter((a) => idFilter === undefined || a.id === idFilter)
        .sort((a, b) => a.id - b.id);
      return { artifacts: found.map(artifactJson) };
    },

    async GetSignedArtifactURL(f, token) {
      const ids = checkIds(f, token, false);
      const name = f.string('name', true)!;
      const entry = artifacts.find(
        (a) => live(a) && a.finalized && a.runBackendId === ids.runBackendId && a.jobBackendId === ids.jobBackendId && a.name === name,
      );
      if (!entry) throw new TwirpError('not_found', `artifact ${JSON.stringify(name)} not found`);
      const fileName = entry.blobName.slice(entry.blobName.lastIndexOf('/') + 1);
      return {
        // rscd: the downloader takes a raw (non-zip) artifact's file name from Content-Disposition.
        signed_url: sasUrl(entry.blobName, 'r', {
          contentDisposition: `attachment; filename="${fileName.replace(/[^\x20-\x7e]|["\\]/g, '_')}"; filename*=UTF-8''${encodeURIComponent(fileName)}`,
        }),
      };
    },

    async DeleteArtifact(f, token) {
      const ids = checkIds(f, token, false);
      const name = f.string('name', true)!;
      const entry = artifacts.find(
        (a) => live(a) && a.finalized && a.runBackendId === ids.runBackendId && a.jobBackendId === ids.jobBackendId && a.name === name,
      );
      if (!entry) throw new TwirpError('not_found', `artifact ${JSON.stringify(name)} not found`);
      entry.deleted = true;
      await container.getBlockBlobClient(entry.blobName).deleteIfExists();
      return { ok: true, artifact_id: String(entry.id) };
    },
  };

  /* --- HTTP -------------------------------------------------------------- */

  function send(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  async function readBody(req: IncomingMessage): Promise<string> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) throw new TwirpError('malformed', 'request body too large');
      chunks.push(chunk);
    }
    return Buffer.concat(chunks).toString('utf8');
  }

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
      if (req.method !== 'POST') throw new TwirpError('bad_route', `unsupported method ${req.method} (only POST is allowed)`);
      const table = record.service === 'CacheService' ? cacheService : record.service === 'ArtifactService' ? artifactService : undefined;
      const fn = m && m[1]!.startsWith(SERVICE_PREFIX) && table ? table[record.method] : undefined;
      if (!fn) throw new TwirpError('bad_route', `no handler for path ${JSON.stringify(path)}`);
      const contentType = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      if (contentType !== 'application/json') {
        throw new TwirpError('bad_route', `unexpected Content-Type: ${JSON.stringify(contentType)} (this test service speaks JSON only)`);
      }
      const auth = req.headers.authorization ?? '';
      const token = /^Bearer (\S+)$/.exec(auth)?.[1];
      if (!token || !decodeJwtPayload(token)) throw new TwirpError('unauthenticated', 'a Bearer runtime token (JWT) is required');
      const ids = runtimeTokenIds(token);
      const text = await readBody(req);
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        throw new TwirpError('malformed', 'the json request could not be decoded');
      }
      record.request = body;
      if (!body || typeof body !== 'object' || Array.isArray(body)) throw new TwirpError('malformed', 'the json request could not be decoded');
      if (record.service === 'ArtifactService' && !ids) {
        throw new TwirpError('unauthenticated', 'the runtime token has no Actions.Results:<run>:<job> scope');
      }
      const out = await fn(new Fields(body as Json), ids ?? { runBackendId: '', jobBackendId: '' });
      record.status = 200;
      record.response = out;
      send(res, 200, out);
    } catch (err) {
      const e = err instanceof TwirpError ? err : new TwirpError('internal', (err as Error)?.message ?? String(err));
      const status = TWIRP_STATUS[e.code];
      const out = { code: e.code, msg: e.message };
      record.status = status;
      record.code = e.code;
      record.response = out;
      if (!res.headersSent) send(res, status, out);
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
    container: containerName,
    blobEndpoint: endpoint,
    caches: () => caches.map((e) => ({ ...e })),
    artifacts: () => artifacts.map((a) => ({ ...a })),
    requests: () => log.map((r) => ({ ...r })),
    async listBlobs() {
      const out: { name: string; size: number; contentType?: string }[] = [];
      for await (const b of container.listBlobsFlat()) {
        out.push({
          name: b.name,
          size: b.properties.contentLength ?? 0,
          ...(b.properties.contentType ? { contentType: b.properties.contentType } : {}),
        });
      }
      return out;
    },
    async readBlob(blobName) {
      return container.getBlockBlobClient(blobName).downloadToBuffer();
    },
    stop: () =>
      (stopped ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      })),
  };
}

/** A random backend ID, shaped like the runner's (a UUID). */
export const backendId = (): string => randomUUID();
