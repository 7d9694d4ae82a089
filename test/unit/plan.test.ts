import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { posix } from 'node:path';
import { binfmtRule, resolveArch } from '../../src/emulation/arch.js';
import { helperArgv, HELPER_DIR, hostLocation, planCell, scratchLayout, type CellPlan, type Emulation, type RunContext, type SetupOp } from '../../src/cell/plan.js';
import { covers } from '../../src/spec/paths.js';
import { SCRIPT_PATH, type BuildCellSpec } from '../../src/spec/types.js';
import { baseSpec } from './spec-fixture.js';

const SCRATCH = '/var/lib/build-cell/cells/c1';
const MERGED = `${SCRATCH}/root`;

const ctx = (overrides: Partial<RunContext> = {}): RunContext => ({
  prefix: '/var/lib/build-cell',
  hostMountNs: 'mnt:[4026531841]',
  hostname: 'build-cell',
  hostResolvConf: '/etc/resolv.conf',
  ...overrides,
});

const emulation = (binfmt: 'private' | 'global' = 'private'): Emulation => ({
  arch: resolveArch('arm64'),
  qemuPath: '/usr/bin/qemu-aarch64-static',
  binfmt,
  ruleName: 'build-cell-abc123',
});

const ruleFn = (e: Emulation, interpreter: string) => binfmtRule(e.ruleName, e.arch, interpreter);

/** The target path of an op that mounts or writes into the cell, if any. */
function opTarget(op: SetupOp): string | undefined {
  switch (op.op) {
    case 'overlay': case 'bind': case 'bind-ro': case 'proc': case 'tmpfs': case 'mkdir': case 'touch':
    case 'symlink': case 'devpts': case 'binfmt-mount':
      return op.target;
    case 'binfmt-register':
      return op.dir;
    default:
      return undefined;
  }
}

const indexOf = (plan: CellPlan, pred: (op: SetupOp) => boolean) => plan.ops.findIndex(pred);
const kinds = (plan: CellPlan) => plan.ops.map((o) => o.op);

/** Check the ordering and confinement invariants every plan must satisfy. */
function checkInvariants(spec: BuildCellSpec, plan: CellPlan): void {
  const merged = plan.layout.merged;
  expect(merged).toBe(posix.join(spec.scratch, 'root'));
  expect(kinds(plan).slice(0, 5)).toEqual(['ns-check', 'root-check', 'wait-go', 'private', 'overlay']);
  expect(plan.ops.filter((o) => o.op === 'overlay')).toHaveLength(1);
  const overlayAt = indexOf(plan, (o) => o.op === 'overlay');
  const procAt = indexOf(plan, (o) => o.op === 'proc');
  const devAt = indexOf(plan, (o) => o.op === 'tmpfs' && o.target === `${merged}/dev`);
  expect(procAt).toBeGreaterThan(overlayAt);
  expect(devAt).toBeGreaterThan(overlayAt);
  plan.ops.forEach((op, i) => {
    const target = opTarget(op);
    if (op.op === 'cgroup') return;
    if (target === undefined) return;
    // Every target lies in the merged root, and is only touched once the overlay is there.
    expect(covers(merged, target), `${op.op} ${target}`).toBe(true);
    if (op.op !== 'overlay') expect(i, `${op.op} ${target} after the overlay`).toBeGreaterThan(overlayAt);
    if (covers(`${merged}/dev`, target) && target !== `${merged}/dev`) expect(i, `${op.op} ${target} after /dev tmpfs`).toBeGreaterThan(devAt);
    if (covers(`${merged}/proc`, target) && target !== `${merged}/proc`) expect(i, `${op.op} ${target} after proc`).toBeGreaterThan(procAt);
  });
  // Device binds come after proc and the /dev tmpfs, each after its own touch.
  plan.ops.forEach((op, i) => {
    if (op.op === 'bind' && op.source.startsWith('/dev/')) {
      expect(i).toBeGreaterThan(procAt);
      expect(i).toBeGreaterThan(devAt);
      expect(plan.ops[i - 1]).toEqual({ op: 'touch', target: op.target });
    }
  });
  expect(plan.ops.at(-1)).toEqual({ op: 'hostname', name: expect.any(String) });
}

