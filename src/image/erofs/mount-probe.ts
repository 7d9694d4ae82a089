/**
 * Can this host mount an EROFS image, and how: probed, not assumed. A 4 KiB image that
 * build-cell carries (one file, `probe`) is mounted read-only in a private mount namespace
 * (`unshare -m`: nothing reaches the host's mount table) and read back:
 *   file  the kernel mounts the image file itself (Linux 6.12+ with EROFS_FS_BACKED_BY_FILE);
 *   loop  through a loop device (`-o loop`: util-linux sets it to clear itself when unmounted,
 *         so the namespace's end frees it);
 * and where neither works, why (not root, no erofs in the kernel, no loop devices). Once per
 * boot and kernel, remembered in the state dir with the other host facts.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { lazyChildProcess } from '../../util/builtins.js';
import { bootId, cachedFact } from '../../util/fact-cache.js';
import { which } from '../../util/which.js';

/** mkfs.erofs 1.5 of a directory holding `probe` ("build-cell\n"), all timestamps 0, gzipped. */
const PROBE_IMAGE =
  'H4sIAAAAAAACA2NgGAWjYBSMVPDo4dcHffWvOpiBbB4GFQYmLGoYaWg/CxC/dWRi0IHy/wMBsrwKnGaCs1WBbHUoWx3oOj09vYKi/KRUXOYvaWRk4EYyH9k/SaWZOSm6yak5OVyjiWEUjIJRMApGwSgYBaNgFAx7AAD6hHWIABAAAA==';

export type ErofsMount = { ok: true; how: 'file' | 'loop'; why: string } | { ok: false; why: string };

let probed: ErofsMount | undefined;

export function probeErofsMount(): ErofsMount {
  probed ??= cachedFact('erofs-mount', () => `${bootId()} ${release()} ${process.getuid?.()}`, runProbe);
  return probed;
}

function runProbe(): ErofsMount {
  if (process.getuid?.() !== 0) return { ok: false, why: 'mounting an image needs root (rootless mode cannot)' };
  const unshare = which('unshare');
  if (!unshare) return { ok: false, why: 'unshare (util-linux) is not on PATH' };
  const dir = mkdtempSync(join(tmpdir(), 'bc-erofs-probe-'));
  try {
    const image = join(dir, 'probe.erofs');
    writeFileSync(image, gunzipSync(Buffer.from(PROBE_IMAGE, 'base64')));
    // mount(8) itself sets up a loop device for an image file where it chooses to.
    const mounted = tryMount(unshare, image, join(dir, 'mnt'), 'ro');
    if (mounted.ok)
      return mounted.source.startsWith('/dev/loop')
        ? { ok: true, how: 'loop', why: 'the kernel mounts EROFS, through a loop device that clears itself' }
        : { ok: true, how: 'file', why: 'the kernel mounts EROFS image files directly' };
    return { ok: false, why: `this kernel cannot mount an EROFS image (${mounted.error})` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Mount, read the probe file and what backs the mount, all in a private mount namespace that ends with the process. */
function tryMount(
  unshare: string,
  image: string,
  target: string,
  options: string,
): { ok: boolean; source: string; error: string } {
  const script = 'mkdir -p "$2" && mount -t erofs -o "$3" "$1" "$2" && cat "$2/probe" && findmnt -n -o SOURCE "$2"';
  const result = lazyChildProcess().spawnSync(unshare, ['-m', '--', 'sh', '-c', script, 'sh', image, target, options], {
    encoding: 'utf8',
    timeout: 10_000,
  });
  const [probe, source] = (result.stdout ?? '').split('\n');
  const ok = result.status === 0 && probe === 'build-cell';
  const error = (result.stderr || result.error?.message || `exit ${result.status}`).trim().split('\n').pop() ?? '';
  return { ok, source: source ?? '', error };
}
