/**
 * The test backend for the Actions toolkit, exercised with the real libraries:
 * Azurite + the Twirp results service (test/helpers/results-service.ts), driven
 * by @actions/cache and @actions/artifact running in child processes started by
 * the action harness (test/helpers/action-harness.ts) with a runner-like env —
 * they read ACTIONS_RESULTS_URL etc. at import/first use, so they must not run
 * in the test process. Also the harness's own self-test, with throwaway scripts
 * in test/.cache (gitignored) so that they resolve node_modules.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  fakeRuntimeToken,
  processExists,
  runtimeTokenIds,
  startAzurite,
  startResultsService,
  type Azurite,
  type ResultsService,
} from '../helpers/results-service.js';
import {
  REPO_ROOT,
  inputEnvName,
  parseActionYml,
  parseKeyValueFile,
  parseWorkflowCommands,
  readActionYml,
  runAction,
  type ActionRun,
} from '../helpers/action-harness.js';

const CACHE_ROOT = join(REPO_ROOT, 'test', '.cache');
const NODE24 = join(CACHE_ROOT, 'node24', 'package', 'bin', 'node');

/** relative path → contents of every regular file under dir. */
function readTree(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.set(relative(dir, p), readFileSync(p));
    }
  };
  walk(dir);
  return out;
}

function expectSameTree(actual: string, expected: string): void {
  const a = readTree(actual);
  const e = readTree(expected);
  expect([...a.keys()].sort()).toEqual([...e.keys()].sort());
  for (const [name, bytes] of e) {
    const got = a.get(name)!;
    expect(got.length, name).toBe(bytes.length);
    expect(Buffer.compare(got, bytes), name).toBe(0);
  }
}

