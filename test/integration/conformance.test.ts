/**
 * The guest conformance suite: real Debian programs in a cell of every architecture
 * build-cell accepts, under the pinned qemu (src/tools/pinned.ts, extracted from the real
 * .deb and put first on PATH), with vm.mmap_rnd_bits at this machine's value and at 32, the
 * value of GitHub's hosted runners since early 2025 that made older qemu segfault
 * (run-on-arch-action#160, setup-qemu-action#198). The sysctl is set only for its block and
 * restored afterwards.
 *
 * Each cell runs, from test/fixtures/build-conformance-images.sh's image of its arch:
 *   busybox (static): uname, a shell loop, signals (a trap; a killed child's status)
 *   xz (glibc, dynamically linked): started from the static shell (fork + exec of a second
 *     foreign binary), in a spawn loop, and compressing with 4 threads
 *   busybox dd with a 512 MiB buffer: one big anonymous mmap
 * amd64 and 386 run natively on this x86-64 host (386 under the linux32 personality, so
 * uname -m says i686); the result file says which were emulated.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveArch } from '../../src/emulation/arch.js';
import { needsEmulation } from '../../src/emulation/native.js';
import { executes32 } from '../../src/emulation/probe32.js';
import { kernelHasPrivateBinfmt } from '../../src/emulation/binfmt.js';
import { qemuPinFor, toolCacheVersion } from '../../src/tools/pinned.js';
import { ensureDeb, startSource, type Source } from '../helpers/tools-source.js';
import { DEFAULT_QEMU_CPU } from '../../src/emulation/cpu.js';
import {
  expectHostUnchanged,
  removeDir,
  runCli,
  snapshotHost,
  tempDir,
  type CliResult,
  type HostSnapshot,
} from '../helpers/cli.js';
import { CONFORMANCE_ARCHES, REPO_ROOT, conformanceLayout } from '../helpers/fixtures.js';
import { pinnedQemuDir } from '../helpers/qemu.js';

const RND_BITS = '/proc/sys/vm/mmap_rnd_bits';
const isRoot = process.getuid?.() === 0;
const UNAME: Record<string, string> = {
  amd64: 'x86_64',
  arm64: 'aarch64',
  arm: 'armv7l',
  riscv64: 'riscv64',
  ppc64le: 'ppc64le',
  s390x: 's390x',
  386: 'i686',
  mips64le: 'mips64',
};

/** The checks, shared with the bench's row 12: each prints "name: value". */
const SCRIPT = readFileSync(join(REPO_ROOT, 'test', 'fixtures', 'conformance-checks.sh'), 'utf8');

function lines(result: CliResult): Record<string, string> {
  return Object.fromEntries(
    result.stdout
      .split('\n')
      .filter((l) => l.includes(': '))
      .map((l) => [l.slice(0, l.indexOf(': ')), l.slice(l.indexOf(': ') + 2).trim()]),
  );
}

const currentBits = existsSync(RND_BITS) ? readFileSync(RND_BITS, 'utf8').trim() : undefined;
const BITS = [...new Set([currentBits, '32'].filter((b): b is string => !!b))];

