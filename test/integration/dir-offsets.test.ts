/**
 * 32-bit guests on 64-bit directory offsets (#20). ext4 hands out a directory position (d_off)
 * as a hash: 32 bits to a 32-bit process (a compat syscall), 64 bits to a 64-bit one. qemu-user
 * is a 64-bit process, so an armhf guest gets 64-bit positions, and glibc's readdir in a program
 * built without large-file support (32-bit off_t) fails with EOVERFLOW. overlayfs passes the
 * positions of a directory that lives in one layer alone straight through, and numbers the
 * entries of a merged one itself.
 *
 * In an armhf Debian cell (qemu-arm), a small C program is compiled twice, without and with
 * _FILE_OFFSET_BITS=64, and lists directories of 2,000 files in the workspace, a cache, the
 * root filesystem and /tmp, all on this machine's ext4; then the same under --tmpfs, the way
 * build-cell offers around it. The expected outcome of each directory is the measured one (the
 * README's "32-bit guests and directory offsets").
 */
import { mkdirSync, readdirSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  expectHostUnchanged,
  removeDir,
  runCli,
  snapshotHost,
  tempDir,
  type CliResult,
  type HostSnapshot,
} from '../helpers/cli.js';
import { debianLayoutFor } from '../helpers/fixtures.js';

const EXT4_SUPER_MAGIC = 0xef53;
/** The state dir and the host inputs are made under tmpdir(): the facts below are ext4's. */
const onExt4 = statfsSync(tmpdir()).type === EXT4_SUPER_MAGIC;

const LSDIR_C = `#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

/* Lists argv[1] with readdir(3); prints: lsdir DIR off_t=BYTES entries=N ok|EOVERFLOW|error. */
int main(int argc, char **argv) {
  DIR *dir = opendir(argv[1]);
  if (!dir) { printf("lsdir %s opendir: %s\\n", argv[1], strerror(errno)); return 2; }
  long n = 0;
  for (errno = 0; readdir(dir) != NULL; errno = 0) n++;
  int err = errno;
  printf("lsdir %s off_t=%zu entries=%ld %s\\n", argv[1], sizeof(off_t), n,
         err == 0 ? "ok" : err == EOVERFLOW ? "EOVERFLOW" : strerror(err));
  return err ? 1 : 0;
}
`;

/** gcc in the image, and two directories of 2,000 files that are the image's own (its install layer). */
const INSTALL = [
  'apt-get update',
  'apt-get install -y --no-install-recommends gcc libc6-dev',
  'for d in /opt/many /opt/touched; do mkdir $d && (cd $d && seq -f "f%g" 2000 | xargs touch); done',
].join(' && ');

/** Compile both ways, make the cell's own directories, list each given one both ways. */
const script = (make: string[], list: string[]) =>
  [
    'gcc -O2 -Wall -Werror -o /usr/local/bin/lsdir32 /opt/src/lsdir.c',
    'gcc -O2 -Wall -Werror -D_FILE_OFFSET_BITS=64 -o /usr/local/bin/lsdir64 /opt/src/lsdir.c',
    `many() { mkdir -p "$1" && (cd "$1" && seq -f 'f%g' 2000 | xargs touch); }`,
    ...make,
    'echo "uname=$(uname -m)"',
    `for d in ${list.join(' ')}; do lsdir32 "$d" || :; lsdir64 "$d" || :; done`,
  ].join('\n');

type Outcome = { offT: number; entries: number; result: string };

/** The cell's lsdir lines, as off_t size -> directory -> outcome. */
function outcomes(stdout: string): Map<string, Outcome> {
  const found = new Map<string, Outcome>();
  for (const m of stdout.matchAll(/^lsdir (\S+) off_t=(\d+) entries=(\d+) (.+)$/gm)) {
    found.set(`${m[2]}:${m[1]}`, { offT: Number(m[2]), entries: Number(m[3]), result: m[4]! });
  }
  return found;
}

/** Each directory's outcome without large-file support, as expected; with it, every listing whole. */
function expectListings(r: CliResult, expected: Record<string, 'ok' | 'EOVERFLOW'>): void {
  expect(r.code, `--- stdout:\n${r.stdout.slice(-3000)}\n--- stderr:\n${r.stderr.slice(-3000)}`).toBe(0);
  expect(r.stdout).toContain('uname=armv7l');
  const found = outcomes(r.stdout);
  const seen = Object.fromEntries(Object.keys(expected).map((d) => [d, found.get(`4:${d}`)?.result]));
  expect(seen, r.stdout).toEqual(expected);
  for (const dir of Object.keys(expected)) {
    const lfs = found.get(`8:${dir}`);
    expect(lfs, `${dir} with _FILE_OFFSET_BITS=64`).toMatchObject({ result: 'ok' });
    // 2,000 files, '.' and '..' (and what the cell added to a host directory).
    expect(lfs!.entries, dir).toBeGreaterThanOrEqual(2002);
    if (expected[dir] === 'ok') expect(found.get(`4:${dir}`)!.entries, dir).toBe(lfs!.entries);
  }
}

