// Cleanup: everything the bench creates lives under the temp dir; the registry is stopped by PID;
// what rootful podman makes outside it (whatever its config says) is removed unless it was
// there before the bench started.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { state } from './state.mjs';
import { fmtMs, log, run } from './util.mjs';

/** Global paths podman (rootful) creates whatever its config says; removed at the end if we made them. */
const GLOBAL_SIDE_EFFECTS = [
  '/run/containers/networks',
  '/run/containers',
  '/run/runc',
  '/dev/shm/libpod_lock',
  '/etc/containers/networks',
];
/** podman --cgroup-manager cgroupfs makes libpod_parent (and libpod_parent/conmon) in every hierarchy. */
const podmanCgroups = () => {
  try {
    return readdirSync('/sys/fs/cgroup')
      .map((c) => join('/sys/fs/cgroup', c, 'libpod_parent'))
      .concat('/sys/fs/cgroup/libpod_parent')
      .filter((p) => existsSync(p));
  } catch {
    return [];
  }
};
function removeCgroupTree(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) removeCgroupTree(join(dir, e.name));
  run('rmdir', [dir], { allowFail: true });
}

function mountsUnder(dir) {
  const lines = readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
  const out = [];
  for (const l of lines) {
    const mp = l.split(' ')[4];
    if (mp && (mp === dir || mp.startsWith(`${dir}/`))) out.push(mp.replace(/\\040/g, ' '));
  }
  return out.sort().reverse();
}
function unmountUnder(dir) {
  for (const mp of mountsUnder(dir)) run('umount', ['-l', mp], { allowFail: true });
}

export function stopRegistry() {
  if (!state.registry?.pid) return;
  const { pid } = state.registry;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    state.registry = undefined;
    return;
  }
  const deadline = Date.now() + 3000;
  while (Date.now() < deadline) {
    try {
      process.kill(pid, 0);
    } catch {
      break;
    }
    spawnSync('sleep', ['0.05']);
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone
  }
  state.registry = undefined;
}

/** Idempotent: run at the end of main, on exit and on a signal. */
export function cleanup() {
  if (state.cleanedUp) return;
  state.cleanedUp = true;
  stopRegistry();
  const TMP = state.tmp;
  if (TMP && existsSync(TMP)) {
    unmountUnder(TMP);
    if (state.opt.keep) log(`--keep: left ${TMP}`);
    else {
      const t = performance.now();
      rmSync(TMP, { recursive: true, force: true });
      // Written back, the freed inodes stop slowing other file creations after 5 s, not 305 s.
      run('sync', [], { allowFail: true });
      state.cleanupMs = performance.now() - t;
      log(`removed ${TMP} in ${fmtMs(state.cleanupMs)}`);
    }
  }
  for (const c of podmanCgroups()) if (!state.preexistingCgroups.has(c)) removeCgroupTree(c);
  // podman (rootful) makes these whatever its config says; leave the machine as it was.
  for (const p of GLOBAL_SIDE_EFFECTS) {
    if (state.preexisting.has(p) || !existsSync(p)) continue;
    try {
      const st = statSync(p);
      if (st.isDirectory()) {
        const left = readdirSync(p).filter((n) => !/\.lock$|^networks$/.test(n));
        if (left.length === 0) rmSync(p, { recursive: true, force: true });
      } else rmSync(p, { force: true });
    } catch {
      // best effort
    }
  }
}

/** Note what exists before the bench touches anything, and clean up on signals and on exit. */
export function installCleanup() {
  state.preexisting = new Set(GLOBAL_SIDE_EFFECTS.filter((p) => existsSync(p)));
  state.preexistingCgroups = new Set(podmanCgroups());
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      log(`${sig}: cleaning up`);
      cleanup();
      process.exit(130);
    });
  }
  process.on('exit', () => cleanup());
}
