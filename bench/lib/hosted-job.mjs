// A fresh hosted runner's job through the action (bench row 13), run as
// `node --import ./bench/lib/ts-register.mjs bench/lib/hosted-job.mjs CONFIG.json OUT.json`.
//
// The runner emulation of the integration tests (test/helpers/action-harness.ts) runs the bundled
// action's main and post steps with the test results service (Azurite behind it) as the Actions
// cache, and a local tools source serving the pinned .debs. Every timed job is a new VM: an empty
// tool cache, an emptied RUNNER_TEMP and an empty state dir, with the repository's Actions cache
// warm (one untimed job of each variant fills it first). The variants alternate, run by run.
//
// CONFIG: { image, arch, tlsVerify, workspace, tmp, runs, variants: { NAME: { inputs } }, logs? }
// (logs: a dir for each job's main-step output, each chunk stamped with its ms, and summary).
// OUT: per variant, per run: main and post ms, the summary's phase times, what came from the
// Actions cache (its "Cache Size" lines), the tools source's bytes, and the bytes received on lo
// and on the other interfaces (the Debian mirror of an apt-get in the job) while the job ran. A
// job that fails stops the bench with its output.
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runAction } from '../../test/helpers/action-harness.ts';
import { node24Binary } from '../../test/helpers/fixtures.ts';
import { startAzurite, startResultsService } from '../../test/helpers/results-service.ts';
import { ensureDeb, startSource } from '../../test/helpers/tools-source.ts';
import { pinFor, qemuPinFor } from '../../src/tools/pinned.ts';

const [configFile, outFile] = process.argv.slice(2);
const config = JSON.parse(readFileSync(configFile, 'utf8'));

/** Bytes received so far: on lo, and on every other interface. */
function received() {
  const lines = readFileSync('/proc/net/dev', 'utf8').split('\n').slice(2).filter(Boolean);
  const totals = { lo: 0, other: 0 };
  for (const line of lines) {
    const [name, rest] = line.split(':');
    totals[name.trim() === 'lo' ? 'lo' : 'other'] += Number(rest.trim().split(/\s+/)[0]);
  }
  return totals;
}

/** The pinned .debs a pinned-tools job can ask for, served by pool path. */
async function toolsSource() {
  const pins = [pinFor('umoci'), qemuPinFor('7.2'), pinFor('erofs-utils')].filter(Boolean);
  const files = new Map();
  for (const pin of pins) files.set(pin.pool, await ensureDeb(pin));
  const source = await startSource(files);
  const bytes = (from) =>
    source.requests.slice(from).reduce((sum, path) => {
      const pool = decodeURIComponent(path.replace(/^\/debian\//, ''));
      return sum + (files.has(pool) ? statSync(files.get(pool)).size : 0);
    }, 0);
  return { source, bytes };
}

let vm = 0;
/**
 * One job on a new VM: the tool cache, RUNNER_TEMP and the state dir start empty, at the same
 * paths every time (as on a hosted runner: the Actions cache's version is a hash of the paths).
 */
async function job(name, services, node) {
  vm++;
  const dir = join(config.tmp, 'vm');
  const [toolCache, runnerTemp, state] = ['tool-cache', 'runner-temp', 'state'].map((d) => join(dir, d));
  rmSync(dir, { recursive: true, force: true });
  for (const d of [toolCache, runnerTemp]) mkdirSync(d, { recursive: true });
  const inputs = {
    image: config.image,
    arch: config.arch,
    'tls-verify': String(config.tlsVerify),
    tools: 'pinned',
    'tools-source': `${services.tools.source.url}/debian`,
    'image-cache': 'true',
    'state-dir': state,
    ...config.variants[name].inputs,
  };
  const sourceFrom = services.tools.source.requests.length;
  const before = received();
  const run = await runAction({
    inputs,
    node,
    workspace: config.workspace,
    runnerTemp,
    toolCache,
    results: { url: services.results.url },
    runId: String(1000 + vm),
    timeoutMs: 30 * 60_000,
  });
  const after = received();
  if (config.logs)
    writeFileSync(
      join(config.logs, `${vm}-${name}.log`),
      run.main.output.map((o) => `[${o.atMs}] ${o.text}`).join('') + run.summary,
    );
  const cacheBytes = [...run.stdout.matchAll(/^Cache Size: ~\d+ MB \((\d+) B\)/gm)].reduce(
    (s, m) => s + Number(m[1]),
    0,
  );
  if (run.mainCode !== 0 || run.postCode !== 0)
    throw new Error(`${name} job failed (main ${run.mainCode}, post ${run.postCode}):\n${run.stdout}\n${run.stderr}`);
  return {
    mainMs: run.main.durationMs,
    postMs: run.post?.durationMs ?? 0,
    installCacheHit: run.outputs['install-cache-hit'],
    installSource: run.outputs['install-source'],
    imageCacheHit: run.outputs['image-cache-hit'],
    actionsCacheBytes: cacheBytes,
    toolsSourceBytes: services.tools.bytes(sourceFrom),
    loBytes: after.lo - before.lo,
    otherBytes: after.other - before.other,
    // The summary's phase times ("time: cache restore" ...), as it prints them.
    phases: Object.fromEntries(
      [...run.summary.matchAll(/<td>time: ([^<]+)<\/td><td>([^<]+)<\/td>/g)]
        .filter((m) => m[2] !== '–')
        .map((m) => [m[1], m[2]]),
    ),
    warnings: run.warnings,
  };
}

async function main() {
  process.env.TMPDIR = config.tmp; // the harness's own temp dirs
  const node = await node24Binary(); // the runner runs the action with Node 24
  const azurite = await startAzurite();
  const results = await startResultsService(azurite.blobEndpoint);
  const tools = await toolsSource();
  const services = { results, tools };
  const names = Object.keys(config.variants);
  const out = { warm: {}, runs: Object.fromEntries(names.map((n) => [n, []])) };
  try {
    // The first job of each variant fills the Actions cache (the install runs once, here).
    for (const name of names) out.warm[name] = await job(name, services, node);
    for (let i = 0; i < config.runs; i++)
      for (const name of names) out.runs[name].push(await job(name, services, node));
    out.cacheEntries = results.caches().map((c) => ({ key: c.key, size: c.sizeBytes }));
  } finally {
    rmSync(join(config.tmp, 'vm'), { recursive: true, force: true });
    await tools.source.close();
    await results.stop();
    await azurite.stop();
  }
  writeFileSync(outFile, `${JSON.stringify(out, null, 2)}\n`);
}

main().catch((error) => {
  console.error(error.stack ?? error);
  process.exitCode = 1;
});
