// Row 9: rootless, a warm cell as an unprivileged user vs as root (both through runuser).
import { chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { measureGroup } from '../lib/harness.mjs';
import { once, run } from '../lib/util.mjs';

export const rows = [9];

export async function addRows(ctx) {
  const { tmp: TMP, cli, busybox } = ctx;
  const user = 'bc-bench-rootless';
  run('useradd', ['--no-create-home', '--home-dir', join(TMP, 'rl-home'), user], { allowFail: true });
  try {
    const home = join(TMP, 'rl-home');
    mkdirSync(home, { recursive: true });
    run('cp', ['-a', busybox.layout, join(home, 'layout')]);
    run('chown', ['-R', `${user}:${user}`, home]);
    chmodSync(TMP, 0o755);
    const asUser = ['runuser', '-u', user, '--', 'env', `HOME=${home}`, cli.path];
    const rootless = [
      ...asUser,
      'run',
      '--privilege',
      'rootless',
      '--image',
      `oci:${join(home, 'layout')}:amd64`,
      '--state-dir',
      join(home, 'state'),
      '--',
      '/bin/true',
    ];
    const asRoot = [
      'runuser',
      '-u',
      'root',
      '--',
      cli.path,
      'run',
      '--image',
      `oci:${join(home, 'layout')}:amd64`,
      '--state-dir',
      join(TMP, 'rl-root-state'),
      '--',
      '/bin/true',
    ];
    once(rootless);
    once(asRoot);
    const [rl, rt] = measureGroup(
      [
        { key: '9.rootless.warm', args: rootless, runs: 30, warmup: 3, rewarm: 1 },
        { key: '9.root.warm', args: asRoot, runs: 30, warmup: 3, rewarm: 1 },
      ],
      { rounds: 3 },
    );
    ctx.rows.push({
      id: '9',
      what: 'warm cell as an unprivileged user (rootless, /etc/subuid range mapped) vs as root, both through runuser',
      bc: rl.median,
      ref: rt.median,
      ratio: rl.median / rt.median,
      runs: `${rl.runs} / ${rt.runs}`,
      notes:
        'rootless adds the user-namespace probe (one unshare with the full mapping, newuidmap/newgidmap) and the owner hand-back (one find)',
    });
  } finally {
    run('userdel', [user], { allowFail: true });
  }
}