describe('scratchLayout', () => {
  it('puts everything under the scratch dir', () => {
    const l = scratchLayout('/s/c');
    expect(l).toMatchObject({
      scratch: '/s/c', request: '/s/c/build-cell-request.json', workspace: '/s/c/workspace',
      importsDir: '/s/c/imports', cachesDir: '/s/c/caches', upper: '/s/c/overlay/upper', work: '/s/c/overlay/work', merged: '/s/c/root',
    });
    expect(l.importPath(0)).toBe('/s/c/imports/0');
    expect(l.cachePath(3)).toBe('/s/c/caches/3');
  });
});

describe('planCell: operations', () => {
  it('starts with the safety checks, then the overlay of root', () => {
    const spec = baseSpec();
    const plan = planCell(spec, ctx());
    expect(plan.ops.slice(0, 5)).toEqual([
      { op: 'ns-check', hostMountNs: 'mnt:[4026531841]' },
      { op: 'root-check', prefix: '/var/lib/build-cell', root: spec.root },
      { op: 'wait-go' },
      { op: 'private' },
      { op: 'overlay', lower: spec.root, upper: `${SCRATCH}/overlay/upper`, work: `${SCRATCH}/overlay/work`, target: MERGED },
    ]);
    checkInvariants(spec, plan);
  });

  it('mounts proc and a fresh /dev with the standard devices', () => {
    const plan = planCell(baseSpec(), ctx());
    expect(plan.ops).toContainEqual({ op: 'proc', target: `${MERGED}/proc` });
    expect(plan.ops).toContainEqual({ op: 'tmpfs', target: `${MERGED}/dev`, options: 'mode=755,nosuid,size=65536k' });
    for (const d of ['null', 'zero', 'full', 'random', 'urandom', 'tty']) {
      expect(plan.ops).toContainEqual({ op: 'bind', source: `/dev/${d}`, target: `${MERGED}/dev/${d}` });
    }
    expect(plan.ops).toContainEqual({ op: 'devpts', target: `${MERGED}/dev/pts` });
    expect(plan.ops).toContainEqual({ op: 'symlink', value: 'pts/ptmx', target: `${MERGED}/dev/ptmx` });
    expect(plan.ops).toContainEqual({ op: 'symlink', value: '/proc/self/fd', target: `${MERGED}/dev/fd` });
    expect(indexOf(plan, (o) => o.op === 'mkdir' && o.target.endsWith('/dev/pts'))).toBeLessThan(indexOf(plan, (o) => o.op === 'devpts'));
  });

  it('binds the workspace and caches read-write, imports read-only, from the staged copies', () => {
    const spec = baseSpec({
      imports: [{ source: '/h/a', destination: '/src' }, { source: '/h/b', destination: '/opt/tool' }],
      caches: [{ source: '/h/c', destination: '/root/.cache' }, { source: '/h/d', destination: '/var/cache/apt' }],
    });
    const plan = planCell(spec, ctx());
    const userBinds = plan.ops.filter((o) => (o.op === 'bind' || o.op === 'bind-ro') && !o.source.startsWith('/dev/'));
    expect(userBinds).toEqual([
      { op: 'bind', source: `${SCRATCH}/workspace`, target: `${MERGED}/workspace` },
      { op: 'bind-ro', source: `${SCRATCH}/imports/0`, target: `${MERGED}/src` },
      { op: 'bind-ro', source: `${SCRATCH}/imports/1`, target: `${MERGED}/opt/tool` },
      { op: 'bind', source: `${SCRATCH}/caches/0`, target: `${MERGED}/root/.cache` },
      { op: 'bind', source: `${SCRATCH}/caches/1`, target: `${MERGED}/var/cache/apt` },
      { op: 'bind-ro', source: '/etc/resolv.conf', target: `${MERGED}/etc/resolv.conf` },
    ].filter((o) => o.source !== '/etc/resolv.conf' || spec.network === 'enabled'));
    checkInvariants(spec, plan);
  });

  describe('resolv.conf', () => {
    const resolv = (plan: CellPlan) => plan.ops.filter((o) => o.op === 'bind-ro' && o.source === '/etc/resolv.conf');
    const resolvTarget = (plan: CellPlan) => plan.targets.filter((t) => t.cellPath === '/etc/resolv.conf' && t.replaceSymlink);

    it('is bound read-only when the network is enabled and the host has one', () => {
      const plan = planCell(baseSpec({ network: 'enabled' }), ctx());
      expect(resolv(plan)).toEqual([{ op: 'bind-ro', source: '/etc/resolv.conf', target: `${MERGED}/etc/resolv.conf` }]);
      expect(resolvTarget(plan)).toEqual([{ cellPath: '/etc/resolv.conf', kind: 'file', replaceSymlink: true }]);
    });
    it('is not bound when the network is disabled', () => {
      const plan = planCell(baseSpec({ network: 'disabled' }), ctx());
      expect(resolv(plan)).toEqual([]);
      expect(resolvTarget(plan)).toEqual([]);
    });
    it('is not bound without a host resolv.conf', () => {
      const plan = planCell(baseSpec({ network: 'enabled' }), ctx({ hostResolvConf: undefined }));
      expect(resolv(plan)).toEqual([]);
      expect(resolvTarget(plan)).toEqual([]);
    });
    it.each([
      ['an import of /etc', { imports: [{ source: '/h', destination: '/etc' }] }],
      ['an import of the file itself', { imports: [{ source: '/h/r', destination: '/etc/resolv.conf' }] }],
      ['a cache of /etc', { caches: [{ source: '/h', destination: '/etc' }] }],
      ['a workspace at /etc', { workspacePath: '/etc', command: { cwd: '/etc', executable: 'sh', argv: [] } }],
    ])('is not bound when %s covers it', (_what, overrides: Partial<BuildCellSpec>) => {
      const plan = planCell(baseSpec({ network: 'enabled', ...overrides }), ctx());
      expect(resolv(plan)).toEqual([]);
      expect(resolvTarget(plan)).toEqual([]);
    });
    it('is still bound when a user mount merely shares a prefix (/etcetera)', () => {
      const plan = planCell(baseSpec({ network: 'enabled', imports: [{ source: '/h', destination: '/etcetera' }] }), ctx());
      expect(resolv(plan)).toHaveLength(1);
    });
  });

  it('brings up loopback only when the network is disabled', () => {
    expect(kinds(planCell(baseSpec({ network: 'disabled' }), ctx()))).toContain('loopback');
    expect(kinds(planCell(baseSpec({ network: 'enabled' }), ctx()))).not.toContain('loopback');
  });

  it('joins the cgroup only when one is given', () => {
    expect(kinds(planCell(baseSpec(), ctx()))).not.toContain('cgroup');
    const plan = planCell(baseSpec(), ctx({ cgroupDir: '/sys/fs/cgroup/build-cell/c1' }));
    expect(plan.ops.filter((o) => o.op === 'cgroup')).toEqual([{ op: 'cgroup', dir: '/sys/fs/cgroup/build-cell/c1' }]);
    checkInvariants(baseSpec(), plan);
  });

  it('sets the hostname last', () => {
    expect(planCell(baseSpec(), ctx({ hostname: 'h1' })).ops.at(-1)).toEqual({ op: 'hostname', name: 'h1' });
  });

  it.each(['private', 'global'] as const)('adds qemu and a %s binfmt rule for emulation', (scope) => {
    const spec = baseSpec();
    const e = emulation(scope);
    const plan = planCell(spec, ctx({ emulation: e }), ruleFn);
    const interpreter = `${MERGED}${HELPER_DIR}/qemu-aarch64-static`;
    const binfmtDir = `${MERGED}/proc/sys/fs/binfmt_misc`;
    const at = indexOf(plan, (o) => o.op === 'bind-ro' && o.source === e.qemuPath);
    expect(plan.ops.slice(at, at + 3)).toEqual([
      { op: 'bind-ro', source: '/usr/bin/qemu-aarch64-static', target: interpreter },
      { op: 'binfmt-mount', target: binfmtDir },
      { op: 'binfmt-register', dir: binfmtDir, name: 'build-cell-abc123', scope, rule: binfmtRule('build-cell-abc123', e.arch, interpreter) },
    ]);
    expect(at).toBeGreaterThan(indexOf(plan, (o) => o.op === 'proc'));
    expect(plan.targets).toContainEqual({ cellPath: '/.build-cell', kind: 'dir' });
    expect(plan.targets).toContainEqual({ cellPath: '/.build-cell/qemu-aarch64-static', kind: 'file' });
    checkInvariants(spec, plan);
  });

  it('has no emulation ops or targets without emulation', () => {
    const plan = planCell(baseSpec(), ctx());
    expect(kinds(plan).filter((k) => k.startsWith('binfmt'))).toEqual([]);
    expect(plan.targets.some((t) => t.cellPath.startsWith(HELPER_DIR))).toBe(false);
  });
});

