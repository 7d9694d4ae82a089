/**
 * The results service's Twirp methods (github.actions.results.api.v1.CacheService
 * and .ArtifactService) over in-memory state, handing out SAS URLs of the blob
 * container (results-blobs.ts). The HTTP side is in results-service.ts, the
 * request reading and errors in twirp.ts.
 */
import { createHash } from 'node:crypto';
import type { ResultsBlobs } from './results-blobs.js';
import type { RuntimeTokenIds } from './runtime-token.js';
import { TwirpError, type Fields, type Json } from './twirp.js';

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

/** One Twirp method: the request's fields and the caller's runtime-token IDs → the response. */
export type TwirpMethod = (f: Fields, token: RuntimeTokenIds) => Promise<Json>;

/* ------------------------------------------------------------------------- */
/* CacheService                                                              */
/* ------------------------------------------------------------------------- */

const matchesVersion = (e: CacheEntry, version: string): boolean => e.finalized && e.version === version;
const newestFirst = (a: CacheEntry, b: CacheEntry): number =>
  (b.finalizedAt?.getTime() ?? 0) - (a.finalizedAt?.getTime() ?? 0) || b.id - a.id;

/** CacheService's methods; entries are added to `caches`. */
export function cacheService(caches: CacheEntry[], blobs: ResultsBlobs): Record<string, TwirpMethod> {
  let nextCacheId = 1;
  return {
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
      return { ok: true, signed_upload_url: blobs.sasUrl(entry.blobName, 'cw'), message: '' };
    },

    async FinalizeCacheEntryUpload(f) {
      const key = f.string('key', true)!;
      const version = f.string('version', true)!;
      const sizeBytes = f.int64('size_bytes', true)!;
      if (sizeBytes < 0) throw new TwirpError('invalid_argument', 'size_bytes must not be negative');
      const entry = caches.find((e) => e.key === key && e.version === version);
      if (!entry) throw new TwirpError('not_found', `no cache entry reserved for key ${key} and version ${version}`);
      if (entry.finalized)
        throw new TwirpError('already_exists', 'cache entry with the same key, version, and scope already exists');
      const actual = await blobs.size(entry.blobName);
      if (actual === undefined)
        throw new TwirpError('failed_precondition', `the cache archive for key ${key} was not uploaded`);
      if (actual !== sizeBytes) {
        throw new TwirpError(
          'invalid_argument',
          `size_bytes ${sizeBytes} does not match the uploaded archive (${actual} bytes)`,
        );
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
      return { ok: true, signed_download_url: blobs.sasUrl(hit.blobName, 'r'), matched_key: hit.key };
    },
  };
}

/* ------------------------------------------------------------------------- */
/* ArtifactService                                                           */
/* ------------------------------------------------------------------------- */

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

/** ArtifactService's methods; artifacts are added to `artifacts`. */
export function artifactService(artifacts: ArtifactEntry[], blobs: ResultsBlobs): Record<string, TwirpMethod> {
  let nextArtifactId = 1;
  /** The live artifact `name` of the job `ids` (only a finalized one when `finalized`). */
  const jobArtifact = (ids: RuntimeTokenIds, name: string, finalized: boolean): ArtifactEntry | undefined =>
    artifacts.find(
      (a) =>
        live(a) &&
        (!finalized || a.finalized) &&
        a.runBackendId === ids.runBackendId &&
        a.jobBackendId === ids.jobBackendId &&
        a.name === name,
    );
  /** The finalized artifact a GetSignedArtifactURL / DeleteArtifact request names. */
  const requestedArtifact = (f: Fields, token: RuntimeTokenIds): ArtifactEntry => {
    const ids = checkIds(f, token, false);
    const name = f.string('name', true)!;
    const entry = jobArtifact(ids, name, true);
    if (!entry) throw new TwirpError('not_found', `artifact ${JSON.stringify(name)} not found`);
    return entry;
  };
  return {
    async CreateArtifact(f, token) {
      const ids = checkIds(f, token, true);
      const name = f.string('name', true)!;
      const version = f.int32('version');
      if (version === undefined) throw new TwirpError('invalid_argument', 'version is required');
      if (version < 4) throw new TwirpError('invalid_argument', `unsupported artifact version ${version}`);
      const expiresAt = f.timestamp('expires_at');
      const mimeType = f.string('mime_type') ?? 'application/zip';
      if (/[\\/":<>|*?\r\n]/.test(name))
        throw new TwirpError('invalid_argument', `invalid artifact name ${JSON.stringify(name)}`);
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
      return { ok: true, signed_upload_url: blobs.sasUrl(entry.blobName, 'cw') };
    },

    async FinalizeArtifact(f, token) {
      const ids = checkIds(f, token, true);
      const name = f.string('name', true)!;
      const size = f.int64('size', true)!;
      const hash = f.string('hash');
      const entry = jobArtifact(ids, name, false);
      if (!entry)
        throw new TwirpError('not_found', `no artifact named ${JSON.stringify(name)} was created by this job`);
      if (entry.finalized)
        throw new TwirpError('failed_precondition', `artifact ${JSON.stringify(name)} is already finalized`);
      const actual = await blobs.size(entry.blobName);
      if (actual === undefined)
        throw new TwirpError('failed_precondition', `artifact ${JSON.stringify(name)} was not uploaded`);
      if (actual !== size)
        throw new TwirpError('invalid_argument', `size ${size} does not match the uploaded blob (${actual} bytes)`);
      if (hash !== undefined) {
        const m = /^sha256:([0-9a-f]{64})$/.exec(hash);
        if (!m)
          throw new TwirpError('invalid_argument', `hash must be sha256:<64 hex digits>, got ${JSON.stringify(hash)}`);
        const digest = await blobs.sha256(entry.blobName);
        if (digest !== m[1])
          throw new TwirpError('invalid_argument', `hash ${hash} does not match the uploaded blob (sha256:${digest})`);
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
      const entry = requestedArtifact(f, token);
      const fileName = entry.blobName.slice(entry.blobName.lastIndexOf('/') + 1);
      return {
        // rscd: the downloader takes a raw (non-zip) artifact's file name from Content-Disposition.
        signed_url: blobs.sasUrl(entry.blobName, 'r', {
          contentDisposition: `attachment; filename="${fileName.replace(/[^\x20-\x7e]|["\\]/g, '_')}"; filename*=UTF-8''${encodeURIComponent(fileName)}`,
        }),
      };
    },

    async DeleteArtifact(f, token) {
      const entry = requestedArtifact(f, token);
      entry.deleted = true;
      await blobs.remove(entry.blobName);
      return { ok: true, artifact_id: String(entry.id) };
    },
  };
}