async function writeTree(dir: string, files: Record<string, Buffer | string>): Promise<void> {
  for (const [name, content] of Object.entries(files)) {
    await mkdir(join(dir, name, '..'), { recursive: true });
    await writeFile(join(dir, name), content);
  }
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

function resultOf(run: ActionRun): Record<string, unknown> {
  if (run.mainCode !== 0) {
    throw new Error(
      `main exited ${run.mainCode} (${run.main.signal})\n--- stdout\n${run.main.stdout}\n--- stderr\n${run.main.stderr}`,
    );
  }
  const raw = run.outputs.result;
  if (!raw) throw new Error(`no result output\n${run.main.stdout}\n${run.main.stderr}`);
  return JSON.parse(raw) as Record<string, unknown>;
}

/* ------------------------------------------------------------------------- */
/* the toolkit against Azurite + the results service                          */
/* ------------------------------------------------------------------------- */

const CACHE_SAVE = `
import * as core from '@actions/core';
import * as cache from '@actions/cache';
import { cpSync, rmSync } from 'node:fs';
import { join } from 'node:path';
const ws = process.env.GITHUB_WORKSPACE;
const sets = process.env.TEST_SETS;
const put = (set) => {
  rmSync(join(ws, 'cachedir'), { recursive: true, force: true });
  cpSync(join(sets, set), join(ws, 'cachedir'), { recursive: true });
};
const r = { available: cache.isFeatureAvailable() };
put('one');
r.exactId = await cache.saveCache(['cachedir'], 'tool-linux-x64-0123abcd');
r.duplicateId = await cache.saveCache(['cachedir'], 'tool-linux-x64-0123abcd');
put('two');
r.olderId = await cache.saveCache(['cachedir'], 'deps-linux-v1-aaa');
put('three');
r.newerId = await cache.saveCache(['cachedir'], 'deps-linux-v1-bbb');
core.setOutput('result', JSON.stringify(r));
`;

const CACHE_RESTORE = `
import * as core from '@actions/core';
import * as cache from '@actions/cache';
import { cpSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
const ws = process.env.GITHUB_WORKSPACE;
const keep = (label) => {
  if (existsSync(join(ws, 'cachedir'))) cpSync(join(ws, 'cachedir'), join(ws, 'restored', label), { recursive: true });
  rmSync(join(ws, 'cachedir'), { recursive: true, force: true });
};
const r = {};
r.exact = await cache.restoreCache(['cachedir'], 'tool-linux-x64-0123abcd'); keep('exact');
r.restoreKey = await cache.restoreCache(['cachedir'], 'deps-linux-v1-zzz', ['deps-linux-v2-', 'deps-linux-v1-']); keep('restoreKey');
r.primaryPrefix = await cache.restoreCache(['cachedir'], 'deps-linux-v1-a'); keep('primaryPrefix');
r.miss = await cache.restoreCache(['cachedir'], 'nothing-here', ['nothing-']) ?? null; keep('miss');
r.otherVersion = await cache.restoreCache(['otherdir'], 'tool-linux-x64-0123abcd') ?? null;
r.lookupOnly = await cache.restoreCache(['cachedir'], 'tool-linux-x64-0123abcd', [], { lookupOnly: true });
r.lookupOnlyLeftNothing = !existsSync(join(ws, 'cachedir'));
core.setOutput('result', JSON.stringify(r));
`;

const ARTIFACT_UPLOAD = `
import * as core from '@actions/core';
import { DefaultArtifactClient } from '@actions/artifact';
import { join } from 'node:path';
const ws = process.env.GITHUB_WORKSPACE;
const root = join(ws, 'out');
const client = new DefaultArtifactClient();
const r = {};
r.up = await client.uploadArtifact('build-output', [join(root, 'report.txt'), join(root, 'bin', 'data.bin')], root, { retentionDays: 1 });
try { await client.uploadArtifact('build-output', [join(root, 'report.txt')], root); r.duplicate = 'no error'; }
catch (e) { r.duplicate = e.message; }
r.raw = await client.uploadArtifact('notes.txt', [join(ws, 'raw', 'notes.txt')], join(ws, 'raw'), { skipArchive: true });
r.scratch = await client.uploadArtifact('scratch', [join(root, 'report.txt')], root);
r.list = await client.listArtifacts();
r.got = await client.getArtifact('build-output');
r.download = await client.downloadArtifact(r.up.id, { path: join(ws, 'dl-a') });
r.deleted = await client.deleteArtifact('scratch');
r.listAfter = await client.listArtifacts();
core.setOutput('result', JSON.stringify(r));
`;

const ARTIFACT_DOWNLOAD = `
import * as core from '@actions/core';
import { DefaultArtifactClient } from '@actions/artifact';
import { join } from 'node:path';
const ws = process.env.GITHUB_WORKSPACE;
const client = new DefaultArtifactClient();
const r = {};
r.list = await client.listArtifacts();
r.got = await client.getArtifact('build-output');
r.download = await client.downloadArtifact(r.got.artifact.id, { path: join(ws, 'dl-b'), expectedHash: r.got.artifact.digest });
const raw = r.list.artifacts.find((a) => a.name === 'notes.txt');
r.rawDownload = await client.downloadArtifact(raw.id, { path: join(ws, 'dl-raw') });
core.setOutput('result', JSON.stringify(r));
`;

describe('results service on Azurite, with the real @actions/cache and @actions/artifact', () => {
  let azurite: Azurite;
  let service: ResultsService;
  let scratch: string;
  const runBackendId = randomUUID();
  const jobA = randomUUID();
  const jobB = randomUUID();

  beforeAll(async () => {
    await mkdir(CACHE_ROOT, { recursive: true });
    scratch = await mkdtemp(join(CACHE_ROOT, 'results-service-'));
    await writeFile(join(scratch, 'cache-save.mjs'), CACHE_SAVE);
    await writeFile(join(scratch, 'cache-restore.mjs'), CACHE_RESTORE);
    await writeFile(join(scratch, 'artifact-upload.mjs'), ARTIFACT_UPLOAD);
    await writeFile(join(scratch, 'artifact-download.mjs'), ARTIFACT_DOWNLOAD);
    azurite = await startAzurite();
    service = await startResultsService(azurite.blobEndpoint);
  });

  afterAll(async () => {
    await service?.stop();
    await azurite?.stop();
    if (azurite) {
      expect(processExists(azurite.pid)).toBe(false);
      expect(existsSync(azurite.location)).toBe(false);
    }
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it('starts Azurite on 127.0.0.1 and creates the container', async () => {
    expect(azurite.blobEndpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/devstoreaccount1$/);
    expect(processExists(azurite.pid)).toBe(true);
    expect(service.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(await service.listBlobs()).toEqual([]);
  });

  it('round-trips caches: save, duplicate key, exact hit, restore-key prefix, miss, other version', async () => {
    const sets = join(scratch, 'sets');
    await writeTree(join(sets, 'one'), {
      'hello.txt': 'hello cache\n',
      'bin/random.bin': randomBytes(3 * 1024 * 1024 + 17),
      'nested/deep/file with spaces.txt': 'spaces ok',
      empty: '',
    });
    await writeTree(join(sets, 'two'), { 'which.txt': 'older aaa', 'data.bin': randomBytes(4096) });
    await writeTree(join(sets, 'three'), { 'which.txt': 'newer bbb', 'data.bin': randomBytes(8192) });
    const wsA = join(scratch, 'cache-ws-a');
    const wsB = join(scratch, 'cache-ws-b');
    await mkdir(wsA);
    await mkdir(wsB);

    const save = await runAction({
      mainScript: join(scratch, 'cache-save.mjs'),
      postScript: null,
      workspace: wsA,
      results: { url: service.url, runBackendId, jobBackendId: jobA },
      env: { TEST_SETS: sets },
    });
    const saved = resultOf(save);
    if (process.env.RESULTS_SERVICE_TEST_LOG) console.log(save.stdout, save.stderr);
    expect(saved.available).toBe(true);
    expect(save.warnings).toEqual([]);
    expect(save.errors).toEqual([]);
    expect(saved.exactId).toBeGreaterThan(0);
    expect(saved.duplicateId).toBe(-1); // the 409 is not an error for the caller
    expect(save.stdout).toContain(
      'Failed to save: Unable to reserve cache with key tool-linux-x64-0123abcd, another job may be creating this cache.',
    );
    expect(saved.olderId).toBeGreaterThan(saved.exactId as number);
    expect(saved.newerId).toBeGreaterThan(saved.olderId as number);
    // The clients mask the SAS signature of every signed URL they get.
    expect(save.masks.length).toBeGreaterThan(0);
    const dup = service.requests().filter((r) => r.method === 'CreateCacheEntry' && r.status === 409);
    expect(dup).toHaveLength(1);
    expect(dup[0]!.response).toEqual({
      code: 'already_exists',
      msg: 'cache entry with the same key, version, and scope already exists',
    });
    // Requests use the proto field names.
    const finalize = service.requests().find((r) => r.method === 'FinalizeCacheEntryUpload')!;
    expect(Object.keys(finalize.request as object).sort()).toEqual(['key', 'size_bytes', 'version']);
    expect(typeof (finalize.request as { size_bytes: unknown }).size_bytes).toBe('string');

    // The archives are real blobs in Azurite, of the finalized sizes.
    const entries = service.caches();
    expect(entries.map((e) => [e.key, e.finalized])).toEqual([
      ['tool-linux-x64-0123abcd', true],
      ['deps-linux-v1-aaa', true],
      ['deps-linux-v1-bbb', true],
    ]);
    const blobs = await service.listBlobs();
    for (const e of entries) {
      expect(blobs.find((b) => b.name === e.blobName)?.size).toBe(e.sizeBytes);
      const archive = await service.readBlob(e.blobName);
      expect(archive.subarray(0, 4).toString('hex')).toBe('28b52ffd'); // zstd magic: a real tar.zst
    }

    const restore = await runAction({
      mainScript: join(scratch, 'cache-restore.mjs'),
      postScript: null,
      workspace: wsB,
      results: { url: service.url, runBackendId: randomUUID(), jobBackendId: jobB },
    });
    const restored = resultOf(restore);
    expect(restored).toEqual({
      exact: 'tool-linux-x64-0123abcd',
      restoreKey: 'deps-linux-v1-bbb', // newest prefix match
      primaryPrefix: 'deps-linux-v1-aaa',
      miss: null,
      otherVersion: null, // same key, other paths → other version
      lookupOnly: 'tool-linux-x64-0123abcd',
      lookupOnlyLeftNothing: true,
    });
    expect(restore.stdout).toContain('Cache hit for restore-key: deps-linux-v1-bbb');
    expect(restore.warnings).toEqual([]);
    expectSameTree(join(wsB, 'restored', 'exact'), join(sets, 'one'));
    expectSameTree(join(wsB, 'restored', 'restoreKey'), join(sets, 'three'));
    expectSameTree(join(wsB, 'restored', 'primaryPrefix'), join(sets, 'two'));
    expect(existsSync(join(wsB, 'restored', 'miss'))).toBe(false);
    for (const run of [save, restore]) expect(processExists(run.main.pid!)).toBe(false);
  });

  it('round-trips artifacts: upload, duplicate name, raw file, list, get, download, delete, other job', async () => {
    const wsA = join(scratch, 'art-ws-a');
    const wsB = join(scratch, 'art-ws-b');
    const notes = 'raw, not zipped\n';
    await writeTree(join(wsA, 'out'), {
      'report.txt': 'build report\n',
      'bin/data.bin': randomBytes(2 * 1024 * 1024 + 3),
    });
    await writeTree(join(wsA, 'raw'), { 'notes.txt': notes });
    await mkdir(wsB);

    const upload = await runAction({
      mainScript: join(scratch, 'artifact-upload.mjs'),
      postScript: null,
      workspace: wsA,
      results: { url: service.url, runBackendId, jobBackendId: jobA },
    });
    const up = resultOf(upload) as {
      up: { id: number; size: number; digest: string };
      duplicate: string;
      raw: { id: number; size: number; digest: string };
      scratch: { id: number };
      list: { artifacts: { name: string; id: number; size: number; digest?: string }[] };
      got: { artifact: { name: string; id: number; size: number; digest?: string } };
      download: { downloadPath: string; digestMismatch: boolean };
      deleted: { id: number };
      listAfter: { artifacts: { name: string }[] };
    };
    expect(upload.warnings).toEqual([]);
    expect(upload.errors).toEqual([]);
    expect(up.up.id).toBeGreaterThan(0);
    expect(up.duplicate).toContain('(409) Conflict: an artifact with this name already exists on the workflow run');
    expect(up.list.artifacts.map((a) => a.name)).toEqual(['build-output', 'notes.txt', 'scratch']);
    expect(up.got.artifact).toMatchObject({
      name: 'build-output',
      id: up.up.id,
      size: up.up.size,
      digest: `sha256:${up.up.digest}`,
    });
    expect(up.download.digestMismatch).toBe(false);
    expect(up.deleted.id).toBe(up.scratch.id);
    expect(up.listAfter.artifacts.map((a) => a.name)).toEqual(['build-output', 'notes.txt']);
    expectSameTree(join(wsA, 'dl-a'), join(wsA, 'out'));
    // Requests carry the backend IDs from the token's Actions.Results scope.
    const create = service.requests().find((r) => r.method === 'CreateArtifact')!;
    expect(create.request).toMatchObject({
      workflow_run_backend_id: runBackendId,
      workflow_job_run_backend_id: jobA,
      name: 'build-output',
      version: 7,
      mime_type: 'application/zip',
    });
    expect((create.request as { expires_at?: string }).expires_at).toMatch(/^\d{4}-\d\d-\d\dT/);

    // The zip is a real blob in Azurite whose sha256 is the reported digest.
    const entry = service.artifacts().find((a) => a.name === 'build-output')!;
    const blob = await service.readBlob(entry.blobName);
    expect(blob.length).toBe(up.up.size);
    expect(sha256(blob)).toBe(up.up.digest);
    expect(blob.subarray(0, 2).toString()).toBe('PK');
    const blobs = await service.listBlobs();
    expect(blobs.find((b) => b.name === entry.blobName)?.contentType).toBe('application/zip');
    expect(blobs.find((b) => b.name.endsWith('/notes.txt'))?.contentType).toBe('text/plain');
    // The deleted artifact's blob is gone.
    const deleted = service.artifacts().find((a) => a.name === 'scratch')!;
    expect(deleted.deleted).toBe(true);
    expect(blobs.some((b) => b.name === deleted.blobName)).toBe(false);

    // Another job of the same run sees and downloads it.
    const download = await runAction({
      mainScript: join(scratch, 'artifact-download.mjs'),
      postScript: null,
      workspace: wsB,
      results: { url: service.url, runBackendId, jobBackendId: jobB },
    });
    const down = resultOf(download) as {
      list: { artifacts: { name: string }[] };
      download: { digestMismatch: boolean };
    };
    expect(down.list.artifacts.map((a) => a.name)).toEqual(['build-output', 'notes.txt']);
    expect(download.warnings).toEqual([]);
    expect(down.download.digestMismatch).toBe(false);
    expectSameTree(join(wsB, 'dl-b'), join(wsA, 'out'));
    // A raw (skipArchive) artifact comes back as the file, named from Content-Disposition.
    expect(readFileSync(join(wsB, 'dl-raw', 'notes.txt'), 'utf8')).toBe(notes);
    expect(readdirSync(join(wsB, 'dl-raw'))).toEqual(['notes.txt']);
  });

  it('validates requests like the real service', async () => {
    const token = fakeRuntimeToken(runBackendId, jobA);
    const call = async (
      service_: string,
      method: string,
      body: unknown,
      init: { token?: string | null; httpMethod?: string; contentType?: string } = {},
    ): Promise<{ status: number; body: unknown }> => {
      const headers: Record<string, string> = { 'content-type': init.contentType ?? 'application/json' };
      const t = init.token === undefined ? token : init.token;
      if (t) headers.authorization = `Bearer ${t}`;
      const res = await fetch(new URL(`/twirp/github.actions.results.api.v1.${service_}/${method}`, service.url), {
        method: init.httpMethod ?? 'POST',
        headers,
        ...(init.httpMethod === 'GET' ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
      });
      return { status: res.status, body: await res.json() };
    };
    expect(await call('CacheService', 'CreateCacheEntry', { version: 'v' })).toEqual({
      status: 400,
      body: { code: 'invalid_argument', msg: 'key is required' },
    });
    expect(await call('CacheService', 'GetCacheEntryDownloadURL', { key: 'k' })).toEqual({
      status: 400,
      body: { code: 'invalid_argument', msg: 'version is required' },
    });
    expect(
      (await call('CacheService', 'GetCacheEntryDownloadURL', { key: 'k', version: 'v', restore_keys: 'x' })).body,
    ).toMatchObject({ code: 'malformed' });
    expect(await call('CacheService', 'GetCacheEntryDownloadURL', { key: 'k', version: 'v' })).toEqual({
      status: 200,
      body: { ok: false, signed_download_url: '', matched_key: '' },
    });
    expect(
      (await call('CacheService', 'FinalizeCacheEntryUpload', { key: 'never', version: 'v', size_bytes: '1' })).status,
    ).toBe(404);
    expect(
      (await call('CacheService', 'CreateCacheEntry', { key: 'k', version: 'v' }, { token: null })).body,
    ).toMatchObject({ code: 'unauthenticated' });
    expect((await call('CacheService', 'CreateCacheEntry', 'not json')).body).toMatchObject({ code: 'malformed' });
    expect(
      (await call('CacheService', 'CreateCacheEntry', {}, { contentType: 'application/protobuf' })).body,
    ).toMatchObject({ code: 'bad_route' });
    expect((await call('CacheService', 'CreateCacheEntry', null, { httpMethod: 'GET' })).status).toBe(404);
    expect((await call('CacheService', 'NoSuchMethod', {})).body).toMatchObject({ code: 'bad_route' });
    const otherRun = {
      workflow_run_backend_id: randomUUID(),
      workflow_job_run_backend_id: jobA,
      name: 'x',
      version: 7,
    };
    expect(await call('ArtifactService', 'CreateArtifact', otherRun)).toMatchObject({
      status: 403,
      body: { code: 'permission_denied' },
    });
    expect(
      (
        await call('ArtifactService', 'CreateArtifact', {
          workflow_run_backend_id: runBackendId,
          workflow_job_run_backend_id: jobA,
          name: 'v',
        })
      ).body,
    ).toEqual({ code: 'invalid_argument', msg: 'version is required' });
    const noScope =
      'eyJhbGciOiJub25lIn0.' +
      Buffer.from(JSON.stringify({ scp: 'Actions.GenericRead:x' })).toString('base64url') +
      '.';
    expect(
      (await call('ArtifactService', 'ListArtifacts', { workflow_run_backend_id: runBackendId }, { token: noScope }))
        .status,
    ).toBe(401);
  });

  it('makes runtime tokens @actions/artifact can read', () => {
    const run = randomUUID();
    const job = randomUUID();
    const token = fakeRuntimeToken(run, job);
    expect(token.split('.')).toHaveLength(3);
    const payload = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { scp: string };
    expect(payload.scp.split(' ')).toContain(`Actions.Results:${run}:${job}`);
    expect(runtimeTokenIds(token)).toEqual({ runBackendId: run, jobBackendId: job });
  });
});

/* ------------------------------------------------------------------------- */
/* the harness itself                                                        */
/* ------------------------------------------------------------------------- */

// Installs its signal handlers before importing anything, so an early signal is handled.
const SELFTEST_MAIN = `
import { appendFileSync } from 'node:fs';
const mode = process.env.SELFTEST_MODE ?? 'ok';
const state = (name, value) => appendFileSync(process.env.GITHUB_STATE, name + '<<EOF_' + name + '\\n' + value + '\\nEOF_' + name + '\\n');
if (mode === 'wait-signal') {
  process.on('SIGINT', () => { console.log('main got SIGINT'); state('phase', 'cancelled'); process.exit(130); });
}
if (mode === 'ignore-signals') {
  process.on('SIGINT', () => console.log('ignoring SIGINT'));
  process.on('SIGTERM', () => console.log('ignoring SIGTERM'));
}
const core = await import('@actions/core');
core.info('cwd=' + process.cwd());
core.startGroup('inputs');
const inputs = {
  image: core.getInput('image'),
  shell: core.getInput('shell'),
  artifactName: core.getInput('artifact-name'),
  imageCache: core.getBooleanInput('image-cache'),
  toolsSource: core.getInput('tools-source'),
  env: core.getMultilineInput('env'),
  workspacePath: core.getInput('workspace-path'),
};
core.endGroup();
core.setOutput('inputs', JSON.stringify(inputs));
core.setOutput('exit-code', 'line one\\nline two\\n  indented = with equals');
core.setOutput('undeclared', 'x');
core.exportVariable('SELFTEST_VAR', 'exported value\\nsecond line');
core.addPath('/opt/selftest/one');
core.addPath('/opt/selftest/two');
core.saveState('token', 'state-value-1');
core.saveState('multi', 'a\\nb=c');
core.setSecret('s3cr3t-value');
core.warning('a warning with 100% and\\nnewline');
core.error('an error annotation', { file: 'src/a.ts', startLine: 3, title: 'Title, with: colon' });
core.notice('a notice');
core.debug('debug line');
await core.summary.addHeading('Self-test').addRaw('summary body').write();
const env = {};
for (const k of ['GITHUB_WORKSPACE', 'RUNNER_TEMP', 'RUNNER_TOOL_CACHE', 'RUNNER_OS', 'RUNNER_ARCH', 'CI',
  'GITHUB_RUN_ID', 'GITHUB_RUN_ATTEMPT', 'GITHUB_REPOSITORY', 'GITHUB_SHA', 'GITHUB_REF', 'GITHUB_JOB',
  'GITHUB_ACTION', 'GITHUB_EVENT_PATH', 'ACTIONS_RESULTS_URL', 'ACTIONS_RUNTIME_TOKEN',
  'ACTIONS_CACHE_SERVICE_V2', 'INPUT_ARTIFACT-NAME', 'INPUT_IMAGE-CACHE', 'VITEST', 'STATE_token']) env[k] = process.env[k] ?? null;
core.setOutput('env', JSON.stringify(env));
core.setOutput('node-version', process.version);
core.setOutput('uid', String(process.getuid()));
if (mode === 'fail') core.setFailed('main failed on purpose');
if (mode === 'wait-signal' || mode === 'ignore-signals') {
  core.saveState('phase', 'started');
  console.log('READY');
  setInterval(() => {}, 1000);
}
`;

const SELFTEST_POST = `
import * as core from '@actions/core';
core.setOutput('report', JSON.stringify({
  token: core.getState('token'),
  multi: core.getState('multi'),
  phase: core.getState('phase'),
  selftestVar: process.env.SELFTEST_VAR ?? null,
  pathHead: process.env.PATH.split(':').slice(0, 2),
  image: core.getInput('image'),
  outputFile: process.env.GITHUB_OUTPUT,
}));
core.exportVariable('FROM_POST', '1');
console.log('post ran');
`;

describe('action harness', () => {
  let dir: string;
  let main: string;
  let post: string;

  beforeAll(async () => {
    await mkdir(CACHE_ROOT, { recursive: true });
    dir = await mkdtemp(join(CACHE_ROOT, 'harness-selftest-'));
    await chmod(dir, 0o755); // readable by the runuser test's user
    main = join(dir, 'main.mjs');
    post = join(dir, 'post.mjs');
    await writeFile(main, SELFTEST_MAIN, { mode: 0o644 });
    await writeFile(post, SELFTEST_POST, { mode: 0o644 });
  });

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('reads action.yml: inputs with defaults, outputs, runs', () => {
    const meta = readActionYml();
    expect(meta.runs).toMatchObject({
      using: 'node24',
      main: 'dist/main.js',
      post: 'dist/post.js',
      'post-if': 'always()',
    });
    expect(meta.inputs.image).toMatchObject({ required: true });
    expect(meta.inputs.image!.default).toBeUndefined();
    expect(meta.inputs.shell!.default).toBe('sh');
    expect(meta.inputs['image-cache']!.default).toBe('true');
    expect(meta.inputs['artifact-name']!.default).toBe('');
    expect(meta.inputs['tools-source']!.default).toBe('https://deb.debian.org/debian');
    expect(meta.inputs.shell!.description).toBe(
      'Shell for run: sh (run with sh -e) or bash (bash --noprofile --norc -eo pipefail)',
    );
    expect(meta.outputs).toContain('exit-code');
    const yml = parseActionYml(
      'name: x\ninputs:\n  a:\n    description: >\n      folded\n      text\n    default: |\n      l1\n      l2\n  "b c":\n    default: "q\\"uoted" # comment\nruns:\n  using: node20\n  main: m.js\n',
    );
    expect(yml.inputs.a!.default).toBe('l1\nl2\n');
    expect(yml.inputs.a!.description).toBe('folded text\n');
    expect(yml.inputs['b c']!.default).toBe('q"uoted');
    expect(inputEnvName('b c')).toBe('INPUT_B_C');
    expect(inputEnvName('artifact-name')).toBe('INPUT_ARTIFACT-NAME');
  });

  it('parses file commands and workflow commands with the runner rules', () => {
    expect(parseKeyValueFile('a=1\nb<<EOF\nx\n\ny=z\nEOF\nc=d=e\n')).toEqual({ a: '1', b: 'x\n\ny=z', c: 'd=e' });
    expect(() => parseKeyValueFile('b<<EOF\nx\n')).toThrow(/Matching delimiter not found 'EOF'/);
    expect(() => parseKeyValueFile('nothing\n')).toThrow(/Invalid format/);
    const cmds = parseWorkflowCommands(
      '::error file=a.ts,line=3,title=T%2C%3A::msg%0Aline2\n  ::warning::w\n::stop-commands::tok\n::error::hidden\n::tok::\n::notice::n\n::unknown::u\nplain\n',
    );
    expect(cmds.map((c) => [c.command, c.message])).toEqual([
      ['error', 'msg\nline2'],
      ['warning', 'w'],
      ['notice', 'n'],
    ]);
    expect(cmds[0]!.properties).toEqual({ file: 'a.ts', line: '3', title: 'T,:' });
  });

  const basic = (run: ActionRun): void => {
    expect(run.mainCode).toBe(0);
    expect(run.postCode).toBe(0);
    expect(JSON.parse(run.outputs.inputs!)).toEqual({
      image: 'docker://busybox:latest',
      shell: 'sh', // action.yml default
      artifactName: 'my-artifact',
      imageCache: false,
      toolsSource: 'https://deb.debian.org/debian',
      env: ['A=1', 'B=two words'],
      workspacePath: '/workspace',
    });
    expect(run.outputs['exit-code']).toBe('line one\nline two\n  indented = with equals');
    expect(run.undeclaredOutputs).toEqual(['inputs', 'undeclared', 'env', 'node-version', 'uid']);
    expect(run.unexpectedInputs).toEqual(['not-an-input']);
    const env = JSON.parse(run.outputs.env!) as Record<string, string | null>;
    expect(env).toMatchObject({
      GITHUB_WORKSPACE: run.workspace,
      RUNNER_TEMP: run.runnerTemp,
      RUNNER_TOOL_CACHE: run.toolCache,
      RUNNER_OS: 'Linux',
      RUNNER_ARCH: 'X64',
      CI: 'true',
      GITHUB_RUN_ATTEMPT: '1',
      GITHUB_REPOSITORY: 'metalor/build-cell',
      GITHUB_REF: 'refs/heads/main',
      GITHUB_JOB: 'build',
      GITHUB_ACTION: 'build-cell',
      ACTIONS_RESULTS_URL: 'http://127.0.0.1:9/',
      ACTIONS_CACHE_SERVICE_V2: 'True',
      'INPUT_ARTIFACT-NAME': 'my-artifact',
      'INPUT_IMAGE-CACHE': 'false',
      VITEST: null,
      STATE_token: null,
    });
    expect(env.GITHUB_RUN_ID).toMatch(/^\d+$/);
    expect(env.GITHUB_SHA).toMatch(/^[0-9a-f]{40}$/);
    expect(runtimeTokenIds(env.ACTIONS_RUNTIME_TOKEN!)).toEqual({
      runBackendId: run.runBackendId,
      jobBackendId: run.jobBackendId,
    });
    expect(run.main.stdout).toContain(`cwd=${run.workspace}`);
    expect(run.env).toEqual({ SELFTEST_VAR: 'exported value\nsecond line', FROM_POST: '1' });
    expect(run.path).toEqual(['/opt/selftest/one', '/opt/selftest/two']);
    expect(run.state).toEqual({ token: 'state-value-1', multi: 'a\nb=c' });
    expect(run.summary).toBe('<h1>Self-test</h1>\nsummary body');
    expect(run.groups).toEqual(['inputs']);
    expect(run.warnings).toEqual(['a warning with 100% and\nnewline']);
    expect(run.errors).toEqual(['an error annotation']);
    expect(run.commands.find((c) => c.command === 'error')!.properties).toEqual({
      title: 'Title, with: colon',
      file: 'src/a.ts',
      line: '3',
    });
    expect(run.notices).toEqual(['a notice']);
    expect(run.debug).toEqual(['debug line']); // parsed always; the runner shows them only with RUNNER_DEBUG
    expect(run.masks).toEqual(['s3cr3t-value']);
    const report = JSON.parse(run.post!.outputs.report!) as Record<string, unknown>;
    expect(report).toMatchObject({
      token: 'state-value-1',
      multi: 'a\nb=c',
      selftestVar: 'exported value\nsecond line',
      pathHead: ['/opt/selftest/two', '/opt/selftest/one'], // the runner prepends each in turn
      image: 'docker://busybox:latest',
    });
    expect(report.outputFile).not.toBe(run.main.processEnv.GITHUB_OUTPUT); // fresh files per step
    expect(run.post!.stdout).toContain('post ran');
    expect(run.main.fileCommandErrors).toEqual([]);
    for (const s of [run.main, run.post!]) expect(processExists(s.pid!)).toBe(false);
    expect(existsSync(run.dir)).toBe(false); // cleaned up
  };

  const inputs = {
    image: 'docker://busybox:latest',
    'artifact-name': 'my-artifact',
    'image-cache': false,
    env: 'A=1\nB=two words',
    'not-an-input': 'typo',
  };

  it('runs main then post like the runner, with inputs, file commands, state and workflow commands', async () => {
    const run = await runAction({
      inputs,
      mainScript: main,
      postScript: post,
      results: { url: 'http://127.0.0.1:9/' },
    });
    basic(run);
    expect(run.main.processEnv['INPUT_SHELL']).toBe('sh');
    expect(run.main.processEnv['INPUT_IMAGE']).toBe('docker://busybox:latest');
  });

  it('runs the steps with another Node (Node 24, as `using: node24`) when available', async (ctx) => {
    if (!existsSync(NODE24)) ctx.skip();
    const run = await runAction({
      inputs,
      node: NODE24,
      mainScript: main,
      postScript: post,
      results: { url: 'http://127.0.0.1:9/' },
    });
    basic(run);
    expect(run.outputs['node-version']).toMatch(/^v24\./);
  });

  it('sets RUNNER_DEBUG on request, and no results service env without one', async () => {
    const run = await runAction({ inputs, mainScript: main, postScript: post, debug: true });
    expect(run.main.processEnv.RUNNER_DEBUG).toBe('1');
    expect(run.debug).toContain('debug line');
    expect(JSON.parse(run.outputs.env!)).toMatchObject({ ACTIONS_RESULTS_URL: null, ACTIONS_RUNTIME_TOKEN: null });
  });

  it('runs post after a failed main (post-if: always())', async () => {
    const run = await runAction({ inputs, mainScript: main, postScript: post, env: { SELFTEST_MODE: 'fail' } });
    expect(run.mainCode).toBe(1);
    expect(run.errors).toContain('main failed on purpose');
    expect(run.postCode).toBe(0);
    expect(JSON.parse(run.post!.outputs.report!)).toMatchObject({ token: 'state-value-1' });
  });

  it('cancels like the runner: SIGINT to main, then post runs with the state saved so far', async () => {
    const run = await runAction({
      inputs,
      mainScript: main,
      postScript: post,
      env: { SELFTEST_MODE: 'wait-signal' },
      signalAfterMs: 1_500,
    });
    expect(run.main.stdout).toContain('READY');
    expect(run.main.stdout).toContain('main got SIGINT');
    expect(run.main.signalsSent.map((s) => s.signal)).toEqual(['SIGINT']);
    expect(run.mainCode).toBe(130);
    expect(run.state.phase).toBe('cancelled'); // the later of two saves wins
    expect(run.postCode).toBe(0);
    expect(JSON.parse(run.post!.outputs.report!)).toMatchObject({ phase: 'cancelled', token: 'state-value-1' });
  });

  it('escalates to SIGKILL when main ignores SIGTERM', async () => {
    const run = await runAction({
      inputs,
      mainScript: main,
      postScript: post,
      env: { SELFTEST_MODE: 'ignore-signals' },
      signalAfterMs: 1_500,
      signal: 'SIGTERM',
    });
    expect(run.main.stdout).toContain('ignoring SIGTERM');
    expect(run.main.signalsSent.map((s) => s.signal)).toEqual(['SIGTERM', 'SIGKILL']);
    expect(run.main.signal).toBe('SIGKILL');
    expect(run.mainCode).toBeNull();
    expect(run.postCode).toBe(0);
    expect(JSON.parse(run.post!.outputs.report!)).toMatchObject({ phase: 'started' });
  });

  it('runs the steps as another user through a wrapper', async (ctx) => {
    if (process.getuid?.() !== 0 || !existsSync('/usr/sbin/runuser')) ctx.skip();
    const nobody = Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).trim());
    const run = await runAction({
      inputs,
      mainScript: main,
      postScript: post,
      wrapper: ['runuser', '-u', 'nobody', '--'],
    });
    expect(run.mainCode).toBe(0);
    expect(run.outputs.uid).toBe(String(nobody));
    expect(run.postCode).toBe(0);
    expect(JSON.parse(run.post!.outputs.report!)).toMatchObject({ token: 'state-value-1' });
  });

  it('delivers the cancellation SIGINT to the wrapped node process', async (ctx) => {
    if (process.getuid?.() !== 0 || !existsSync('/usr/sbin/runuser')) ctx.skip();
    const run = await runAction({
      inputs,
      mainScript: main,
      postScript: post,
      wrapper: ['runuser', '-u', 'nobody', '--'],
      env: { SELFTEST_MODE: 'wait-signal' },
      signalAfterMs: 1_500,
    });
    expect(run.main.stdout).toContain('main got SIGINT');
    expect(run.main.signalsSent).toHaveLength(1);
    expect(run.main.signalsSent[0]!.pid).not.toBe(run.main.pid); // node, not runuser
    expect(run.mainCode).toBe(130);
    expect(JSON.parse(run.post!.outputs.report!)).toMatchObject({ phase: 'cancelled' });
  });
});