describe('planCell: targets', () => {
  it('lists proc, dev, workspace, imports (with their kinds), caches', () => {
    const spec = baseSpec({
      imports: [{ source: '/h/dir', destination: '/src' }, { source: '/h/file', destination: '/etc/app.conf' }, { source: '/h/x', destination: '/x' }],
      caches: [{ source: '/h/c', destination: '/root/.cache' }],
      command: { cwd: '/workspace', executable: 'make', argv: [] },
    });
    const plan = planCell(spec, ctx({ importKinds: ['dir', 'file'] }));
    expect(plan.targets).toEqual([
      { cellPath: '/proc', kind: 'dir' },
      { cellPath: '/dev', kind: 'dir' },
      { cellPath: '/workspace', kind: 'dir' },
      { cellPath: '/src', kind: 'dir' },
      { cellPath: '/etc/app.conf', kind: 'file' },
      { cellPath: '/x', kind: 'dir' }, // no kind given: a directory
      { cellPath: '/root/.cache', kind: 'dir' },
    ]);
  });

  it('adds the cwd when it is not a mount point or /', () => {
    const at = (cwd: string, overrides: Partial<BuildCellSpec> = {}) =>
      planCell(baseSpec({ ...overrides, command: { cwd, executable: 'sh', argv: [] } }), ctx()).targets.filter((t) => t.cellPath === cwd);
    expect(at('/build/sub')).toEqual([{ cellPath: '/build/sub', kind: 'dir' }]);
    expect(at('/workspace/sub')).toEqual([{ cellPath: '/workspace/sub', kind: 'dir' }]);
    expect(at('/workspace')).toEqual([{ cellPath: '/workspace', kind: 'dir' }]); // only once: the mount point
    expect(at('/src')).toEqual([{ cellPath: '/src', kind: 'dir' }]);
    expect(at('/')).toEqual([]);
  });

  it('adds the script file when a script is set', () => {
    const without = planCell(baseSpec(), ctx());
    expect(without.targets.some((t) => t.cellPath === SCRIPT_PATH)).toBe(false);
    const withScript = planCell(baseSpec({ script: 'echo hi' }), ctx());
    expect(withScript.targets).toContainEqual({ cellPath: '/.build-cell/run.sh', kind: 'file' });
    const emptyScript = planCell(baseSpec({ script: '' }), ctx());
    expect(emptyScript.targets).toContainEqual({ cellPath: '/.build-cell/run.sh', kind: 'file' });
  });

  it('carries the command and limits into the exec step', () => {
    const spec = baseSpec({
      command: { cwd: '/w', executable: 'make', argv: ['-j', '4'] },
      limits: { cpuTimeSeconds: 60, memoryBytes: 1 << 30, maxProcesses: 100 },
    });
    expect(planCell(spec, ctx()).exec).toEqual({
      cwd: '/w', cpuTimeSeconds: 60, memoryBytes: 1 << 30, maxProcesses: 100, root: MERGED, executable: 'make', argv: ['-j', '4'],
    });
  });
});

