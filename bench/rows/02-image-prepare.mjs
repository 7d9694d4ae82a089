// Rows 2 and 3: cold image preparation (registry → rootfs) against podman pull and the naive
// skopeo + umoci pipeline, then warm preparation against the cold one. One module, because
// rows 3 take their reference (the cold prepare and its phase split) from rows 2: with
// --only 3, the cold prepare is measured alone.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { makeErofsEntry } from '../lib/erofs-entry.mjs';
import { trash, trashSh } from '../lib/files.mjs';
import { measure, measureGroup } from '../lib/harness.mjs';
import { fmtMs, once, q, run } from '../lib/util.mjs';

export const rows = [2, 3];

export async function addRows(ctx) {
  const cold = coldPrepare(ctx);
  if (ctx.want(3)) warmPrepare(ctx, cold);
}

// Before each run: the previous run's output removed and written back (sync), so every run starts
// from the same place; no page cache is dropped.
function coldPrepare(ctx) {
  const { want, tmp: TMP, BC, IMG, debian, podman, PM, bcPrepare, measurements } = ctx;
  const cold = {};
  const images = [['busybox', IMG.amd64, 'amd64', 12], ...(debian ? [['debian', IMG.debian, 'bookworm', 6]] : [])];
  for (const [name, image, tag, n] of images) {
    const st = join(TMP, `cold-${name}`);
    const bcSpec = {
      key: `2.${name}.buildcell.prepare`,
      args: bcPrepare(image, st),
      runs: n,
      warmup: 1,
      prepare: `${trashSh(st)}; sync`,
    };
    if (!want(2)) {
      cold[name] = measure(bcSpec.key, bcSpec.args, bcSpec);
      continue;
    }
    const pb = join(podman.dir, `p${name[0]}`);
    const nv = join(TMP, `naive-${name}`);
    const [bc, pm, naive] = measureGroup(
      [
        bcSpec,
        {
          key: `2.${name}.podman.pull`,
          args: PM(pb, 'pull', '-q', '--tls-verify=false', image),
          runs: n,
          warmup: 1,
          env: podman.env,
          prepare: `awk -v d=${q(pb)} 'index($2, d "/") == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do umount -l "$m"; done; ${trashSh(pb)}; sync`,
        },
        {
          key: `2.${name}.naive`,
          runs: n,
          warmup: 1,
          prepare: `${trashSh(nv)}; mkdir -p ${q(nv)}; sync`,
          args: [
            'sh',
            '-c',
            `skopeo copy --quiet --src-tls-verify=false docker://${image} oci:${nv}/layout:${tag} && umoci --log error raw unpack --image ${nv}/layout:${tag} ${nv}/rootfs`,
          ],
        },
      ],
      { rounds: 3 },
    );
    cold[name] = bc;
    ctx.rows.push(
      {
        id: `2${name === 'busybox' ? 'a' : 'c'}`,
        what: `cold prepare, ${name} (registry → rootfs) vs \`podman pull\` (fresh --root)`,
        bc: bc.median,
        ref: pm.median,
        ratio: bc.median / pm.median,
        runs: `${bc.runs} / ${pm.runs}`,
      },
      {
        id: `2${name === 'busybox' ? 'b' : 'd'}`,
        what: `cold prepare, ${name} vs naive \`skopeo copy\` + \`umoci raw unpack\``,
        bc: bc.median,
        ref: naive.median,
        ratio: bc.median / naive.median,
        runs: `${bc.runs} / ${naive.runs}`,
      },
    );
  }
  // Phase split of one cold run per image (resolve / pull / unpack), from --result-file.
  for (const [name, image] of images) {
    const st = join(TMP, `split-${name}`);
    const f = join(TMP, `split-${name}.json`);
    once([
      ...BC,
      'run',
      '--image',
      image,
      '--tls-verify',
      'false',
      '--state-dir',
      st,
      '--result-file',
      f,
      '--',
      '/bin/true',
    ]);
    const t = JSON.parse(readFileSync(f, 'utf8')).timings;
    measurements[`2.${name}.cold.phases`] = t;
    trash(st);
    for (const r of ctx.rows) {
      if (r.id.startsWith('2') && r.what.includes(`, ${name} `))
        r.notes = `one cold run: resolve ${t.resolve} ms, pull ${t.pull} ms, unpack ${t.unpack} ms`;
    }
  }
  return cold;
}

