// Rows 12: which qemu to pin, by measurement. The candidates are Debian's static qemu-user
// builds of bookworm (7.2) and trixie (10.0), each downloaded from the Debian archive and
// checked against its sha256, extracted under build-cell's names and put first on PATH:
//   12a-f   per emulated architecture: a CPU loop (busybox sh) and a spawn loop (50 execs of
//           the dynamically linked xz), 10.0 vs 7.2, from the conformance images;
//   12g     the conformance checks (test/fixtures/conformance-checks.sh) of every architecture
//           at vm.mmap_rnd_bits as it is and at 32 (GitHub's runners), per candidate;
//   12h-k   apt-get install gcc + a compile in arm64 Debian bookworm and trixie, per candidate
//           and CPU model (qemu's default, build-cell's default), apt's archives in a host
//           cache filled beforehand so the network is not measured.
// The sysctl is restored whatever happens.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { measureGroup } from '../lib/harness.mjs';
import { fixtureLayout } from '../lib/setup.mjs';
import { state, REPO } from '../lib/state.mjs';
import { fmtMs, fmtRatio, log, once, run } from '../lib/util.mjs';

export const rows = [12];

const MIRROR = 'https://deb.debian.org/debian';
/** Debian's static qemu-user builds for an amd64 host, oldest first; bookworm's is what build-cell pinned before. */
const CANDIDATES = [
  {
    label: '7.2 (bookworm)',
    pool: 'pool/main/q/qemu/qemu-user-static_7.2+dfsg-7+deb12u18+b3_amd64.deb',
    sha256: 'c3e3ba2bd87f8c5b9a5da5ef21b5a3b82d7c63b89dd448d9ddaa4eabc5b6e402',
    suffix: '-static',
  },
  {
    label: '10.0 (trixie)',
    pool: 'pool/main/q/qemu/qemu-user_10.0.13+ds-0+deb13u1_amd64.deb',
    sha256: 'ca6ede739327a20ae5a3498230c8a3a9a072c586e131bc6bcc1201eb1725e336',
    suffix: '',
  },
];
/** Debian names of qemu's targets, and what uname -m prints in each conformance image. */
const ARCHES = {
  arm64: { qemu: 'aarch64', uname: 'aarch64' },
  arm: { qemu: 'arm', uname: 'armv7l' },
  riscv64: { qemu: 'riscv64', uname: 'riscv64' },
  ppc64le: { qemu: 'ppc64le', uname: 'ppc64le' },
  s390x: { qemu: 's390x', uname: 's390x' },
  mips64le: { qemu: 'mips64el', uname: 'mips64' },
};
// 386 runs natively under the linux32 personality where the kernel runs 32-bit x86, else under qemu-i386 (src/emulation/native.ts): uname -m is i686 either way.
const NATIVE = { amd64: 'x86_64', 386: 'i686' };
const RND_BITS = '/proc/sys/vm/mmap_rnd_bits';
const DEFAULT_CPU = 'neoverse-n1'; // src/emulation/cpu.ts DEFAULT_QEMU_CPU.arm64

/** A candidate's binaries under build-cell's names (qemu-ARCH-static), in a PATH directory of their own. */
function candidateDir(candidate, index) {
  const cache = join(REPO, 'test', '.cache', 'bench-qemu');
  mkdirSync(cache, { recursive: true });
  const deb = join(cache, candidate.pool.split('/').pop());
  if (!existsSync(deb)) {
    once(['curl', '-fsSL', '-o', `${deb}.part`, `${MIRROR}/${candidate.pool}`], { limitS: 900 });
    once(['mv', `${deb}.part`, deb]);
  }
  const sum = once(['sha256sum', deb]).split(' ')[0];
  if (sum !== candidate.sha256) throw new Error(`${deb}: sha256 ${sum}, expected ${candidate.sha256}`);
  const dir = join(state.tmp, `qemu-${index}`);
  const x = join(dir, 'x');
  mkdirSync(x, { recursive: true });
  once(['dpkg-deb', '-x', deb, x]);
  for (const { qemu } of Object.values(ARCHES))
    once(['ln', '-s', join(x, 'usr', 'bin', `qemu-${qemu}${candidate.suffix}`), join(dir, `qemu-${qemu}-static`)]);
  const version = once([join(dir, 'qemu-aarch64-static'), '--version']).split('\n')[0];
  log(`qemu candidate ${candidate.label}: ${version}`);
  return { ...candidate, dir, version, env: { ...process.env, PATH: `${dir}:${process.env.PATH}` } };
}

