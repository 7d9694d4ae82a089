// Rows 13: a fresh hosted runner's whole main step through the action (#22), for the real job of
// rows 8 (Debian bookworm, apt-get install gcc + a compile) on amd64 and arm64. Each timed job is a
// new VM (empty tool cache, RUNNER_TEMP and state dir) with the repository's Actions cache warm
// (the test results service, Azurite behind it), pinned tools from a local tools source. The
// cached job (`install:` restored from the Actions cache) against the uncached one (apt in `run:`,
// the base image and tools restored from the Actions cache), alternating run by run; and (#23)
// the registry job: the Actions cache holds no image (image-cache false), and the derived image
// is pulled from the bench's local registry (install-registry), where the first job pushed it.
// bench/lib/hosted-job.mjs runs the jobs with the integration tests' runner emulation.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { R } from '../lib/harness.mjs';
import { fixtureLayout, push } from '../lib/setup.mjs';
import { REPO } from '../lib/state.mjs';
import { COMPILE, INSTALL, jobWorkspace } from './08-real-job.mjs';
import { fmtMs, log, median } from '../lib/util.mjs';

export const rows = [13];

const TARGET = { amd64: 0.2, arm64: 0.05 };
/** A registry hit should cost about what an Actions cache hit costs (#23). */
const REGISTRY_TARGET = 1.5;

export async function addRows(ctx) {
  const { tmp: TMP, reg } = ctx;
  const layouts = {
    amd64: fixtureLayout('debian', 'build-debian-image.sh', ['bookworm']).layout,
    arm64: fixtureLayout('debian-bookworm-arm64', 'build-debian-image.sh', ['bookworm'], { DEBIAN_ARCH: 'arm64' })
      .layout,
  };
  const ws = jobWorkspace(join(TMP, 'hosted-ws'));
  for (const arch of ['amd64', 'arm64']) {
    push(layouts[arch], 'bookworm', reg.host, `hosted-debian-${arch}`);
    const out = hostedJobs(TMP, {
      image: `${reg.host}/hosted-debian-${arch}:bookworm`,
      arch,
      tlsVerify: false,
      workspace: ws,
      runs: R(3),
      variants: {
        cached: { inputs: { install: INSTALL, run: COMPILE } },
        uncached: { inputs: { run: `${INSTALL} && ${COMPILE}` } },
        registry: {
          inputs: {
            install: INSTALL,
            run: COMPILE,
            'image-cache': 'false',
            'install-registry': `${reg.host}/hosted-envs-${arch}`,
            'install-push': 'true',
          },
        },
      },
    });
    ctx.measurements[`13.${arch}`] = out;
    pushRows(ctx, arch, out);
  }
}

/** Run the jobs in a process of their own (the runner emulation is TypeScript: ts-register.mjs). */
function hostedJobs(TMP, config) {
  const dir = join(TMP, `hosted-${config.arch}`);
  mkdirSync(join(dir, 'tmp'), { recursive: true });
  const configFile = join(dir, 'config.json');
  const outFile = join(dir, 'out.json');
  writeFileSync(configFile, JSON.stringify({ ...config, tmp: join(dir, 'tmp') }));
  log(`rows 13 (${config.arch}): ${config.runs} fresh-runner jobs of each variant through the action`);
  execFileSync(
    process.execPath,
    ['--import', join(REPO, 'bench/lib/ts-register.mjs'), join(REPO, 'bench/lib/hosted-job.mjs'), configFile, outFile],
    { stdio: ['ignore', 'inherit', 'inherit'], timeout: 90 * 60_000 },
  );
  return JSON.parse(readFileSync(outFile, 'utf8'));
}

const mb = (bytes) => `${(bytes / 1e6).toFixed(1)} MB`;

function pushRows(ctx, arch, out) {
  const cached = out.runs.cached;
  const uncached = out.runs.uncached;
  const registry = out.runs.registry;
  const a = median(uncached.map((r) => r.mainMs));
  const b = median(cached.map((r) => r.mainMs));
  const c = median(registry.map((r) => r.mainMs));
  // A timed job that did not take the path its row names would measure something else.
  for (const [runs, source] of [
    [cached, 'actions-cache'],
    [registry, 'registry'],
  ])
    for (const r of runs)
      if (r.installSource !== source)
        throw new Error(`rows 13 (${arch}): a job took ${r.installSource}, not ${source}`);
  const last = (runs) => runs[runs.length - 1];
  const bytes = (r) =>
    `Actions cache ${mb(r.actionsCacheBytes)}, tools source ${mb(r.toolsSourceBytes)}, other hosts (the Debian mirror) ${mb(r.otherBytes)}; all local services (lo) ${mb(r.loBytes)}`;
  const phases = (r) =>
    Object.entries(r.phases)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
  ctx.rows.push(
    {
      id: `13${arch === 'amd64' ? 'a' : 'c'}`,
      what: `a fresh hosted runner's main step through the action, ${arch}: apt-get install gcc + compile in \`run:\` (uncached), warm Actions cache`,
      bc: a,
      ref: null,
      ratio: null,
      runs: `${uncached.length}`,
      notes: `bytes received: ${bytes(last(uncached))}; phases ${phases(last(uncached))}; the first job (install run, entries saved): main ${fmtMs(out.warm.cached.mainMs)}, post ${fmtMs(out.warm.cached.postMs)}`,
    },
    {
      id: `13${arch === 'amd64' ? 'b' : 'd'}`,
      what: `a fresh hosted runner's main step, ${arch}: \`install:\` restored from the Actions cache (an EROFS image, mounted) vs uncached`,
      bc: b,
      ref: a,
      ratio: b / a,
      runs: `${cached.length} / ${uncached.length}`,
      notes: `target ≤ ${TARGET[arch]}×: ${b / a <= TARGET[arch] ? 'met' : 'missed'}; bytes received: ${bytes(last(cached))}; phases ${phases(last(cached))}; post step ${fmtMs(median(cached.map((r) => r.postMs)))}`,
    },
    {
      id: `13${arch === 'amd64' ? 'e' : 'f'}`,
      what: `a fresh hosted runner's main step, ${arch}: \`install:\` pulled from a registry (install-registry; no image in the Actions cache) vs the Actions cache restore (13${arch === 'amd64' ? 'b' : 'd'})`,
      bc: c,
      ref: b,
      ratio: c / b,
      runs: `${registry.length} / ${cached.length}`,
      notes: `target ≤ ${REGISTRY_TARGET}× the Actions cache hit: ${c / b <= REGISTRY_TARGET ? 'met' : 'missed'}; ${fmtMs(c)} is ${(c / a).toFixed(2)}× the uncached job; bytes received: ${bytes(last(registry))}; phases ${phases(last(registry))}`,
    },
  );
}
