/**
 * Several build-cell runs sharing one state dir, through the built CLI with real skopeo and
 * umoci: concurrent first use of an image prepares it exactly once, every cell sees a pristine
 * rootfs, and image locks left by dead processes do not block (while a live owner's lock does).
 *
 * Every test ends with the after-check: host mounts, binfmt state and build-cell cgroups are as
 * before, and no process mentions the state dir.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, beforeAll, expect, it } from 'vitest';
import { removeDir, runCli, tempDir, withStateDir, type CliResult } from '../helpers/cli.js';
import { busyboxLayout } from '../helpers/fixtures.js';

// ---------------------------------------------------------------------------------------------
// Helpers local to this file
// ---------------------------------------------------------------------------------------------

function expectOk(result: CliResult, what = ''): void {
  expect(result.code, `${what} exit code; stderr: ${result.stderr}`).toBe(0);
}

function entries(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).sort() : [];
}

/** The manifest digest of a tag in an OCI layout (what build-cell resolves `oci:LAYOUT:TAG` to). */
async function layoutDigest(layout: string, tag: string): Promise<string> {
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as {
    manifests: Array<{ digest: string; annotations?: Record<string, string> }>;
  };
  const found = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag);
  if (!found) throw new Error(`tag ${tag} not in ${layout}`);
  return found.digest;
}

/** Every path under `root` with its type, mode, size, owner and mtime: changes to a tree show up here. */
async function fingerprint(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string, rel: string): Promise<void> => {
    for (const name of (await readdir(dir)).sort()) {
      const full = join(dir, name);
      const info = lstatSync(full);
      out.push(`${rel}/${name} ${info.mode.toString(8)} ${info.uid}:${info.gid} ${info.size} ${info.mtimeMs}`);
      if (info.isDirectory()) await walk(full, `${rel}/${name}`);
    }
  };
  await walk(root, '');
  return out;
}

/**
 * `skopeo` and `umoci` wrappers first on PATH: they log one line per call and exec the real
 * tool; `skopeo copy` is slowed down by a second so that concurrent runs really overlap.
 */
