// Rows 8: a real job, arm64 and amd64 Debian, apt-get install gcc + a compile, with and without
// the install step (reused from the store, restored as an EROFS image), and the derived amd64
// image as podman runs it.
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeErofsEntry } from '../lib/erofs-entry.mjs';
import { trash, trashSh } from '../lib/files.mjs';
import { measureGroup } from '../lib/harness.mjs';
import { fixtureLayout, push } from '../lib/setup.mjs';
import { cmdline, fmtMs, once, q } from '../lib/util.mjs';

export const rows = [8];

/** The real job (rows 8 and 13): its install step and its command, run in jobWorkspace(). */
export const INSTALL = 'apt-get update -qq && apt-get install -y -qq --no-install-recommends gcc libc6-dev >/dev/null';
export const COMPILE = 'gcc -O2 -o /tmp/hello hello.c && /tmp/hello';

/** `dir` made, with the hello.c the job compiles. */
export function jobWorkspace(dir) {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'hello.c'), '#include <stdio.h>\nint main(void) { puts("hello"); return 0; }\n');
  return dir;
}

export async function addRows(ctx) {
  const { tmp: TMP, BC, debian, reg, podman, PM, bcPrepare, rf, rfArgs } = ctx;
  const arm = fixtureLayout('debian-bookworm-arm64', 'build-debian-image.sh', ['bookworm'], { DEBIAN_ARCH: 'arm64' });
  const amd = debian ?? fixtureLayout('debian', 'build-debian-image.sh', ['bookworm']);
  const ws = jobWorkspace(join(TMP, 'job-ws'));
  for (const [label, layout, arch, n] of [
    ['arm64', arm.layout, 'arm64', 3],
    ['amd64', amd.layout, 'amd64', 3],
  ]) {
    const image = `oci:${layout}:bookworm`;
    const st = join(TMP, `job-${label}`);
    const job = (state, extra, script, name) => [
      ...BC,
      'run',
      '--image',
      image,
      '--arch',
      arch,
      '--state-dir',
      state,
      '--workspace',
      ws,
      ...(name ? rfArgs(name) : []),
      ...extra,
      '--run',
      script,
    ];
    once(bcPrepare(image, st, ['--arch', arch]));
    // The install's first run makes the derived image (and is what (a) costs, plus the layer).
    const first = join(TMP, `job-${label}-first.json`);
    once(job(st, ['--install', INSTALL, '--result-file', first], COMPILE), { limitS: 1800 });
    const install = JSON.parse(readFileSync(first, 'utf8')).install;
    const derivedEntry = `${arch}-${install.digest.slice(7)}`;
    const fresh = join(TMP, `job-${label}-fresh`);
    const refName = readdirSync(join(st, 'images', 'refs')).find((n) => n.includes('build-cell-install'));
    // What a fresh runner's Actions cache restores (#22): the derived rootfs as one EROFS image
    // with its record, as the action writes it (image/erofs/entry.ts), made once here.
    const erofsDir = join(TMP, `job-${label}-erofs`);
    const erofs = makeErofsEntry(st, derivedEntry, erofsDir);
    const restore = `${trashSh(fresh)}; mkdir -p ${q(join(fresh, 'images'))}; cp -a ${q(erofs.erofs)} ${q(join(fresh, 'images'))}/; mkdir -p ${q(join(fresh, 'images', 'refs'))}; cp ${q(join(st, 'images', 'refs', refName))} ${q(join(fresh, 'images', 'refs'))}/; sync`;
    const [uncached, reused, restored] = measureGroup([
      {
        key: `8.${label}.uncached`,
        args: job(st, [], `${INSTALL} && ${COMPILE}`),
        runs: n,
        warmup: 0,
        prepare: 'sync',
      },
      {
        key: `8.${label}.reused`,
        args: job(st, ['--install', INSTALL], COMPILE, `job-${label}-reused`),
        runs: 5,
        warmup: 1,
        resultDir: rf(`job-${label}-reused`),
      },
      {
        key: `8.${label}.restored`,
        args: job(fresh, ['--install', INSTALL], COMPILE, `job-${label}-restored`),
        runs: n,
        warmup: 0,
        prepare: restore,
        resultDir: rf(`job-${label}-restored`),
      },
    ]);
    const a = uncached.median;
    ctx.rows.push(
      {
        id: `8${label === 'arm64' ? 'a' : 'e'}`,
        what: `real job, ${label} Debian bookworm: apt-get install gcc libc6-dev + compile, uncached (in every run)`,
        bc: a,
        ref: null,
        ratio: null,
        runs: `${uncached.runs}`,
        notes: `the install's first run: ${fmtMs(install.seconds * 1000)} (the install cell, its layer and rootfs)`,
      },
      {
        id: `8${label === 'arm64' ? 'b' : 'f'}`,
        what: `real job, ${label}: \`--install\` reused from the store vs uncached`,
        bc: reused.median,
        ref: a,
        ratio: reused.median / a,
        runs: `${reused.runs} / ${uncached.runs}`,
        notes: `target ≤ 0.1×: ${reused.median / a <= 0.1 ? 'met' : 'missed'}; phases ${Object.entries(reused.phases)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')} ms`,
      },
      {
        id: `8${label === 'arm64' ? 'c' : 'g'}`,
        what: `real job, ${label}: a fresh state dir with the derived image restored as an EROFS image (a new hosted runner) vs uncached`,
        bc: restored.median,
        ref: a,
        ratio: restored.median / a,
        runs: `${restored.runs} / ${uncached.runs}`,
        notes: `target ≤ ${label === 'arm64' ? '0.05' : '0.15'}×: ${restored.median / a <= (label === 'arm64' ? 0.05 : 0.15) ? 'met' : 'missed'}; image ${restored.phases.image} ms (the record checked, the image mounted in the cell: nothing unpacked), run ${restored.phases.run} ms; the action's digest check of the restored ${(erofs.bytes / 1e6).toFixed(0)} MB image (sha256 per 64 MiB chunk, on worker threads) adds ${fmtMs(erofs.hashMs)}; making it on a miss (mkfs.erofs and the digests): ${fmtMs(erofs.ms)} (${((erofs.ms / 1000 / install.seconds) * 100).toFixed(1)} % of the install's ${fmtMs(install.seconds * 1000)})`,
      },
    );
    if (label === 'amd64') {
      // The same derived image as podman runs it: pushed to the local registry, pulled into a fresh --root.
      push(join(st, 'images', 'layouts', derivedEntry), 'image', reg.host, 'derived');
      const pb = join(podman.dir, 'pjob');
      const pmJob = [
        'sh',
        '-c',
        `${cmdline(PM(pb, 'pull', '-q', '--tls-verify=false', `${reg.host}/derived:image`))} >/dev/null && ${cmdline(PM(pb, 'run', '--rm', '--network', 'host', '-v', `${ws}:/workspace`, '-w', '/workspace', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024', `${reg.host}/derived:image`, 'sh', '-c', COMPILE))}`,
      ];
      const pmPrepare = `awk -v d=${q(pb)} 'index($2, d "/") == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do umount -l "$m"; done; ${trashSh(pb)}; sync`;
      const [bcC, pm] = measureGroup(
        [
          {
            key: '8.amd64.restored.again',
            args: job(fresh, ['--install', INSTALL], COMPILE),
            runs: n,
            warmup: 0,
            prepare: restore,
          },
          { key: '8.amd64.podman', args: pmJob, runs: n, warmup: 1, env: podman.env, prepare: pmPrepare },
        ],
        { rounds: n },
      );
      ctx.rows.push({
        id: '8h',
        what: 'the derived amd64 image as podman runs it: `podman pull` (fresh --root) + `podman run` of the compile vs build-cell from a restored EROFS image',
        bc: bcC.median,
        ref: pm.median,
        ratio: bcC.median / pm.median,
        runs: `${bcC.runs} / ${pm.runs}`,
        notes: `target ≤ 1.0×: ${bcC.median / pm.median <= 1 ? 'met' : 'missed'}`,
      });
    }
    trash(fresh);
  }
}