function warmPrepare(ctx, cold) {
  const { tmp: TMP, BC, IMG, debian, bcPrepare, rf, measurements } = ctx;
  const images = [['busybox', IMG.amd64], ...(debian ? [['debian', IMG.debian]] : [])];
  for (const [name, image] of images) {
    const warmState = join(TMP, `warm-${name}`);
    once(bcPrepare(image, warmState));
    const again = measure(`3.${name}.store`, bcPrepare(image, warmState), { runs: 20, warmup: 2 });
    // The engine's own image phase (timings.image of --result-file) on a warm run, against the
    // same phase of a cold run (row 2's split run): the preparation work, without Node's start.
    const inEngine = measure(
      `3.${name}.store.engine`,
      [
        ...BC,
        'run',
        '--image',
        image,
        '--tls-verify',
        'false',
        '--state-dir',
        warmState,
        '--result-file',
        join(rf(`warm3-${name}`), 'r.json'),
        '--',
        '/bin/true',
      ],
      { runs: 10, warmup: 1, resultDir: rf(`warm3-${name}`) },
    );
    const fresh = join(TMP, `restored-${name}`);
    const restore = `${trashSh(fresh)}; mkdir -p ${q(fresh)}/images; cp -a ${q(warmState)}/images/layouts ${q(warmState)}/images/refs ${q(fresh)}/images/; sync`;
    const restored = measure(`3.${name}.layout`, bcPrepare(image, fresh), {
      runs: name === 'debian' ? 5 : 10,
      warmup: 1,
      prepare: restore,
    });
    // What a fresh runner restores now (#22): the rootfs as one EROFS image with its record.
    const entry = readdirSync(join(warmState, 'images', 'rootfs'))[0];
    const erofs = makeErofsEntry(warmState, entry, join(TMP, `erofs-${name}`));
    const freshErofs = join(TMP, `restored-erofs-${name}`);
    const restoreErofs = `${trashSh(freshErofs)}; mkdir -p ${q(freshErofs)}/images; cp -a ${q(erofs.erofs)} ${q(warmState)}/images/refs ${q(freshErofs)}/images/; sync`;
    const restoredErofs = measure(`3.${name}.erofs`, bcPrepare(image, freshErofs), {
      runs: name === 'debian' ? 5 : 10,
      warmup: 1,
      prepare: restoreErofs,
    });
    // Check that the restored layout really spared the pull (no network: copied = false).
    run('sh', ['-c', restore]);
    const chk = join(TMP, `restored-${name}.json`);
    once([
      ...BC,
      'run',
      '--image',
      image,
      '--tls-verify',
      'false',
      '--state-dir',
      fresh,
      '--result-file',
      chk,
      '--',
      '/bin/true',
    ]);
    const img = JSON.parse(readFileSync(chk, 'utf8')).image;
    measurements[`3.${name}.layout.check`] = {
      copied: img.copied,
      unpacked: img.unpacked,
      resolved: img.resolved,
      timings: img.timings,
    };
    const c = cold[name].median;
    const coldImage = measurements[`2.${name}.cold.phases`]?.image;
    if (coldImage) {
      const w = inEngine.phases.image;
      ctx.rows.push({
        id: `3${name === 'busybox' ? 'a' : 'c'}0`,
        what: `warm prepare inside the engine, ${name}: store lookup (timings.image) vs a cold run's image phase`,
        bc: w,
        ref: coldImage,
        ratio: w / coldImage,
        pct: true,
        runs: `${inEngine.phaseRuns} / 1`,
        notes: `target < 2 % of cold: ${w / coldImage < 0.02 ? 'met' : 'missed'}; no resolve, pull or unpack ran`,
      });
    }
    ctx.rows.push(
      {
        id: `3${name === 'busybox' ? 'a' : 'c'}`,
        what: `warm prepare, ${name}: store present (same digest again), whole \`build-cell prepare\` process`,
        bc: again.median,
        ref: c,
        ratio: again.median / c,
        pct: true,
        runs: `${again.runs} / ${cold[name].runs}`,
        notes: `mostly starting Node and loading the CLI (\`cli.js --version\`: ${fmtMs(measurements['1.cli.version']?.median ?? NaN)})`,
      },
      {
        id: `3${name === 'busybox' ? 'b' : 'd'}`,
        what: `warm prepare, ${name}: EROFS image restored (store absent)`,
        bc: restoredErofs.median,
        ref: c,
        ratio: restoredErofs.median / c,
        pct: true,
        runs: `${restoredErofs.runs} / ${cold[name].runs}`,
        notes: `a new machine whose Actions cache restored the image as one EROFS file (${(erofs.bytes / 1e6).toFixed(0)} MB): no pull, no unpack; cells mount it${name === 'debian' ? `; target ≤ 10 %: ${restoredErofs.median / c <= 0.1 ? 'met' : 'missed'}` : ''}; the action's digest check of the file adds ${fmtMs(erofs.hashMs)}`,
      },
      {
        id: `3${name === 'busybox' ? 'b' : 'd'}1`,
        what: `warm prepare, ${name}: layout restored (store absent; the cache entry where mkfs.erofs is missing)`,
        bc: restored.median,
        ref: c,
        ratio: restored.median / c,
        pct: true,
        runs: `${restored.runs} / ${cold[name].runs}`,
        notes: `no pull (${img.copied ? 'pulled (!)' : 'none'}), but the unpack (${img.timings?.unpack ?? '?'} ms)`,
      },
    );
  }
}