export async function addRows(ctx) {
  const { tmp: TMP, BC } = ctx;
  const conf = fixtureLayout('conformance', 'build-conformance-images.sh', ['amd64', ...Object.keys(ARCHES), '386']);
  const candidates = CANDIDATES.map(candidateDir);
  const STATE = join(TMP, 'emu-state');
  const cell = (arch, script, extra = []) => [
    ...BC,
    'run',
    '--image',
    `oci:${conf.layout}:${arch}`,
    '--arch',
    arch,
    '--state-dir',
    STATE,
    '--network',
    'disabled',
    ...extra,
    '--run',
    script,
  ];
  const CPU_LOOP = 'i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done';
  const SPAWN_LOOP = 'for i in $(seq 50); do /usr/bin/xz --version >/dev/null; done';
  for (const arch of ['amd64', ...Object.keys(ARCHES)]) once(cell(arch, 'true'), { env: candidates[0].env });

  // ---- CPU and spawn loops, per architecture -------------------------------------------------------------------
  const [amdLoop, amdSpawn] = measureGroup([
    { key: '12.amd64.loop', args: cell('amd64', CPU_LOOP), runs: 5, warmup: 1 },
    { key: '12.amd64.spawn', args: cell('amd64', SPAWN_LOOP), runs: 5, warmup: 1 },
  ]);
  const ids = 'abcdef';
  for (const [i, arch] of Object.keys(ARCHES).entries()) {
    const m = measureGroup(
      candidates.flatMap((c, ci) => [
        { key: `12.${arch}.loop.${ci}`, args: cell(arch, CPU_LOOP), runs: 3, warmup: 1, env: c.env },
        { key: `12.${arch}.spawn.${ci}`, args: cell(arch, SPAWN_LOOP), runs: 3, warmup: 1, env: c.env },
      ]),
      { rounds: 2 },
    );
    const [oldLoop, oldSpawn, newLoop, newSpawn] = m;
    ctx.rows.push({
      id: `12${ids[i]}`,
      what: `${arch} under qemu: sh loop of 200,000 iterations, ${candidates[1].label} vs ${candidates[0].label}`,
      bc: newLoop.median,
      ref: oldLoop.median,
      ratio: newLoop.median / oldLoop.median,
      runs: `${newLoop.runs} / ${oldLoop.runs}`,
      notes: `vs native amd64: ${fmtRatio(newLoop.median / amdLoop.median)} (10.0), ${fmtRatio(oldLoop.median / amdLoop.median)} (7.2); 50 execs of xz: ${fmtMs(newSpawn.median)} vs ${fmtMs(oldSpawn.median)} (${fmtRatio(newSpawn.median / oldSpawn.median)}; native ${fmtMs(amdSpawn.median)})`,
    });
  }

  // ---- Conformance at both mmap_rnd_bits values -------------------------------------------------------------------
  const script = readFileSync(join(REPO, 'test', 'fixtures', 'conformance-checks.sh'), 'utf8');
  const savedBits = readFileSync(RND_BITS, 'utf8').trim();
  const outcomes = candidates.map(() => ({ passed: 0, total: 0, failed: [] }));
  try {
    for (const bits of [...new Set([savedBits, '32'])]) {
      writeFileSync(RND_BITS, bits);
      for (const [ci, c] of candidates.entries()) {
        for (const [arch, uname] of [
          ...Object.entries(ARCHES).map(([a, v]) => [a, v.uname]),
          ...Object.entries(NATIVE),
        ]) {
          const out =
            run(cell(arch, script)[0], cell(arch, script).slice(1), { env: c.env, allowFail: true, limitS: 300 }) ?? '';
          const ok = out.includes(`uname: ${uname}\n`) && /^conformance: ok$/m.test(out);
          outcomes[ci].total++;
          if (ok) outcomes[ci].passed++;
          else outcomes[ci].failed.push(`${arch}@${bits}`);
        }
      }
    }
  } finally {
    writeFileSync(RND_BITS, savedBits);
  }
  state.measurements['12.conformance'] = Object.fromEntries(candidates.map((c, ci) => [c.version, outcomes[ci]]));
  ctx.rows.push({
    id: '12g',
    what: `conformance checks (busybox, glibc xz, threads, fork/exec, signals, 512 MiB mmap) of 8 architectures at vm.mmap_rnd_bits ${savedBits} and 32`,
    bc: null,
    ref: null,
    ratio: null,
    runs: candidates.map((c, ci) => `${outcomes[ci].passed}/${outcomes[ci].total}`).join(' / '),
    notes: candidates
      .map(
        (c, ci) =>
          `${c.label}: ${outcomes[ci].passed}/${outcomes[ci].total} passed${outcomes[ci].failed.length ? ` (failed: ${outcomes[ci].failed.join(', ')})` : ''}`,
      )
      .join('; '),
  });

  // ---- apt-get install gcc + a compile in arm64 bookworm and trixie -------------------------------------------------
  const INSTALL =
    'apt-get update -qq && apt-get install -y -qq --no-install-recommends gcc libc6-dev >/dev/null && printf "int main(void){return 0;}\\n" > /tmp/h.c && gcc -O2 -o /tmp/h /tmp/h.c && /tmp/h';
  const jobIds = { bookworm: ['h', 'i'], trixie: ['j', 'k'] };
  for (const suite of ['bookworm', 'trixie']) {
    const layout = fixtureLayout(`debian-${suite}-arm64`, 'build-debian-image.sh', [suite], {
      DEBIAN_ARCH: 'arm64',
      DEBIAN_SUITE: suite,
    }).layout;
    const archives = join(TMP, `emu-apt-${suite}`);
    mkdirSync(archives, { recursive: true });
    const job = (cpu) => [
      ...BC,
      'run',
      '--image',
      `oci:${layout}:${suite}`,
      '--arch',
      'arm64',
      '--state-dir',
      STATE,
      '--cache',
      `${archives}:/var/cache/apt/archives`,
      '--env',
      `QEMU_CPU=${cpu}`,
      '--run',
      INSTALL,
    ];
    once(job('max'), { env: candidates[0].env, limitS: 1800 }); // fills the archive cache
    const [oldMax, oldDef, newMax, newDef] = measureGroup(
      candidates.flatMap((c, ci) => [
        { key: `12.apt.${suite}.${ci}.max`, args: job('max'), runs: 1, warmup: 0, env: c.env },
        { key: `12.apt.${suite}.${ci}.${DEFAULT_CPU}`, args: job(DEFAULT_CPU), runs: 1, warmup: 0, env: c.env },
      ]),
      { rounds: 2 },
    );
    const [a, b] = jobIds[suite];
    ctx.rows.push(
      {
        id: `12${a}`,
        what: `arm64 Debian ${suite}: apt-get install gcc + compile, ${candidates[1].label} with build-cell's default CPU ${DEFAULT_CPU} vs ${candidates[0].label} with qemu's default (max)`,
        bc: newDef.median,
        ref: oldMax.median,
        ratio: newDef.median / oldMax.median,
        runs: `${newDef.runs} / ${oldMax.runs}`,
        notes: `target ≤ 1.0×: ${newDef.median <= oldMax.median ? 'met' : 'missed'}`,
      },
      {
        id: `12${b}`,
        what: `arm64 Debian ${suite}, the same job per CPU model: 10.0 max / 7.2 ${DEFAULT_CPU}`,
        bc: newMax.median,
        ref: oldDef.median,
        ratio: newMax.median / oldDef.median,
        runs: `${newMax.runs} / ${oldDef.runs}`,
        notes: `7.2: max ${fmtMs(oldMax.median)}, ${DEFAULT_CPU} ${fmtMs(oldDef.median)}; 10.0: max ${fmtMs(newMax.median)}, ${DEFAULT_CPU} ${fmtMs(newDef.median)}`,
      },
    );
  }
}