describe('planCell: property', () => {
  const segment = fc.stringMatching(/^[a-z][a-z0-9_.-]{0,6}$/);
  it('satisfies the ordering and confinement invariants for random specs', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(segment.filter((s) => !['proc', 'dev', 'workspace', 'etc'].includes(s)), { minLength: 0, maxLength: 6 }),
        fc.integer({ min: 0, max: 6 }),
        fc.constantFrom('enabled', 'disabled' as const),
        fc.boolean(),
        fc.boolean(),
        fc.option(fc.constantFrom('/workspace', '/', '/build/x', '/workspace/a b'), { nil: undefined }),
        (tops, nImports, network, emulate, cgroup, cwd) => {
          const dests = tops.map((t, i) => (i % 2 ? `/${t}` : `/opt/${t}`));
          const split = Math.min(nImports, dests.length);
          const spec = baseSpec({
            network: network as BuildCellSpec['network'],
            imports: dests.slice(0, split).map((d, i) => ({ source: `/h/i${i}`, destination: d })),
            caches: dests.slice(split).map((d, i) => ({ source: `/h/c${i}`, destination: d })),
            command: { cwd: cwd ?? '/workspace', executable: 'sh', argv: [] },
          });
          const plan = planCell(spec, ctx({ emulation: emulate ? emulation() : undefined, cgroupDir: cgroup ? '/sys/fs/cgroup/x' : undefined }), ruleFn);
          checkInvariants(spec, plan);
          expect(kinds(plan).includes('loopback')).toBe(network === 'disabled');
          expect(kinds(plan).includes('cgroup')).toBe(cgroup);
          expect(kinds(plan).includes('binfmt-register')).toBe(emulate);
          expect(plan.ops.filter((o) => o.op === 'bind-ro' && o.source.startsWith(`${spec.scratch}/imports/`))).toHaveLength(spec.imports.length);
          expect(plan.ops.filter((o) => o.op === 'bind' && o.source.startsWith(`${spec.scratch}/caches/`))).toHaveLength(spec.caches.length);
          // Each op round-trips through the helper's argv.
          expect(decodeHelperArgv(helperArgv(plan))).toEqual({ ops: plan.ops, exec: helperArgv(plan).slice(helperArgv(plan).indexOf('exec')) });
        },
      ),
      { numRuns: 100 },
    );
  });
});