describe.skipIf(!isRoot || !currentBits)('guest conformance under the pinned qemu', () => {
  let layout: string;
  let qemu: { dir: string; version: string };
  let stateDir: string;
  let work: string;
  let before: HostSnapshot;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    [layout, qemu] = await Promise.all([conformanceLayout(), pinnedQemuDir()]);
    env = { ...process.env, PATH: `${qemu.dir}:${process.env.PATH}` };
    before = snapshotHost();
    stateDir = tempDir('bc-conformance-');
    work = tempDir('bc-conformance-work-');
  }, 20 * 60_000);

  afterAll(async () => {
    if (currentBits) writeFileSync(RND_BITS, currentBits);
    if (stateDir) await removeDir(stateDir);
    if (work) await removeDir(work);
    if (before) expectHostUnchanged(before);
  });

  for (const bits of BITS) {
    describe(`vm.mmap_rnd_bits = ${bits}${bits === '32' ? " (GitHub's runners)" : ''}`, () => {
      beforeAll(() => {
        writeFileSync(RND_BITS, bits);
        expect(readFileSync(RND_BITS, 'utf8').trim()).toBe(bits);
      });
      afterAll(() => {
        writeFileSync(RND_BITS, currentBits!);
      });

      it.each(CONFORMANCE_ARCHES)(
        '%s',
        async (name) => {
          const arch = resolveArch(name);
          const resultFile = join(work, `${name}-${bits}.json`);
          const result = await runCli(
            [
              'run',
              '--image',
              `oci:${layout}:${name}`,
              '--arch',
              name,
              '--state-dir',
              stateDir,
              '--network',
              'disabled',
              '--result-file',
              resultFile,
              '--run',
              SCRIPT,
            ],
            { env },
          );
          expect(result.code, `${name}: ${result.stdout}\n${result.stderr}`).toBe(0);
          expect(lines(result)).toEqual({
            uname: UNAME[name],
            loop: '3000',
            xz: expect.stringMatching(/^xz \(XZ Utils\) 5\.\d+\.\d+$/),
            spawned: '10',
            roundtrip: String(12 * 1024 * 1024),
            threads: 'up to 4 threads',
            trap: 'caught after',
            'killed child': '143',
            mmap: '1',
            conformance: 'ok',
          });
          const record = JSON.parse(readFileSync(resultFile, 'utf8')) as ConformanceRecord;
          expect(record.emulated).toBe(needsEmulation(arch));
          expect(record.emulationDecision).toBe(expectedDecision(name));
          if (record.emulated) {
            // The pinned qemu ran it, with the measured default CPU model where there is one.
            expect(record.emulation).toContain(join(qemu.dir, arch.qemu));
            expect(record.qemuCpu).toBe(DEFAULT_QEMU_CPU[name]);
          } else {
            expect(record.emulation).toBeUndefined();
          }
        },
        300_000,
      );
    });
  }
});

interface ConformanceRecord {
  emulated: boolean;
  emulation?: string;
  qemuCpu?: string;
  emulationDecision: string;
  emulationMode: string;
  qemu?: string;
}

/**
 * What the result file must say of native or qemu under --emulation auto, from this test's own
 * probe: 386 runs natively exactly where this kernel executes a 32-bit x86 program.
 */
function expectedDecision(name: string): string {
  if (name === 'amd64') return "amd64: native (the host's own architecture)";
  if (name !== '386') return `${name}: emulated (a foreign architecture on this amd64 host)`;
  return executes32('386')
    ? '386: native (this kernel runs 32-bit x86 natively)'
    : '386: emulated (this kernel cannot run 32-bit x86 natively)';
}

/**
 * runCli's options for a CLI that finds no `qemu` anywhere: it runs in a mount namespace of its
 * own where every such program it could find is /dev/null (not a regular file, so not a
 * program); the host's stays as it is.
 */
function hidingQemu(qemu: string): { wrapper: string[]; env: NodeJS.ProcessEnv } {
  const hide = [process.env.PATH ?? '', '/usr/sbin', '/usr/bin', '/sbin', '/bin']
    .flatMap((d) => d.split(':'))
    .map((d) => join(d, qemu))
    .filter((f) => existsSync(f));
  const wrapper = [
    'unshare',
    '--mount',
    '--propagation',
    'private',
    '--',
    'sh',
    '-c',
    'for f in $HIDE; do mount --bind /dev/null "$f" || exit 99; done; exec "$@"',
    'sh',
  ];
  return { wrapper, env: { ...process.env, HIDE: [...new Set(hide)].join(' ') } };
}

/** The flags that pick one arch of the conformance layout, in a state dir. */
const imageArgs = (layout: string, arch: string, stateDir: string) => [
  '--image',
  `oci:${layout}:${arch}`,
  '--arch',
  arch,
  '--state-dir',
  stateDir,
];