function toolWrappers(dir: string): { env: NodeJS.ProcessEnv; lines: () => string[] } {
  const bin = join(dir, 'bin');
  const log = join(dir, 'tools.log');
  mkdirSync(bin, { recursive: true });
  writeFileSync(log, '');
  for (const tool of ['skopeo', 'umoci']) {
    const slow = tool === 'skopeo' ? 'case " $* " in *" copy "*) sleep 1 ;; esac\n' : '';
    writeFileSync(
      join(bin, tool),
      `#!/bin/sh\nprintf '%s\\n' "${tool} $$ $*" >> '${log}'\n${slow}exec /usr/bin/${tool} "$@"\n`,
    );
    chmodSync(join(bin, tool), 0o755);
  }
  return {
    env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}` },
    lines: () => readFileSync(log, 'utf8').split('\n').filter(Boolean),
  };
}

/** The kernel's start time of `pid` (field 22 of /proc/PID/stat), as build-cell's lock records it. */
function processStartTime(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
}

/** The PID of a process that has already exited (and been reaped). */
function deadPid(): number {
  const child = spawnSync('/bin/sh', ['-c', 'echo $$']);
  const pid = Number(String(child.stdout).trim());
  expect(Number.isInteger(pid) && pid > 0).toBe(true);
  expect(existsSync(`/proc/${pid}`), `pid ${pid} should be gone`).toBe(false);
  return pid;
}

// ---------------------------------------------------------------------------------------------

describe('concurrency and the shared store', () => {
  let layout: string;
  let image: string;
  let entry: string;

  beforeAll(async () => {
    layout = await busyboxLayout();
    image = `oci:${layout}:amd64`;
    entry = `amd64-${(await layoutDigest(layout, 'amd64')).slice('sha256:'.length)}`;
  }, 15 * 60_000);

  it('4 concurrent runs on a never-prepared image: all succeed, the image is prepared exactly once, nothing is left over', async () => {
    const work = tempDir('bc-conc-work-');
    try {
      const tools = toolWrappers(work);
      await withStateDir(async (state) => {
        const exportsDir = join(work, 'exports');
        const runs = [1, 2, 3, 4].map((i) =>
          runCli(
            [
              'run',
              '--image',
              image,
              '--state-dir',
              state,
              '--export',
              `/workspace/out:${join(exportsDir, `out-${i}`)}`,
              '--env',
              `CELL_NUMBER=${i}`,
              '--run',
              `mkdir out && echo "cell $CELL_NUMBER on $(uname -m)" > out/result-${i}.txt && ls /workspace`,
            ],
            { env: tools.env },
          ),
        );
        const results = await Promise.all(runs);
        results.forEach((r, n) => {
          expectOk(r, `run ${n + 1}`);
          // Each cell's workspace held only its own output.
          expect(r.stdout, `run ${n + 1}`).toBe('out\n');
        });

        // Each export holds exactly what its own cell wrote.
        for (const i of [1, 2, 3, 4]) {
          const dir = join(exportsDir, `out-${i}`);
          expect(entries(dir), dir).toEqual([`result-${i}.txt`]);
          expect(readFileSync(join(dir, `result-${i}.txt`), 'utf8')).toBe(`cell ${i} on x86_64\n`);
        }

        // The runs did overlap, and yet the image was copied and unpacked exactly once.
        const lines = tools.lines();
        expect(lines.filter((l) => / copy /.test(l) && l.startsWith('skopeo '))).toHaveLength(1);
        expect(lines.filter((l) => l.startsWith('umoci '))).toHaveLength(1);
        const inspecting = new Set(lines.filter((l) => / inspect /.test(l)).map((l) => l.split(' ')[1]));
        expect(inspecting.size, `manifest reads: ${lines.join(' | ')}`).toBeGreaterThanOrEqual(2);

        // Exactly one store entry for the digest, and no leftovers.
        expect(entries(join(state, 'images', 'layouts'))).toEqual([entry]);
        expect(entries(join(state, 'images', 'rootfs'))).toEqual([entry]);
        expect(entries(join(state, 'images', 'refs'))).toHaveLength(1);
        expect(entries(join(state, 'tmp'))).toEqual([]);
        expect(entries(join(state, 'locks')).filter((n) => n.endsWith('.lock'))).toEqual([]);
        expect(entries(join(state, 'cells'))).toEqual([]);
        // Only the finished entries, no temporary names next to them either.
        expect(
          entries(join(state, 'images', 'refs')).every(
            (n) => /^amd64-[A-Za-z0-9._%-]+\.json$/.test(n) && !n.includes('.tmp'),
          ),
        ).toBe(true);

        // A fifth run afterwards reuses the store: no tool call at all.
        const count = lines.length;
        const warm = await runCli(['run', '--image', image, '--state-dir', state, '--', 'uname', '-m'], {
          env: tools.env,
        });
        expectOk(warm);
        expect(warm.stdout).toBe('x86_64\n');
        expect(tools.lines()).toHaveLength(count);
      });
    } finally {
      await removeDir(work);
    }
  });

  it("a cell's writes to its rootfs are not seen by the next cell; the stored rootfs stays pristine", async () => {
    await withStateDir(async (state) => {
      const prep = await runCli(['prepare', '--image', image, '--state-dir', state]);
      expectOk(prep);
      const rootfs = prep.stdout.trim().split(' ')[1]!;
      expect(rootfs).toBe(join(state, 'images', 'rootfs', entry));
      const pristine = await fingerprint(rootfs);
      expect(pristine.length).toBeGreaterThan(100);

      const writer = await runCli([
        'run',
        '--image',
        image,
        '--state-dir',
        state,
        '--run',
        [
          'echo x > /etc/leak',
          'echo intruder:x:0:0::/:/bin/sh >> /etc/passwd',
          'rm /bin/ls',
          'mkdir -p /usr/leak && echo y > /usr/leak/file',
          'chmod 0777 /root',
          'test -e /etc/leak && ! test -e /bin/ls && echo wrote',
        ].join('\n'),
      ]);
      expectOk(writer);
      expect(writer.stdout).toBe('wrote\n');

      const reader = await runCli([
        'run',
        '--image',
        image,
        '--state-dir',
        state,
        '--run',
        [
          'test ! -e /etc/leak || echo "leak: /etc/leak"',
          '! grep -q intruder /etc/passwd || echo "leak: /etc/passwd"',
          'test -e /bin/ls || echo "leak: /bin/ls removed"',
          'test ! -e /usr/leak || echo "leak: /usr/leak"',
          '[ "$(stat -c %a /root)" = 700 ] || echo "leak: /root mode $(stat -c %a /root)"',
          'echo checked',
        ].join('\n'),
      ]);
      expectOk(reader);
      expect(reader.stdout).toBe('checked\n');

      // The host copy of the image is byte-for-byte the tree it was.
      expect(existsSync(join(rootfs, 'etc', 'leak'))).toBe(false);
      expect(await fingerprint(rootfs)).toEqual(pristine);
      expect(entries(join(state, 'cells'))).toEqual([]);
    });
  });

  it('a stale image lock of a dead process (or of a reused PID) does not block a run', async () => {
    for (const variant of ['dead pid', 'dead pid with start time', 'reused pid'] as const) {
      await withStateDir(async (state) => {
        const lockDir = join(state, 'locks', `image-${entry}.lock`);
        mkdirSync(lockDir, { recursive: true });
        const owner =
          variant === 'dead pid'
            ? { pid: deadPid() }
            : variant === 'dead pid with start time'
              ? { pid: deadPid(), start: '12345' }
              : // A live PID whose start time differs: the PID was reused by an unrelated process.
                { pid: process.pid, start: String(Number(processStartTime(process.pid)) + 1) };
        writeFileSync(join(lockDir, 'owner'), JSON.stringify(owner));

        const started = Date.now();
        const r = await runCli(['run', '--image', image, '--state-dir', state, '--', 'uname', '-m']);
        const took = Date.now() - started;
        expectOk(r, variant);
        expect(r.stdout).toBe('x86_64\n');
        expect(took, `${variant}: the run took ${took} ms`).toBeLessThan(60_000);
        expect(existsSync(lockDir), `${variant}: stale lock still there`).toBe(false);
        expect(entries(join(state, 'images', 'rootfs'))).toEqual([entry]);
      });
    }
  });

  it("a live owner's image lock makes a run wait until it is released", async () => {
    await withStateDir(async (state) => {
      const lockDir = join(state, 'locks', `image-${entry}.lock`);
      mkdirSync(lockDir, { recursive: true });
      const holder = spawn('sleep', ['300'], { stdio: 'ignore' });
      try {
        const pid = holder.pid!;
        writeFileSync(join(lockDir, 'owner'), JSON.stringify({ pid, start: processStartTime(pid) }));

        let finished = false;
        const run = runCli(['run', '--image', image, '--state-dir', state, '--', 'uname', '-m']).then((r) => {
          finished = true;
          return r;
        });
        await new Promise((resolve) => setTimeout(resolve, 3000));
        expect(finished, 'the run did not wait for the live lock').toBe(false);
        expect(entries(join(state, 'images', 'rootfs'))).toEqual([]);

        // The owner goes away (without releasing): the lock is now stale and the run proceeds.
        holder.kill('SIGKILL');
        await new Promise((resolve) => holder.once('exit', resolve));
        const r = await run;
        expectOk(r);
        expect(r.stdout).toBe('x86_64\n');
        expect(existsSync(lockDir)).toBe(false);
      } finally {
        if (holder.exitCode === null && holder.signalCode === null) holder.kill('SIGKILL');
      }
    });
  });
});
