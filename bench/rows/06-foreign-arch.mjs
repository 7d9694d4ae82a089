// Row 6: a foreign architecture (arm64 through qemu-user) against amd64, start-up and a sh loop.
import { measureGroup } from '../lib/harness.mjs';
import { fmtMs, fmtRatio, once } from '../lib/util.mjs';

export const rows = [6];

export async function addRows(ctx) {
  const { BC, IMG, STATE, bcPrepare } = ctx;
  const bcArch = (arch, cmd) => [
    ...BC,
    'run',
    '--image',
    IMG[arch],
    '--arch',
    arch,
    '--tls-verify',
    'false',
    '--state-dir',
    STATE,
    '--',
    ...cmd,
  ];
  once(bcPrepare(IMG.arm64, STATE, ['--arch', 'arm64']));
  const um = once(bcArch('arm64', ['uname', '-m'])).trim();
  if (um !== 'aarch64') throw new Error(`arm64 cell says uname -m = ${um}`);
  const loop = ['sh', '-c', 'i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done'];
  const [armTrue, amdTrue] = measureGroup(
    [
      { key: '6.arm64.true', args: bcArch('arm64', ['/bin/true']), runs: 15, warmup: 2, rewarm: 1 },
      { key: '6.amd64.true', args: bcArch('amd64', ['/bin/true']), runs: 15, warmup: 2, rewarm: 1 },
    ],
    { rounds: 3 },
  );
  const [armLoop, amdLoop] = measureGroup(
    [
      { key: '6.arm64.loop', args: bcArch('arm64', loop), runs: 6, warmup: 1 },
      { key: '6.amd64.loop', args: bcArch('amd64', loop), runs: 6, warmup: 1 },
    ],
    { rounds: 3 },
  );
  const base = amdTrue.median;
  ctx.rows.push(
    {
      id: '6a',
      what: 'arm64 (qemu-user) `/bin/true` vs amd64',
      bc: armTrue.median,
      ref: amdTrue.median,
      ratio: armTrue.median / amdTrue.median,
      runs: `${armTrue.runs} / ${amdTrue.runs}`,
    },
    {
      id: '6b',
      what: 'arm64 `sh` loop of 200,000 iterations vs amd64',
      bc: armLoop.median,
      ref: amdLoop.median,
      ratio: armLoop.median / amdLoop.median,
      runs: `${armLoop.runs} / ${amdLoop.runs}`,
      notes: `loop alone (minus /bin/true cell): ${fmtMs(armLoop.median - armTrue.median)} vs ${fmtMs(amdLoop.median - base)} = ${fmtRatio((armLoop.median - armTrue.median) / (amdLoop.median - base))}`,
    },
  );
}
