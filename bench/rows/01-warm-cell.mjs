// Row 1: warm cell overhead, against podman, a bare unshare+chroot floor and Node's own start.
import { basename, join } from 'node:path';
import { makeErofsEntry } from '../lib/erofs-entry.mjs';
import { measureGroup } from '../lib/harness.mjs';
import { fmtMs, once, q, round, run } from '../lib/util.mjs';

export const rows = [1];

export async function addRows(ctx) {
  const { BC, cli, extraCa, IMG, ROOTFS, STATE, podman, PM, bcRun, rf, rfArgs, tmp: TMP } = ctx;
  const pmBase = join(podman.dir, 'w');
  once(['podman', ...podman.flags(pmBase), 'pull', '-q', '--tls-verify=false', IMG.amd64], { env: podman.env });
  // The other way a store could keep the image (#22): as the EROFS file a fresh runner restores,
  // mounted in each cell, against the store's directory (1a), in the same run.
  const erofsState = join(TMP, 'state-erofs');
  const entry = makeErofsEntry(STATE, basename(ROOTFS), join(TMP, 'erofs-warm'));
  run('sh', [
    '-c',
    `mkdir -p ${q(erofsState)}/images && cp -a ${q(entry.erofs)} ${q(STATE)}/images/refs ${q(erofsState)}/images/`,
  ]);
  const [warm, warmErofs, pmRun, floor, nodeBare, nodeVersion, ...viaNode] = measureGroup(
    [
      {
        key: '1.buildcell.warm',
        args: bcRun(rfArgs('warm'), ['/bin/true']),
        runs: 30,
        warmup: 3,
        rewarm: 1,
        resultDir: rf('warm'),
      },
      {
        key: '1.buildcell.warm.erofs',
        args: bcRun(rfArgs('warm-erofs'), ['/bin/true'], erofsState),
        runs: 30,
        warmup: 3,
        rewarm: 1,
        resultDir: rf('warm-erofs'),
      },
      {
        key: '1.podman.run',
        env: podman.env,
        runs: 30,
        warmup: 3,
        rewarm: 1,
        args: PM(
          pmBase,
          'run',
          '--rm',
          '--pull',
          'missing',
          '--tls-verify=false',
          '--network',
          'host',
          '--ulimit',
          'nofile=1024:1024',
          '--ulimit',
          'nproc=1024:1024',
          IMG.amd64,
          '/bin/true',
        ),
      },
      {
        key: '1.floor',
        args: ['unshare', '--fork', '--pid', '--mount', '--uts', '--ipc', '--', 'chroot', ROOTFS, '/bin/true'],
        runs: 60,
        warmup: 5,
        rewarm: 2,
      },
      {
        key: '1.node.bare',
        args: ['env', '-u', 'NODE_EXTRA_CA_CERTS', 'node', '-e', '0'],
        runs: 30,
        warmup: 3,
        rewarm: 1,
      },
      { key: '1.cli.version', args: [...BC, '--version'], runs: 30, warmup: 3, rewarm: 1 },
      // With NODE_EXTRA_CA_CERTS set (as on this machine), what `node dist/cli.js` (no launcher) pays.
      ...(extraCa
        ? [
            {
              key: '1.buildcell.warm.node',
              args: ['node', cli.path, ...bcRun([], ['/bin/true']).slice(BC.length)],
              runs: 30,
              warmup: 3,
              rewarm: 1,
            },
            { key: '1.node.bare.extraCa', args: ['node', '-e', '0'], runs: 30, warmup: 3, rewarm: 1 },
          ]
        : []),
    ],
    { rounds: 3 },
  );
  const ph = warm.phases;
  // image's own parts (resolve, pull, unpack) do not run on a warm cell; counted once anyway.
  const phaseSum = round(
    ['image', 'setup', 'stage', 'run', 'export', 'cache', 'release', 'cleanup'].reduce((a, k) => a + (ph[k] ?? 0), 0),
    1,
  );
  const outside = warm.median - nodeVersion.median - phaseSum;
  ctx.rows.push(
    {
      id: '1a',
      what: 'warm cell `run -- /bin/true` vs `podman run --rm` (image pulled, `--network host`)',
      bc: warm.median,
      ref: pmRun.median,
      ratio: warm.median / pmRun.median,
      runs: `${warm.runs} / ${pmRun.runs}`,
    },
    {
      id: '1b',
      what: 'warm cell vs floor `unshare --fork --pid --mount --uts --ipc -- chroot ROOTFS /bin/true`',
      bc: warm.median,
      ref: floor.median,
      ratio: warm.median / floor.median,
      runs: `${warm.runs} / ${floor.runs}`,
    },
    {
      id: '1c',
      what: "where the warm cell's time goes",
      bc: warm.median,
      ref: null,
      ratio: null,
      runs: `${warm.runs}`,
      notes:
        `\`node -e 0\` ${fmtMs(nodeBare.median)}; \`cli.js --version\` ${fmtMs(nodeVersion.median)} (+${fmtMs(nodeVersion.median - nodeBare.median)} loading the bundle); ` +
        `phases ${Object.entries(ph)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')} ms (sum ${phaseSum}; run − floor = ${fmtMs(ph.run - floor.median)}); ` +
        `outside any phase (argument parsing, privilege, process exit) ≈ ${fmtMs(outside)}`,
    },
    {
      id: '1e',
      what: 'warm cell on a store that keeps the image as an EROFS file (mounted in each cell) vs on its directory (1a)',
      bc: warmErofs.median,
      ref: warm.median,
      ratio: warmErofs.median / warm.median,
      runs: `${warmErofs.runs} / ${warm.runs}`,
      notes: `image phase ${warmErofs.phases.image} ms against ${warm.phases.image} ms, setup ${warmErofs.phases.setup} ms against ${warm.phases.setup} ms; the store keeps directories for the images it unpacks, and mounts the EROFS images a fresh runner restores`,
    },
  );
  if (extraCa) {
    const [warmNode, bareCa] = viaNode;
    ctx.rows.push({
      id: '1d',
      what: `the same warm cell as \`node dist/cli.js\` (not through its shebang), NODE_EXTRA_CA_CERTS=${extraCa} set`,
      bc: warmNode.median,
      ref: pmRun.median,
      ratio: warmNode.median / pmRun.median,
      runs: `${warmNode.runs} / ${pmRun.runs}`,
      notes: `Node parses that file at every start: \`node -e 0\` ${fmtMs(bareCa.median)} with it, ${fmtMs(nodeBare.median)} without; the \`build-cell\` command (dist/cli.js's shebang) drops it`,
    });
  }
}