/** The helper's arity per operation (see src/cell/helper.sh): decode argv back to ops. */
const FIELDS: Record<SetupOp['op'], string[]> = {
  'ns-check': ['hostMountNs'], 'root-check': ['prefix', 'root'], 'wait-go': [], private: [], loopback: [],
  overlay: ['lower', 'upper', 'work', 'target'], bind: ['source', 'target'], 'bind-ro': ['source', 'target'],
  proc: ['target'], mkdir: ['target'], touch: ['target'], devpts: ['target'], 'binfmt-mount': ['target'],
  tmpfs: ['target', 'options'], symlink: ['value', 'target'], 'binfmt-register': ['dir', 'name', 'rule', 'scope'],
  cgroup: ['dir'], hostname: ['name'],
};

function decodeHelperArgv(argv: string[]): { ops: SetupOp[]; exec: string[] } {
  const ops: SetupOp[] = [];
  let i = 0;
  while (argv[i] !== 'exec') {
    const op = argv[i] as SetupOp['op'];
    const fields = FIELDS[op];
    if (!fields) throw new Error(`unknown op ${op} at ${i}`);
    const decoded: Record<string, string> = { op };
    fields.forEach((f, k) => (decoded[f] = argv[i + 1 + k]!));
    ops.push(decoded as unknown as SetupOp);
    i += 1 + fields.length;
  }
  return { ops, exec: argv.slice(i) };
}