/** One conformance cell; its checks' lines and its result record. */
async function conformanceCell(
  layout: string,
  stateDir: string,
  name: string,
  extra: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ result: CliResult; checks: Record<string, string>; record: ConformanceRecord }> {
  const resultFile = join(stateDir, `..`, `${basename(stateDir)}-${name}-result.json`);
  const args = ['run', ...imageArgs(layout, name, stateDir)];
  const result = await runCli(
    [...args, '--network', 'disabled', '--result-file', resultFile, ...extra, '--run', SCRIPT],
    {
      env,
    },
  );
  expect(result.code, `${name}: ${result.stdout}\n${result.stderr}`).toBe(0);
  const record = JSON.parse(readFileSync(resultFile, 'utf8')) as ConformanceRecord;
  rmSync(resultFile, { force: true });
  return { result, checks: lines(result), record };
}

// Both paths on every machine: the qemu path forced for the host's own architecture and its
// 32-bit sibling, so a host that runs 386 natively still tests 386 under qemu, and one that
// cannot still runs amd64 under qemu.
describe.skipIf(!isRoot || process.arch !== 'x64')('--emulation qemu: native architectures under qemu', () => {
  let layout: string;
  let qemu: { dir: string; version: string };
  let stateDir: string;
  let before: HostSnapshot;
  beforeAll(async () => {
    [layout, qemu] = await Promise.all([conformanceLayout(), pinnedQemuDir()]);
    before = snapshotHost();
    stateDir = tempDir('bc-forced-qemu-');
  }, 20 * 60_000);
  afterAll(async () => {
    if (stateDir) await removeDir(stateDir);
    if (before) expectHostUnchanged(before);
  });

  it.each([
    ['386', true],
    ['amd64', kernelHasPrivateBinfmt()],
  ] as const)(
    '%s passes the conformance checks under the pinned qemu',
    async (name, possible) => {
      if (!possible) return; // amd64 under qemu needs a private binfmt_misc (Linux 6.7+); refused otherwise (unit-tested)
      const env = { ...process.env, PATH: `${qemu.dir}:${process.env.PATH}` };
      const { checks, record } = await conformanceCell(layout, stateDir, name, ['--emulation', 'qemu'], env);
      expect(checks).toMatchObject({ uname: UNAME[name], loop: '3000', spawned: '10', conformance: 'ok' });
      expect(record).toMatchObject({
        emulated: true,
        emulationMode: 'qemu',
        emulationDecision: `${name}: emulated (emulation: qemu asks for qemu)`,
      });
      // The pinned qemu ran it (for amd64, a copy in the cell's scratch that its own rule does not match).
      expect(record.emulation).toMatch(name === '386' ? join(qemu.dir, 'qemu-i386-static') : /qemu-x86_64-static/);
    },
    300_000,
  );
});