describe.skipIf(!onExt4)('a 32-bit guest under qemu lists directories on ext4 (armhf, no large-file support)', () => {
  let image: string;
  let state: string;
  let work: string;
  let before: HostSnapshot;
  const run = (args: string[]) =>
    runCli([
      'run',
      '--image',
      image,
      '--arch',
      'armhf',
      '--state-dir',
      state,
      '--install',
      INSTALL,
      '--import',
      `${join(work, 'lsdir.c')}:/opt/src/lsdir.c`,
      ...args,
    ]);

  beforeAll(async () => {
    image = `oci:${await debianLayoutFor('armhf')}:bookworm`;
    before = snapshotHost();
    state = tempDir('bc-diroff-state-');
    work = tempDir('bc-diroff-work-');
    writeFileSync(join(work, 'lsdir.c'), LSDIR_C);
    // Directories of 2,000 files made on the host: in the workspace (one the cell leaves alone,
    // one it writes into) and in a cache.
    for (const dir of ['ws/host', 'ws/touched', 'cache/host', 'cache/touched']) {
      mkdirSync(join(work, dir), { recursive: true });
      for (let i = 1; i <= 2000; i++) writeFileSync(join(work, dir, `f${i}`), '');
    }
  }, 60 * 60_000);

  afterAll(async () => {
    if (state) expectHostUnchanged(before, state);
    if (state) await removeDir(state);
    if (work) await removeDir(work);
  });

  it(
    'fails with EOVERFLOW wherever a directory lives in one layer, on every location; merged ones list',
    async () => {
      const r = await run([
        '--workspace',
        join(work, 'ws'),
        '--cache',
        `${join(work, 'cache')}:/cache`,
        '--run',
        script(
          [
            'touch /workspace/touched/new /cache/touched/new /opt/touched/new',
            'many /workspace/new',
            'many /cache/new',
            'many /srv/many',
            'many /tmp',
            'many /tmp/many',
          ],
          [
            '/workspace/host',
            '/workspace/touched',
            '/workspace/new',
            '/cache/host',
            '/cache/touched',
            '/cache/new',
            '/opt/many',
            '/opt/touched',
            '/srv/many',
            '/tmp',
            '/tmp/many',
          ],
        ),
      ]);
      expectListings(r, {
        // The workspace: an overlay over the host directory.
        '/workspace/host': 'EOVERFLOW', // the host's directory alone: ext4's own positions
        '/workspace/touched': 'ok', // written to, so copied up: merged
        '/workspace/new': 'EOVERFLOW', // made in the cell: the upper layer's alone
        // A cache: an overlay over the host cache directory, the same way.
        '/cache/host': 'EOVERFLOW',
        '/cache/touched': 'ok',
        '/cache/new': 'EOVERFLOW',
        // The root filesystem: an overlay over the image.
        '/opt/many': 'EOVERFLOW', // the image's own directory
        '/opt/touched': 'ok', // the image's, written to
        '/srv/many': 'EOVERFLOW', // made in the cell
        // /tmp, the image's (empty) directory, once written to: merged; a directory made in it is not.
        '/tmp': 'ok',
        '/tmp/many': 'EOVERFLOW',
      });
    },
    30 * 60_000,
  );

  it(
    'lists every directory in a --tmpfs (/tmp, and one inside the workspace); an empty workspace is plain ext4',
    async () => {
      const r = await run([
        '--export',
        `/tmp/many:${join(work, 'out-many')}`,
        '--tmpfs',
        '/tmp',
        '--tmpfs',
        '/workspace/build:size=64M',
        '--cwd',
        '/workspace/build',
        '--run',
        script(
          ['many /tmp', 'many /tmp/many', 'many /workspace/build', 'many /workspace/build/many', 'many /workspace/gen'],
          ['/tmp', '/tmp/many', '/workspace/build', '/workspace/build/many', '/workspace/gen'],
        ),
      ]);
      expectListings(r, {
        '/tmp': 'ok',
        '/tmp/many': 'ok',
        '/workspace/build': 'ok',
        '/workspace/build/many': 'ok',
        // No --workspace: the workspace is a directory of the scratch, bound as it is.
        '/workspace/gen': 'EOVERFLOW',
      });
      // An export reads the tmpfs while the cell is alive.
      expect(readdirSync(join(work, 'out-many'))).toHaveLength(2000);
    },
    30 * 60_000,
  );

  it(
    'keeps --tmpfs for every step of a session, each a fresh one, never written back',
    async () => {
      const ws = join(work, 'session-ws');
      mkdirSync(ws);
      const session = (args: string[]) =>
        runCli(['session', ...args.slice(0, 1), '--name', 'diroff', '--state-dir', state, ...args.slice(1)]);
      const ok = (r: CliResult, what: string) =>
        expect(r.code, `${what}\n--- stdout:\n${r.stdout}\n--- stderr:\n${r.stderr}`).toBe(0);
      const started = await session([
        'start',
        '--image',
        image,
        '--arch',
        'armhf',
        '--install',
        INSTALL,
        '--workspace',
        ws,
        '--tmpfs',
        '/workspace/build',
      ]);
      ok(started, 'session start');
      const step =
        'grep -c " /workspace/build tmpfs " /proc/self/mounts; ls -A /workspace/build | wc -l; echo x > /workspace/build/x; echo y > /workspace/y';
      const first = await session(['exec', '--run', step]);
      ok(first, 'first step');
      expect(first.stdout).toBe('1\n0\n');
      const second = await session(['exec', '--run', step]);
      ok(second, 'second step');
      expect(second.stdout, 'a fresh tmpfs in the second step').toBe('1\n0\n');
      ok(await session(['end']), 'session end');
      // Each step's workspace changes came back; the tmpfs' mount point and contents did not.
      expect(readdirSync(ws).sort()).toEqual(['y']);
    },
    10 * 60_000,
  );
});