describe('helperArgv', () => {
  it('is a flat argv of every op, ending with exec CWD CPU AS NPROC ROOT EXE ARGS...', () => {
    const spec = baseSpec({ command: { cwd: '/w', executable: '/usr/bin/env', argv: ['A=1', 'make'] }, limits: { cpuTimeSeconds: 5, memoryBytes: 1048576, maxProcesses: 64 } });
    const plan = planCell(spec, ctx());
    const argv = helperArgv(plan);
    expect(argv.slice(0, 7)).toEqual(['ns-check', 'mnt:[4026531841]', 'root-check', '/var/lib/build-cell', spec.root, 'wait-go', 'private']);
    expect(argv.slice(argv.indexOf('exec'))).toEqual(['exec', '/w', '5', '1048576', '64', MERGED, '/usr/bin/env', 'A=1', 'make']);
    expect(decodeHelperArgv(argv).ops).toEqual(plan.ops);
  });

  it("uses '-' for unset limits", () => {
    const plan = planCell(baseSpec({ limits: { memoryBytes: 2 * 1048576 } }), ctx());
    const argv = helperArgv(plan);
    expect(argv.slice(argv.indexOf('exec'), argv.indexOf('exec') + 6)).toEqual(['exec', '/workspace', '-', '2097152', '-', MERGED]);
  });

  it('passes arguments with spaces, newlines, quotes and op names through unchanged', () => {
    const tricky = ['a b', 'line1\nline2', `it's "quoted"`, '$(rm -rf /)', '', '-', 'exec', 'bind', '\\n', '\t'];
    const plan = planCell(baseSpec({ command: { cwd: '/w d', executable: 'my tool', argv: tricky } }), ctx({ hostname: 'h "x"' }));
    const argv = helperArgv(plan);
    const at = argv.indexOf('exec');
    expect(argv.slice(at + 6)).toEqual(['my tool', ...tricky]);
    expect(argv[at + 1]).toBe('/w d');
    expect(argv[at - 1]).toBe('h "x"');
    expect(argv.length).toBe(at + 7 + tricky.length);
  });

  it('property: argv after exec is exactly the command', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'binary', maxLength: 12 }), { maxLength: 6 }), (args) => {
        const plan = planCell(baseSpec({ command: { cwd: '/', executable: 'x', argv: args } }), ctx());
        const argv = helperArgv(plan);
        expect(decodeHelperArgv(argv).exec).toEqual(['exec', '/', '-', '-', '-', MERGED, 'x', ...args]);
      }),
      { numRuns: 100 },
    );
  });
});

describe('hostLocation', () => {
  const spec = baseSpec({
    workspacePath: '/workspace',
    imports: [{ source: '/h/src', destination: '/src' }, { source: '/h/inner', destination: '/opt/tools/inner' }],
    caches: [{ source: '/h/tools', destination: '/opt/tools' }],
  });
  const layout = scratchLayout(spec.scratch);

  it.each([
    ['/workspace', 'staged', `${SCRATCH}/workspace`, ''],
    ['/workspace/out/bin', 'staged', `${SCRATCH}/workspace`, 'out/bin'],
    ['/src/a', 'staged', `${SCRATCH}/imports/0`, 'a'],
    ['/opt/tools/x', 'staged', `${SCRATCH}/caches/0`, 'x'],
    ['/opt/tools/inner/y', 'staged', `${SCRATCH}/imports/1`, 'y'], // longest match wins
    ['/opt/tools/innerx', 'staged', `${SCRATCH}/caches/0`, 'innerx'],
    ['/workspace2/a', 'rootfs', `${SCRATCH}/overlay/upper`, 'workspace2/a'],
    ['/etc/resolv.conf', 'rootfs', `${SCRATCH}/overlay/upper`, 'etc/resolv.conf'],
    ['/', 'rootfs', `${SCRATCH}/overlay/upper`, ''],
  ] as const)('%s -> %s %s %j', (cellPath, base, dir, rel) => {
    expect(hostLocation(spec, layout, cellPath)).toEqual({ base, dir, rel });
  });

  it.each([
    ['/workspace', 'rootfs', `${SCRATCH}/overlay/upper`, 'workspace'],
    ['/src', 'rootfs', `${SCRATCH}/overlay/upper`, 'src'],
    ['/opt/tools', 'rootfs', `${SCRATCH}/overlay/upper`, 'opt/tools'],
    ['/opt/tools/inner', 'staged', `${SCRATCH}/caches/0`, 'inner'],
    ['/workspace/sub', 'staged', `${SCRATCH}/workspace`, 'sub'],
  ] as const)('a mount point %s lives in what is mounted below it: %s %s %j', (cellPath, base, dir, rel) => {
    expect(hostLocation(spec, layout, cellPath, true)).toEqual({ base, dir, rel });
  });

  it('does not depend on the order of the mounts for the longest match', () => {
    const reordered = baseSpec({
      imports: [{ source: '/h/tools', destination: '/opt/tools' }],
      caches: [{ source: '/h/inner', destination: '/opt/tools/inner' }],
    });
    expect(hostLocation(reordered, scratchLayout(reordered.scratch), '/opt/tools/inner/z')).toEqual({ base: 'staged', dir: `${SCRATCH}/caches/0`, rel: 'z' });
  });
});