describe.skipIf(!isRoot || !['x64', 'arm64'].includes(process.arch))('--qemu: the pinned builds and PATH', () => {
  let layout: string;
  let stateDir: string;
  let toolCache: string;
  let source: Source;
  let before: HostSnapshot;
  beforeAll(async () => {
    const pin = qemuPinFor('10.0')!;
    const [conformance, deb] = await Promise.all([conformanceLayout(), ensureDeb(pin)]);
    layout = conformance;
    source = await startSource(new Map([[pin.pool, deb]]));
    before = snapshotHost();
    stateDir = tempDir('bc-qemu-version-');
    toolCache = tempDir('bc-qemu-toolcache-');
  }, 20 * 60_000);
  afterAll(async () => {
    await source?.close();
    for (const dir of [stateDir, toolCache]) if (dir) await removeDir(dir);
    if (before) expectHostUnchanged(before);
  });

  it("--qemu 10.0 fetches trixie's qemu (sha256-checked) into a tool-cache entry of its own and passes the arm64 checks", async () => {
    const env = { ...process.env, RUNNER_TOOL_CACHE: toolCache };
    const flags = ['--qemu', '10.0', '--tools-source', `${source.url}/debian`];
    const { checks, record } = await conformanceCell(layout, stateDir, 'arm64', flags, env);
    expect(checks).toMatchObject({ uname: 'aarch64', threads: 'up to 4 threads', mmap: '1', conformance: 'ok' });
    expect(record.qemu).toMatch(/^10\.0 \(Debian qemu-user 1:10\.0\.\d+/);
    expect(record.emulation).toContain(
      join(toolCache, 'qemu-aarch64-static', toolCacheVersion(qemuPinFor('10.0')!.version)),
    );
    expect(source.requests).toEqual([`/debian/${qemuPinFor('10.0')!.pool}`]);
    // A second run finds it in the tool cache: nothing more is downloaded.
    await conformanceCell(layout, stateDir, 'arm64', flags, env);
    expect(source.requests).toHaveLength(1);
  }, 600_000);

  it('a session keeps --emulation and --qemu for every step', async () => {
    const env = { ...process.env, RUNNER_TOOL_CACHE: toolCache };
    const common = ['--name', 'forced', '--state-dir', stateDir];
    const flags = ['--emulation', 'qemu', '--qemu', '10.0', '--tools-source', `${source.url}/debian`];
    const start = await runCli(
      [
        'session',
        'start',
        ...common,
        '--image',
        `oci:${layout}:386`,
        '--arch',
        '386',
        '--network',
        'disabled',
        ...flags,
      ],
      { env },
    );
    expect(start.code, start.stderr).toBe(0);
    const resultFile = join(toolCache, 'step-result.json');
    const step = await runCli(['session', 'exec', ...common, '--result-file', resultFile, '--run', 'uname -m'], {
      env,
    });
    const end = await runCli(['session', 'end', ...common], { env });
    expect(step.code, step.stderr).toBe(0);
    expect(step.stdout.trim()).toBe('i686');
    expect(end.code, end.stderr).toBe(0);
    const record = JSON.parse(readFileSync(resultFile, 'utf8')) as ConformanceRecord;
    expect(record).toMatchObject({ emulated: true, emulationMode: 'qemu' });
    expect(record.qemu).toMatch(/^10\.0 /);
    expect(record.emulation).toContain(join(toolCache, 'qemu-i386-static'));
  }, 600_000);

  it('--qemu path without a qemu on PATH is a 125 naming the binary, before anything is pulled', async () => {
    const state = tempDir('bc-qemu-path-state-');
    try {
      const result = await runCli(
        ['run', ...imageArgs(layout, 'arm64', state), '--qemu', 'path', '--', '/usr/bin/true'],
        {
          ...hidingQemu('qemu-aarch64-static'),
        },
      );
      expect(result.code, result.stderr).toBe(125);
      expect(result.stderr).toContain('qemu: path: qemu-aarch64-static is not on PATH');
      expect(existsSync(join(state, 'images'))).toBe(false);
    } finally {
      await removeDir(state);
    }
  }, 120_000);
});

describe.skipIf(!isRoot)('an architecture that cannot work says so before anything runs', () => {
  it('no qemu for a foreign arch: exit 125 naming the binary and the package, and nothing pulled or unpacked', async () => {
    const layout = await conformanceLayout();
    const state = tempDir('bc-noqemu-state-');
    try {
      const result = await runCli(
        ['run', '--image', `oci:${layout}:riscv64`, '--arch', 'riscv64', '--state-dir', state, '--', '/usr/bin/true'],
        hidingQemu('qemu-riscv64-static'),
      );
      expect(result.code, result.stderr).toBe(125);
      expect(result.stderr).toMatch(
        /riscv64 code on this x64 host needs qemu-riscv64-static on PATH: install qemu-user-static/,
      );
      expect(existsSync(join(state, 'images'))).toBe(false);
    } finally {
      await removeDir(state);
    }
  }, 600_000);
});

describe.skipIf(!isRoot)('--qemu-cpu against the real qemu', () => {
  let layout: string;
  let stateDir: string;
  beforeAll(async () => {
    layout = await conformanceLayout();
    stateDir = tempDir('bc-qemu-cpu-');
    await mkdir(stateDir, { recursive: true });
  }, 20 * 60_000);
  afterAll(async () => {
    if (stateDir) await removeDir(stateDir);
  });
  const cell = (args: string[], script: string) =>
    runCli(['run', ...imageArgs(layout, 'arm64', stateDir), '--network', 'disabled', ...args, '--run', script]);
  // glibc prints the auxiliary vector: AT_HWCAP is the CPU features qemu reports.
  const HWCAP = 'echo "cpu=$QEMU_CPU"; LD_SHOW_AUXV=1 /usr/bin/xz --version | grep -E "^AT_HWCAP2?:"';

  it('an unknown model: exit 125, the field named with valid names listed, before the image is touched', async () => {
    const fresh = join(stateDir, 'unknown');
    const result = await runCli([
      'run',
      '--image',
      `oci:${layout}:arm64`,
      '--arch',
      'arm64',
      '--state-dir',
      fresh,
      '--qemu-cpu',
      'cortex-a99',
      '--',
      '/usr/bin/true',
    ]);
    expect(result.code).toBe(125);
    expect(result.stderr).toMatch(
      /qemu-cpu: "cortex-a99" is not a CPU model of arm64 in .*qemu-aarch64-static; valid are, for example, max, .*cortex-a53/,
    );
    expect(existsSync(join(fresh, 'images'))).toBe(false);
  }, 120_000);

  it('a known model with a feature qemu rejects is an error too', async () => {
    const result = await cell(['--qemu-cpu', 'max,no-such-feature=on'], 'true');
    expect(result.code).toBe(125);
    expect(result.stderr).toMatch(
      /qemu-cpu: qemu rejects the CPU model "max,no-such-feature=on" for arm64: .*no-such-feature/,
    );
  }, 120_000);

  it('a session keeps its --qemu-cpu for every step', async () => {
    const common = ['--name', 'cpu', '--state-dir', stateDir];
    const start = await runCli([
      'session',
      'start',
      ...common,
      '--image',
      `oci:${layout}:arm64`,
      '--arch',
      'arm64',
      '--network',
      'disabled',
      '--qemu-cpu',
      'cortex-a72',
    ]);
    expect(start.code, start.stderr).toBe(0);
    const step = await runCli(['session', 'exec', ...common, '--run', 'echo "cpu=$QEMU_CPU"']);
    const end = await runCli(['session', 'end', ...common]);
    expect(step.code, step.stderr).toBe(0);
    expect(step.stdout).toMatch(/^cpu=cortex-a72$/m);
    expect(end.code, end.stderr).toBe(0);
  }, 300_000);

  it('the model changes what the guest sees; the default is the measured one; QEMU_CPU in --env wins', async () => {
    const a53 = await cell(['--qemu-cpu', 'cortex-a53'], HWCAP);
    const max = await cell(['--qemu-cpu', 'max,pauth-impdef=on'], HWCAP);
    const byDefault = await cell([], HWCAP);
    const envWins = await cell(['--qemu-cpu', 'cortex-a53', '--env', 'QEMU_CPU=max,pauth-impdef=on'], HWCAP);
    for (const r of [a53, max, byDefault, envWins]) expect(r.code, r.stderr).toBe(0);
    expect(a53.stdout).toMatch(/^cpu=cortex-a53$/m);
    expect(byDefault.stdout).toMatch(new RegExp(`^cpu=${DEFAULT_QEMU_CPU.arm64}$`, 'm'));
    expect(envWins.stdout).toMatch(/^cpu=max,pauth-impdef=on$/m);
    const hwcaps = (r: CliResult) =>
      r.stdout
        .split('\n')
        .filter((l) => l.startsWith('AT_HWCAP'))
        .join('\n');
    expect(hwcaps(a53)).not.toBe(hwcaps(max));
    expect(hwcaps(envWins)).toBe(hwcaps(max));
  }, 300_000);
});
