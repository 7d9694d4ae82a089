import type { Emulation } from '../../src/emulation/setup.js';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { posix } from 'node:path';
import { binfmtRule, resolveArch } from '../../src/emulation/arch.js';
import {
  DEV_SKELETON,
  HELPER_DIR,
  planCell,
  tmpfsOptions,
  type CellPlan,
  type RunContext,
  type SetupOp,
} from '../../src/cell/plan.js';
import { helperArgv } from '../../src/cell/helper-argv.js';
import { batchMounts, fstabText } from '../../src/cell/mount-batch.js';
import {
  cacheMode,
  hostLocation,
  overlayCanUse,
  scratchLayout,
  workspaceMode,
  type StagingMode,
} from '../../src/cell/scratch-layout.js';
import { covers } from '../../src/cellspec/paths.js';
import { SCRIPT_PATH, type BuildCellSpec } from '../../src/cellspec/types.js';
import { baseSpec } from './spec-fixture.js';

const SCRATCH = '/var/lib/build-cell/cells/c1';
const MERGED = `${SCRATCH}/root`;

const TOOLS = { unshare: '/usr/bin/unshare', env: '/usr/bin/env', prlimit: '/usr/bin/prlimit', shell: '/usr/bin/dash' };

const OVERLAY_ROOT = 'redirect_dir=off,metacopy=off';
const ctx = (overrides: Partial<RunContext> = {}): RunContext => ({
  prefix: '/var/lib/build-cell',
  tools: TOOLS,
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
    case 'overlay':
    case 'overlay-ro':
    case 'bind':
    case 'bind-ro':
    case 'proc':
    case 'devpts':
    case 'binfmt-mount':
    case 'tmpfs':
      return op.target;
    case 'binfmt-register':
      return op.dir;
    default:
      return undefined;
  }
}

const indexOf = (plan: CellPlan, pred: (op: SetupOp) => boolean) => plan.ops.findIndex(pred);
const kinds = (plan: CellPlan) => plan.ops.map((o) => o.op);

/** The ops that mount the workspace, the imports and the caches (in that order), by target. */
function userMountOps(spec: BuildCellSpec, plan: CellPlan): SetupOp[] {
  const merged = plan.layout.merged;
  const targets = [
    spec.workspacePath,
    ...spec.imports.map((m) => m.destination),
    ...spec.caches.map((m) => m.destination),
  ].map((d) => posix.join(merged, d));
  return targets.map((t) => {
    const found = plan.ops.filter(
      (o) => ['overlay', 'overlay-ro', 'bind', 'bind-ro'].includes(o.op) && opTarget(o) === t,
    );
    expect(found, `exactly one mount at ${t}`).toHaveLength(1);
    return found[0]!;
  });
}

/** Check the ordering and confinement invariants every plan must satisfy. */
function checkInvariants(spec: BuildCellSpec, plan: CellPlan): void {
  const merged = plan.layout.merged;
  const layout = plan.layout;
  expect(merged).toBe(posix.join(spec.scratch, 'root'));
  expect(kinds(plan).slice(0, 4)).toEqual(['ns-check', 'root-check', 'wait-go', 'overlay']);
  // The cell's root is the first mount, and the only one of merged itself.
  const overlayAt = 3;
  expect(plan.ops[overlayAt]).toEqual({
    op: 'overlay',
    lower: spec.root,
    upper: layout.upper,
    work: layout.work,
    target: merged,
    options: OVERLAY_ROOT,
  });
  expect(plan.ops.filter((o) => opTarget(o) === merged)).toHaveLength(1);
  const procAt = indexOf(plan, (o) => o.op === 'proc');
  const devAt = indexOf(plan, (o) => o.op === 'bind' && o.source === layout.dev && o.target === `${merged}/dev`);
  expect(procAt).toBeGreaterThan(overlayAt);
  expect(devAt).toBeGreaterThan(overlayAt);
  plan.ops.forEach((op, i) => {
    const target = opTarget(op);
    if (op.op === 'cgroup') return;
    if (target === undefined) return;
    // Every target lies in the merged root, and is only touched once the overlay is there.
    expect(covers(merged, target), `${op.op} ${target}`).toBe(true);
    if (i !== overlayAt) {
      expect(i, `${op.op} ${target} after the overlay`).toBeGreaterThan(overlayAt);
      expect(target, `${op.op} only mounts below the cell's root`).not.toBe(merged);
    }
    if (covers(`${merged}/dev`, target) && target !== `${merged}/dev`)
      expect(i, `${op.op} ${target} after the /dev skeleton`).toBeGreaterThan(devAt);
    if (covers(`${merged}/proc`, target) && target !== `${merged}/proc`)
      expect(i, `${op.op} ${target} after proc`).toBeGreaterThan(procAt);
  });
  // Device binds come after proc and the /dev skeleton (which holds their mount points).
  plan.ops.forEach((op, i) => {
    if (op.op === 'bind' && op.source.startsWith('/dev/')) {
      expect(i).toBeGreaterThan(procAt);
      expect(i).toBeGreaterThan(devAt);
      expect(DEV_SKELETON).toContainEqual({ name: op.source.slice('/dev/'.length), kind: 'file' });
    }
  });
  // A mount inside another one's target comes after it (parent before child).
  plan.ops.forEach((outer, i) => {
    const a = opTarget(outer);
    if (a === undefined || outer.op === 'cgroup' || a === merged) return;
    plan.ops.forEach((inner, j) => {
      const b = opTarget(inner);
      if (b !== undefined && inner.op !== 'cgroup' && b !== a && covers(a, b))
        expect(j, `${inner.op} ${b} after ${outer.op} ${a}`).toBeGreaterThan(i);
    });
  });
  // The workspace, imports and caches: in that order, after proc and /dev, each as its staging says.
  const user = userMountOps(spec, plan);
  const userAt = user.map((o) => plan.ops.indexOf(o));
  expect(userAt).toEqual([...userAt].sort((a, b) => a - b));
  for (const at of userAt) expect(at).toBeGreaterThan(Math.max(procAt, devAt));
  const modes: StagingMode[] = [plan.staging.workspace, ...plan.staging.imports, ...plan.staging.caches];
  expect(modes).toHaveLength(user.length);
  user.forEach((op, k) => {
    const isImport = k >= 1 && k <= spec.imports.length;
    if (modes[k] === 'overlay') expect(op.op).toBe(isImport ? 'overlay-ro' : 'overlay');
    else expect(op.op).toBe(isImport ? 'bind-ro' : 'bind');
  });
  // Overlays of host inputs: lowers overlayfs' option syntax can carry, private upper/work
  // layers in the scratch, and read-only imports with the empty dir as their last lower.
  const layers: string[] = [layout.upper, layout.work];
  for (const op of plan.ops.slice(overlayAt + 1)) {
    if (op.op === 'overlay') {
      expect(overlayCanUse(op.lower), op.lower).toBe(true);
      expect(covers(spec.scratch, op.lower)).toBe(false);
      expect(covers(posix.join(spec.scratch, 'overlay'), op.upper)).toBe(true);
      expect(covers(posix.join(spec.scratch, 'overlay'), op.work)).toBe(true);
      layers.push(op.upper, op.work);
    } else if (op.op === 'overlay-ro') {
      expect(op.lowers).toHaveLength(2);
      expect(op.lowers[1]).toBe(layout.empty);
      expect(overlayCanUse(op.lowers[0]!), op.lowers[0]).toBe(true);
    }
  }
  expect(new Set(layers).size).toBe(layers.length);
  expect(plan.ops.at(-1)).toEqual({ op: 'hostname', name: expect.any(String) });
}

describe('scratchLayout', () => {
  it('puts everything under the scratch dir', () => {
    const l = scratchLayout('/s/c');
    expect(l).toMatchObject({
      scratch: '/s/c',
      request: '/s/c/build-cell-request.json',
      workspace: '/s/c/workspace',
      importsDir: '/s/c/imports',
      cachesDir: '/s/c/caches',
      upper: '/s/c/overlay/upper',
      work: '/s/c/overlay/work',
      merged: '/s/c/root',
      workspaceUpper: '/s/c/overlay/workspace-upper',
      workspaceWork: '/s/c/overlay/workspace-work',
      empty: '/s/c/overlay/empty',
    });
    expect(l.importPath(0)).toBe('/s/c/imports/0');
    expect(l.cachePath(3)).toBe('/s/c/caches/3');
    expect(l.cacheUpper(3)).toBe('/s/c/overlay/cache-3-upper');
    expect(l.cacheWork(3)).toBe('/s/c/overlay/cache-3-work');
  });

  it('gives every overlay its own upper and work dir, none inside another', () => {
    const l = scratchLayout('/s/c');
    const layers = [
      l.upper,
      l.work,
      l.workspaceUpper,
      l.workspaceWork,
      l.empty,
      l.merged,
      l.workspace,
      ...[0, 1, 2, 10].flatMap((i) => [l.cacheUpper(i), l.cacheWork(i), l.cachePath(i), l.importPath(i)]),
    ];
    expect(new Set(layers).size).toBe(layers.length);
    for (const a of layers) {
      expect(covers('/s/c', a)).toBe(true);
      for (const b of layers) if (a !== b) expect(covers(a, b), `${a} covers ${b}`).toBe(false);
    }
  });
});

describe('overlayCanUse', () => {
  it.each([
    ['/h/plain', true],
    ['/h/with space/and-dash_dot.x', true],
    ['/h/ünïcödé', true],
    ['/h/a=b', true],
    ['/h/a,b', false],
    ['/h/a:b', false],
    ['/h/a\\b', false],
    ['/h/a\nb', false],
    [',', false],
  ])('%j -> %s', (path, expected) => {
    expect(overlayCanUse(path)).toBe(expected);
  });
});

describe('planCell: operations', () => {
  it('starts with the safety checks, then the overlay of root', () => {
    const spec = baseSpec();
    const plan = planCell(spec, ctx());
    expect(plan.ops.slice(0, 4)).toEqual([
      { op: 'ns-check', fd: 5 },
      { op: 'root-check', prefix: '/var/lib/build-cell', root: spec.root },
      { op: 'wait-go' },
      {
        op: 'overlay',
        lower: spec.root,
        upper: `${SCRATCH}/overlay/upper`,
        work: `${SCRATCH}/overlay/work`,
        target: MERGED,
        options: OVERLAY_ROOT,
      },
    ]);
    checkInvariants(spec, plan);
  });

  it('mounts a root image file on the rootfs mount point, first of the mounts, batched as an erofs line', () => {
    const spec = baseSpec({
      rootImage: { file: '/var/lib/build-cell/images/erofs/amd64-abc.erofs', options: 'ro,loop' },
    });
    const plan = planCell(spec, ctx());
    expect(plan.ops.slice(2, 5).map((o) => o.op)).toEqual(['wait-go', 'image', 'overlay']);
    expect(plan.ops[3]).toEqual({
      op: 'image',
      file: '/var/lib/build-cell/images/erofs/amd64-abc.erofs',
      target: spec.root,
      options: 'ro,loop',
    });
    const batched = batchMounts(plan.ops, plan.layout, { rootless: false });
    const entries = batched.flatMap((o) => (o.op === 'mounts' ? o.entries : []));
    expect(entries[0]).toEqual({
      source: '/var/lib/build-cell/images/erofs/amd64-abc.erofs',
      target: spec.root,
      type: 'erofs',
      options: 'ro,loop',
    });
    expect(entries[1]).toMatchObject({ type: 'overlay', options: expect.stringContaining(`lowerdir=${spec.root},`) });
    expect(helperArgv({ ...plan, ops: [plan.ops[3]!] }).slice(0, 4)).toEqual([
      'image',
      '/var/lib/build-cell/images/erofs/amd64-abc.erofs',
      spec.root,
      'ro,loop',
    ]);
    expect(planCell(baseSpec(), ctx()).ops.some((o) => o.op === 'image')).toBe(false);
  });

  it('mounts proc and a fresh /dev with the standard devices', () => {
    const plan = planCell(baseSpec(), ctx());
    expect(plan.ops).toContainEqual({ op: 'proc', target: `${MERGED}/proc` });
    expect(plan.ops).toContainEqual({ op: 'bind', source: `${SCRATCH}/dev`, target: `${MERGED}/dev` });
    for (const d of ['null', 'zero', 'full', 'random', 'urandom', 'tty']) {
      expect(plan.ops).toContainEqual({ op: 'bind', source: `/dev/${d}`, target: `${MERGED}/dev/${d}` });
    }
    expect(plan.ops).toContainEqual({ op: 'devpts', target: `${MERGED}/dev/pts` });
    expect(DEV_SKELETON).toContainEqual({ name: 'ptmx', kind: 'symlink', value: 'pts/ptmx' });
    expect(DEV_SKELETON).toContainEqual({ name: 'fd', kind: 'symlink', value: '/proc/self/fd' });
    expect(DEV_SKELETON).toContainEqual({ name: 'pts', kind: 'dir', mode: 0o755 });
    expect(DEV_SKELETON).toContainEqual({ name: 'shm', kind: 'dir', mode: 0o1777 });
  });

  it('binds the staged copies when nothing is an overlay: an empty workspace, copied imports, caches whose paths overlayfs cannot carry', () => {
    const spec = baseSpec({
      imports: [
        { source: '/h/a', destination: '/src' },
        { source: '/h/b', destination: '/opt/tool' },
      ],
      caches: [
        { source: '/h/c,1', destination: '/root/.cache' },
        { source: '/h/d:2', destination: '/var/cache/apt' },
      ],
    });
    // No importSources in the context: imports are copied.
    const plan = planCell(spec, ctx());
    const userBinds = plan.ops.filter(
      (o) => (o.op === 'bind' || o.op === 'bind-ro') && !o.source.startsWith('/dev/') && o.source !== plan.layout.dev,
    );
    expect(userBinds).toEqual(
      [
        { op: 'bind', source: `${SCRATCH}/workspace`, target: `${MERGED}/workspace` },
        { op: 'bind-ro', source: `${SCRATCH}/imports/0`, target: `${MERGED}/src` },
        { op: 'bind-ro', source: `${SCRATCH}/imports/1`, target: `${MERGED}/opt/tool` },
        { op: 'bind', source: `${SCRATCH}/caches/0`, target: `${MERGED}/root/.cache` },
        { op: 'bind', source: `${SCRATCH}/caches/1`, target: `${MERGED}/var/cache/apt` },
        { op: 'bind-ro', source: '/etc/resolv.conf', target: `${MERGED}/etc/resolv.conf` },
      ].filter((o) => o.source !== '/etc/resolv.conf' || spec.network === 'enabled'),
    );
    expect(kinds(plan).filter((k) => k === 'overlay')).toHaveLength(1); // only the root
    expect(kinds(plan)).not.toContain('overlay-ro');
    expect(plan.staging).toEqual({ workspace: 'copy', imports: ['copy', 'copy'], caches: ['copy', 'copy'] });
    checkInvariants(spec, plan);
  });

  it('layers the seed directory, directory imports and caches as overlays, with copies only where they must be', () => {
    const spec = baseSpec({
      workspaceSeed: { kind: 'snapshot', path: '/h/ws' },
      imports: [
        { source: '/h/dir', destination: '/src' },
        { source: '/h/app.conf', destination: '/etc/app.conf' },
        { source: '/h/comma,dir', destination: '/opt/comma' },
        { source: '/h/colon:dir', destination: '/opt/colon' },
        { source: '/h/with space', destination: '/opt/space' },
      ],
      caches: [
        { source: '/h/c0', destination: '/root/.cache' },
        { source: '/h/c,1', destination: '/var/cache/apt' },
        { source: '/h/c:2', destination: '/var/lib/apt' },
        { source: '/h/c3', destination: '/root/.npm' },
      ],
      network: 'enabled',
    });
    const sources = spec.imports.map((m) => m.source);
    const plan = planCell(spec, ctx({ importKinds: ['dir', 'file', 'dir', 'dir', 'dir'], importSources: sources }));
    expect(userMountOps(spec, plan)).toEqual([
      {
        op: 'overlay',
        lower: '/h/ws',
        upper: `${SCRATCH}/overlay/workspace-upper`,
        work: `${SCRATCH}/overlay/workspace-work`,
        target: `${MERGED}/workspace`,
        options: OVERLAY_ROOT,
      },
      {
        op: 'overlay-ro',
        lowers: ['/h/dir', `${SCRATCH}/overlay/empty`],
        target: `${MERGED}/src`,
        options: OVERLAY_ROOT,
      },
      { op: 'bind-ro', source: `${SCRATCH}/imports/1`, target: `${MERGED}/etc/app.conf` },
      { op: 'bind-ro', source: `${SCRATCH}/imports/2`, target: `${MERGED}/opt/comma` },
      { op: 'bind-ro', source: `${SCRATCH}/imports/3`, target: `${MERGED}/opt/colon` },
      {
        op: 'overlay-ro',
        lowers: ['/h/with space', `${SCRATCH}/overlay/empty`],
        target: `${MERGED}/opt/space`,
        options: OVERLAY_ROOT,
      },
      {
        op: 'overlay',
        lower: '/h/c0',
        upper: `${SCRATCH}/overlay/cache-0-upper`,
        work: `${SCRATCH}/overlay/cache-0-work`,
        target: `${MERGED}/root/.cache`,
        options: OVERLAY_ROOT,
      },
      { op: 'bind', source: `${SCRATCH}/caches/1`, target: `${MERGED}/var/cache/apt` },
      { op: 'bind', source: `${SCRATCH}/caches/2`, target: `${MERGED}/var/lib/apt` },
      {
        op: 'overlay',
        lower: '/h/c3',
        upper: `${SCRATCH}/overlay/cache-3-upper`,
        work: `${SCRATCH}/overlay/cache-3-work`,
        target: `${MERGED}/root/.npm`,
        options: OVERLAY_ROOT,
      },
    ]);
    expect(plan.staging).toEqual({
      workspace: 'overlay',
      imports: ['overlay', 'copy', 'copy', 'copy', 'overlay'],
      caches: ['overlay', 'copy', 'copy', 'overlay'],
    });
    // The user mounts follow the /dev setup directly, then resolv.conf.
    const wsAt = indexOf(plan, (o) => opTarget(o) === `${MERGED}/workspace`);
    expect(plan.ops[wsAt - 1]).toEqual({ op: 'devpts', target: `${MERGED}/dev/pts` });
    expect(plan.ops[wsAt + 10]).toEqual({
      op: 'bind-ro',
      source: '/etc/resolv.conf',
      target: `${MERGED}/etc/resolv.conf`,
    });
    checkInvariants(spec, plan);
  });

  describe('the workspace', () => {
    const wsOp = (plan: CellPlan) => plan.ops.find((o) => opTarget(o) === `${MERGED}/workspace`);
    const bindStaged = { op: 'bind', source: `${SCRATCH}/workspace`, target: `${MERGED}/workspace` };

    it('is an overlay of a snapshot seed directory: nothing copied, changes in its own upper', () => {
      const spec = baseSpec({ workspaceSeed: { kind: 'snapshot', path: '/home/u/project' } });
      const plan = planCell(spec, ctx());
      expect(wsOp(plan)).toEqual({
        op: 'overlay',
        lower: '/home/u/project',
        upper: `${SCRATCH}/overlay/workspace-upper`,
        work: `${SCRATCH}/overlay/workspace-work`,
        target: `${MERGED}/workspace`,
        options: OVERLAY_ROOT,
      });
      expect(plan.staging.workspace).toBe('overlay');
      expect(workspaceMode(spec)).toBe('overlay');
      checkInvariants(spec, plan);
    });

    it.each([
      ['an empty seed', { kind: 'empty' }],
      ['an archive', { kind: 'archive', path: '/h/ws.tar.gz' }],
      ['an archive overlayfs could carry as a path', { kind: 'archive', path: '/h/plain.tar' }],
      ["a snapshot whose path has ','", { kind: 'snapshot', path: '/h/a,b' }],
      ["a snapshot whose path has ':'", { kind: 'snapshot', path: '/h/a:b' }],
      ["a snapshot whose path has '\\'", { kind: 'snapshot', path: '/h/a\\b' }],
      ['a snapshot whose path has a newline', { kind: 'snapshot', path: '/h/a\nb' }],
    ] as Array<[string, BuildCellSpec['workspaceSeed']]>)('binds the staged workspace for %s', (_what, seed) => {
      const spec = baseSpec({ workspaceSeed: seed });
      const plan = planCell(spec, ctx());
      expect(wsOp(plan)).toEqual(bindStaged);
      expect(plan.staging.workspace).toBe('copy');
      expect(workspaceMode(spec)).toBe('copy');
      expect(plan.ops.some((o) => o.op === 'overlay' && o.upper === `${SCRATCH}/overlay/workspace-upper`)).toBe(false);
      checkInvariants(spec, plan);
    });
  });

  describe('imports', () => {
    const importOps = (spec: BuildCellSpec, plan: CellPlan) =>
      userMountOps(spec, plan).slice(1, 1 + spec.imports.length);

    it('mounts a directory import as a read-only overlay: its source and the empty dir, no upper', () => {
      const spec = baseSpec({ imports: [{ source: '/h/src', destination: '/src' }] });
      const plan = planCell(spec, ctx({ importKinds: ['dir'], importSources: ['/h/src'] }));
      expect(importOps(spec, plan)).toEqual([
        {
          op: 'overlay-ro',
          lowers: ['/h/src', `${SCRATCH}/overlay/empty`],
          target: `${MERGED}/src`,
          options: OVERLAY_ROOT,
        },
      ]);
      expect(plan.staging.imports).toEqual(['overlay']);
      // Nothing of it is bound from the scratch.
      expect(plan.ops.some((o) => o.op === 'bind-ro' && o.source.startsWith(`${SCRATCH}/imports`))).toBe(false);
      checkInvariants(spec, plan);
    });

    it('passes the lowers to the helper top layer first, colon-separated', () => {
      const spec = baseSpec({ imports: [{ source: '/h/src', destination: '/src' }] });
      const argv = helperArgv(planCell(spec, ctx({ importKinds: ['dir'], importSources: ['/h/src'] })));
      const at = argv.indexOf('overlay-ro');
      expect(argv.slice(at, at + 3)).toEqual(['overlay-ro', `/h/src:${SCRATCH}/overlay/empty`, `${MERGED}/src`]);
    });

    it.each([
      ['a file', '/h/app.conf', 'file'],
      ["a directory whose path has ','", '/h/a,b', 'dir'],
      ["a directory whose path has ':'", '/h/a:b', 'dir'],
      ["a directory whose path has '\\'", '/h/a\\b', 'dir'],
      ['a directory whose path has a newline', '/h/a\nb', 'dir'],
    ] as const)('copies and binds read-only %s', (_what, source, kind) => {
      const spec = baseSpec({
        imports: [
          { source: '/h/first', destination: '/first' },
          { source, destination: '/imp' },
        ],
      });
      const plan = planCell(spec, ctx({ importKinds: ['dir', kind], importSources: ['/h/first', source] }));
      expect(importOps(spec, plan)).toEqual([
        {
          op: 'overlay-ro',
          lowers: ['/h/first', `${SCRATCH}/overlay/empty`],
          target: `${MERGED}/first`,
          options: OVERLAY_ROOT,
        },
        { op: 'bind-ro', source: `${SCRATCH}/imports/1`, target: `${MERGED}/imp` },
      ]);
      expect(plan.staging.imports).toEqual(['overlay', 'copy']);
      checkInvariants(spec, plan);
    });

    it('copies imports whose sources the context does not name (no importSources)', () => {
      const spec = baseSpec({ imports: [{ source: '/h/src', destination: '/src' }] });
      const plan = planCell(spec, ctx({ importKinds: ['dir'] }));
      expect(importOps(spec, plan)).toEqual([
        { op: 'bind-ro', source: `${SCRATCH}/imports/0`, target: `${MERGED}/src` },
      ]);
      expect(plan.staging.imports).toEqual(['copy']);
    });

    it('treats an import without a kind as a directory', () => {
      const spec = baseSpec({ imports: [{ source: '/h/src', destination: '/src' }] });
      const plan = planCell(spec, ctx({ importSources: ['/h/src'] }));
      expect(plan.staging.imports).toEqual(['overlay']);
      expect(plan.targets).toContainEqual({ cellPath: '/src', kind: 'dir' });
    });
  });

  describe('caches', () => {
    const cacheOps = (spec: BuildCellSpec, plan: CellPlan) => userMountOps(spec, plan).slice(1 + spec.imports.length);

    it('mounts a cache as an overlay of the host cache dir, with its own upper and work dir', () => {
      const spec = baseSpec({ caches: [{ source: '/home/u/.cache/build', destination: '/root/.cache' }] });
      const plan = planCell(spec, ctx());
      expect(cacheOps(spec, plan)).toEqual([
        {
          op: 'overlay',
          lower: '/home/u/.cache/build',
          upper: `${SCRATCH}/overlay/cache-0-upper`,
          work: `${SCRATCH}/overlay/cache-0-work`,
          target: `${MERGED}/root/.cache`,
          options: OVERLAY_ROOT,
        },
      ]);
      expect(plan.staging.caches).toEqual(['overlay']);
      expect(cacheMode('/home/u/.cache/build')).toBe('overlay');
      checkInvariants(spec, plan);
    });

    it.each([
      ["','", '/h/c,x'],
      ["':'", '/h/c:x'],
      ["'\\'", '/h/c\\x'],
      ['a newline', '/h/c\nx'],
    ])('copies and binds a cache whose path has %s, keeping the indices of the others', (_what, source) => {
      const spec = baseSpec({
        caches: [
          { source, destination: '/root/.cache' },
          { source: '/h/ok', destination: '/root/.npm' },
        ],
      });
      const plan = planCell(spec, ctx());
      expect(cacheOps(spec, plan)).toEqual([
        { op: 'bind', source: `${SCRATCH}/caches/0`, target: `${MERGED}/root/.cache` },
        {
          op: 'overlay',
          lower: '/h/ok',
          upper: `${SCRATCH}/overlay/cache-1-upper`,
          work: `${SCRATCH}/overlay/cache-1-work`,
          target: `${MERGED}/root/.npm`,
          options: OVERLAY_ROOT,
        },
      ]);
      expect(plan.staging.caches).toEqual(['copy', 'overlay']);
      expect(cacheMode(source)).toBe('copy');
      checkInvariants(spec, plan);
    });
  });

  it('stages the same way for a rootless cell', () => {
    const spec = baseSpec({
      workspaceSeed: { kind: 'snapshot', path: '/h/ws' },
      imports: [{ source: '/h/src', destination: '/src' }],
    });
    const c = { importKinds: ['dir' as const], importSources: ['/h/src'] };
    // The same ops, but for the overlays' options (userxattr).
    const withoutOptions = (ops: SetupOp[]) =>
      ops.map((o) => (o.op === 'overlay' || o.op === 'overlay-ro' ? { ...o, options: '' } : o));
    expect(withoutOptions(planCell(spec, ctx({ ...c, rootless: true })).ops)).toEqual(
      withoutOptions(planCell(spec, ctx(c)).ops),
    );
    expect(planCell(spec, ctx({ ...c, rootless: true })).staging).toEqual({
      workspace: 'overlay',
      imports: ['overlay'],
      caches: ['overlay'],
    });
  });

  describe('resolv.conf', () => {
    const resolv = (plan: CellPlan) => plan.ops.filter((o) => o.op === 'bind-ro' && o.source === '/etc/resolv.conf');
    const resolvTarget = (plan: CellPlan) =>
      plan.targets.filter((t) => t.cellPath === '/etc/resolv.conf' && t.replaceSymlink);

    it('is bound read-only when the network is enabled and the host has one', () => {
      const plan = planCell(baseSpec({ network: 'enabled' }), ctx());
      expect(resolv(plan)).toEqual([
        { op: 'bind-ro', source: '/etc/resolv.conf', target: `${MERGED}/etc/resolv.conf` },
      ]);
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
      const plan = planCell(
        baseSpec({ network: 'enabled', imports: [{ source: '/h', destination: '/etcetera' }] }),
        ctx(),
      );
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
      {
        op: 'binfmt-register',
        dir: binfmtDir,
        name: 'build-cell-abc123',
        scope,
        rule: binfmtRule('build-cell-abc123', e.arch, interpreter),
      },
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
      imports: [
        { source: '/h/dir', destination: '/src' },
        { source: '/h/file', destination: '/etc/app.conf' },
        { source: '/h/x', destination: '/x' },
      ],
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
      planCell(baseSpec({ ...overrides, command: { cwd, executable: 'sh', argv: [] } }), ctx()).targets.filter(
        (t) => t.cellPath === cwd,
      );
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
      cwd: '/w',
      tools: { env: TOOLS.env, prlimit: TOOLS.prlimit, unshare: TOOLS.unshare },
      cpuTimeSeconds: 60,
      memoryBytes: 1 << 30,
      maxProcesses: 100,
      root: MERGED,
      executable: 'make',
      argv: ['-j', '4'],
    });
  });
});

describe('planCell: tmpfs', () => {
  const spec = baseSpec({
    workspaceSeed: { kind: 'snapshot', path: '/h/ws' },
    tmpfs: [{ destination: '/tmp' }, { destination: '/workspace/build', sizeBytes: 2 * 1024 ** 3 }],
    command: { cwd: '/workspace/build', executable: 'make', argv: [] },
  });
  const plan = planCell(spec, ctx());

  it('mounts each tmpfs after the workspace (which may hold one), before the imports and caches', () => {
    const at = (pred: (op: SetupOp) => boolean) => indexOf(plan, pred);
    const ws = at((o) => o.op === 'overlay' && o.target === `${MERGED}/workspace`);
    expect(plan.ops.slice(ws + 1, ws + 3)).toEqual([
      { op: 'tmpfs', target: `${MERGED}/tmp`, options: 'mode=1777,nosuid,nodev' },
      { op: 'tmpfs', target: `${MERGED}/workspace/build`, options: `mode=1777,nosuid,nodev,size=${2 * 1024 ** 3}` },
    ]);
    expect(at((o) => o.op === 'bind-ro' && o.target === `${MERGED}/src`)).toBeGreaterThan(ws + 2);
    expect(at((o) => o.op === 'overlay' && o.target === `${MERGED}/root/.cache`)).toBeGreaterThan(ws + 2);
  });

  it('makes each mount point a directory target, and no other target for a cwd that is one', () => {
    expect(plan.targets.filter((t) => ['/tmp', '/workspace/build'].includes(t.cellPath))).toEqual([
      { cellPath: '/tmp', kind: 'dir' },
      { cellPath: '/workspace/build', kind: 'dir' },
    ]);
    // Inside the workspace: its mount point is made in the workspace's own layer.
    const where = hostLocation(spec, plan.layout, '/workspace/build', true);
    expect(where).toEqual({ base: 'staged', lower: '/h/ws', dir: plan.layout.workspaceUpper, rel: 'build' });
  });

  it('leaves /etc/resolv.conf alone under a tmpfs that covers it', () => {
    const etc = planCell(baseSpec({ network: 'enabled', tmpfs: [{ destination: '/etc' }] }), ctx());
    expect(etc.targets.some((t) => t.cellPath === '/etc/resolv.conf')).toBe(false);
  });

  it('is one fstab line among the batched mounts, and a helper op of its own', () => {
    const batched = batchMounts(plan.ops, plan.layout, { rootless: false });
    const entries = batched.flatMap((o) => (o.op === 'mounts' ? o.entries : []));
    expect(entries).toContainEqual({
      source: 'tmpfs',
      target: `${MERGED}/tmp`,
      type: 'tmpfs',
      options: 'mode=1777,nosuid,nodev',
    });
    const argv = helperArgv({ ...plan, ops: plan.ops.filter((o) => o.op === 'tmpfs') });
    expect(argv.slice(0, 6)).toEqual([
      'tmpfs',
      `${MERGED}/tmp`,
      'mode=1777,nosuid,nodev',
      'tmpfs',
      `${MERGED}/workspace/build`,
      `mode=1777,nosuid,nodev,size=${2 * 1024 ** 3}`,
    ]);
  });
});

describe('planCell: property', () => {
  const segment = fc.stringMatching(/^[a-z][a-z0-9_.-]{0,6}$/);
  // Host paths, some of which overlayfs' option syntax cannot carry.
  const hostPath = fc
    .tuple(
      fc.constantFrom('/h/plain', '/h/with space', '/h/ü', '/h/a,b', '/h/a:b', '/h/a\\b', '/h/a\nb', '/h/x=y'),
      fc.nat(99),
    )
    .map(([p, n]) => `${p}${n}`);
  const seed: fc.Arbitrary<BuildCellSpec['workspaceSeed']> = fc.oneof(
    fc.constant({ kind: 'empty' as const }),
    hostPath.map((path) => ({ kind: 'archive' as const, path: `${path}.tar` })),
    hostPath.map((path) => ({ kind: 'snapshot' as const, path })),
  );
  it('satisfies the ordering and confinement invariants for random specs', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(
          segment.filter((s) => !['proc', 'dev', 'workspace', 'etc', 'tmp', 'var'].includes(s)),
          { minLength: 0, maxLength: 6 },
        ),
        fc.integer({ min: 0, max: 6 }),
        fc.constantFrom('enabled', 'disabled' as const),
        fc.boolean(),
        fc.boolean(),
        fc.option(fc.constantFrom('/workspace', '/', '/build/x', '/workspace/a b'), { nil: undefined }),
        seed,
        fc.array(fc.tuple(hostPath, fc.constantFrom('dir' as const, 'file' as const)), { minLength: 6, maxLength: 6 }),
        fc.array(hostPath, { minLength: 6, maxLength: 6 }),
        fc.boolean(),
        // tmpfs destinations: none covers an import or a cache (validateSpec refuses that).
        fc.subarray(['/tmp', '/var/tmp', '/workspace/t mp']),
        (
          tops,
          nImports,
          network,
          emulate,
          cgroup,
          cwd,
          workspaceSeed,
          importHosts,
          cacheHosts,
          namedSources,
          tmpfs,
        ) => {
          // Some inside the workspace (Cargo's target/, node_modules/): mounted over it.
          const dests = tops.map((t, i) => [`/opt/${t}`, `/${t}`, `/workspace/${t}`][i % 3]!);
          const split = Math.min(nImports, dests.length);
          const spec = baseSpec({
            network,
            workspaceSeed,
            imports: dests.slice(0, split).map((d, i) => ({ source: importHosts[i]![0], destination: d })),
            caches: dests.slice(split).map((d, i) => ({ source: cacheHosts[i]!, destination: d })),
            tmpfs: tmpfs.map((destination, i) => (i % 2 ? { destination, sizeBytes: 1 << 20 } : { destination })),
            command: { cwd: cwd ?? '/workspace', executable: 'sh', argv: [] },
          });
          const importKinds = spec.imports.map((_, i) => importHosts[i]![1]);
          const plan = planCell(
            spec,
            ctx({
              emulation: emulate ? emulation() : undefined,
              cgroupDir: cgroup ? '/sys/fs/cgroup/x' : undefined,
              importKinds,
              importSources: namedSources ? spec.imports.map((m) => m.source) : undefined,
            }),
            ruleFn,
          );
          checkInvariants(spec, plan);
          expect(kinds(plan).includes('loopback')).toBe(network === 'disabled');
          expect(kinds(plan).includes('cgroup')).toBe(cgroup);
          expect(kinds(plan).includes('binfmt-register')).toBe(emulate);
          // Exactly the staging the rules say, and exactly the mounts the staging says.
          const layout = plan.layout;
          const wsOverlay = workspaceSeed.kind === 'snapshot' && overlayCanUse(workspaceSeed.path);
          const importOverlay = spec.imports.map(
            (m, i) => namedSources && importKinds[i] === 'dir' && overlayCanUse(m.source),
          );
          const cacheOverlay = spec.caches.map((m) => overlayCanUse(m.source));
          const mode = (overlay: boolean): StagingMode => (overlay ? 'overlay' : 'copy');
          expect(plan.staging).toEqual({
            workspace: mode(wsOverlay),
            imports: importOverlay.map(mode),
            caches: cacheOverlay.map(mode),
          });
          const inCell = (d: string) => posix.join(layout.merged, d);
          expect(userMountOps(spec, plan)).toEqual([
            wsOverlay && workspaceSeed.kind === 'snapshot'
              ? {
                  op: 'overlay',
                  lower: workspaceSeed.path,
                  upper: layout.workspaceUpper,
                  work: layout.workspaceWork,
                  target: inCell(spec.workspacePath),
                  options: OVERLAY_ROOT,
                }
              : { op: 'bind', source: layout.workspace, target: inCell(spec.workspacePath) },
            ...spec.imports.map((m, i) =>
              importOverlay[i]
                ? {
                    op: 'overlay-ro',
                    lowers: [m.source, layout.empty],
                    target: inCell(m.destination),
                    options: OVERLAY_ROOT,
                  }
                : { op: 'bind-ro', source: layout.importPath(i), target: inCell(m.destination) },
            ),
            ...spec.caches.map((m, i) =>
              cacheOverlay[i]
                ? {
                    op: 'overlay',
                    lower: m.source,
                    upper: layout.cacheUpper(i),
                    work: layout.cacheWork(i),
                    target: inCell(m.destination),
                    options: OVERLAY_ROOT,
                  }
                : { op: 'bind', source: layout.cachePath(i), target: inCell(m.destination) },
            ),
          ]);
          // Each tmpfs once, right after the workspace, before the imports and caches.
          const wsAt = plan.ops.indexOf(userMountOps(spec, plan)[0]!);
          expect(plan.ops.filter((o) => o.op === 'tmpfs')).toEqual(
            spec.tmpfs!.map((m) => ({ op: 'tmpfs', target: inCell(m.destination), options: tmpfsOptions(m) })),
          );
          plan.ops.forEach((op, i) => {
            if (op.op === 'tmpfs')
              expect(i).toBe(wsAt + 1 + spec.tmpfs!.findIndex((m) => inCell(m.destination) === op.target));
          });
          // No host path that overlayfs cannot carry ever reaches a mount option.
          for (const op of plan.ops) {
            if (op.op === 'overlay') expect(overlayCanUse(op.lower)).toBe(true);
            if (op.op === 'overlay-ro') op.lowers.forEach((l) => expect(overlayCanUse(l)).toBe(true));
          }
          // Below the workspace and the caches, hostLocation names the layers the plan mounts.
          const mounted = userMountOps(spec, plan);
          const mountedPaths = [
            spec.workspacePath,
            ...spec.imports.map((m) => m.destination),
            ...spec.caches.map((m) => m.destination),
          ];
          mounted.forEach((op, k) => {
            if (op.op === 'overlay-ro') return; // read-only overlay imports: see the BUG test in hostLocation
            // A name no generated mount has ('~'): below the mount itself, not a nested one.
            const where = hostLocation(spec, layout, `${mountedPaths[k]}/~x/y`);
            const expected =
              op.op === 'overlay'
                ? { lower: op.lower, dir: op.upper }
                : op.op === 'bind' || op.op === 'bind-ro'
                  ? { lower: undefined, dir: op.source }
                  : undefined;
            expect(where).toStrictEqual({ base: 'staged', ...expected, rel: '~x/y' });
          });
          // Each op round-trips through the helper's argv.
          expect(decodeHelperArgv(helperArgv(plan))).toEqual({
            ops: plan.ops,
            exec: helperArgv(plan).slice(helperArgv(plan).indexOf('exec')),
          });
        },
      ),
      { numRuns: 200 },
    );
  });
});

/** The helper's arity per operation (see src/cell/helper.sh): decode argv back to ops. */
const FIELDS: Record<SetupOp['op'], string[]> = {
  'ns-check': ['fd'],
  'root-check': ['prefix', 'root'],
  'wait-go': [],
  loopback: [],
  'enter-userns': ['proc', 'unshare', 'shell'],
  'wait-map': [],
  overlay: ['lower', 'upper', 'work', 'target', 'options'],
  'overlay-ro': ['lowers', 'target', 'options'],
  image: ['file', 'target', 'options'],
  'flatten-owners': ['dir', 'list'],
  bind: ['source', 'target'],
  'bind-ro': ['source', 'target'],
  proc: ['target'],
  devpts: ['target'],
  'binfmt-mount': ['target'],
  'binfmt-register': ['dir', 'name', 'rule', 'scope'],
  cgroup: ['dir'],
  hostname: ['name'],
  mounts: ['file'],
  tmpfs: ['target', 'options'],
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
    const typed =
      op === 'overlay-ro'
        ? { ...decoded, lowers: decoded.lowers!.split(':') }
        : op === 'ns-check'
          ? { ...decoded, fd: Number(decoded.fd) }
          : decoded;
    ops.push(typed as unknown as SetupOp);
    i += 1 + fields.length;
  }
  return { ops, exec: argv.slice(i) };
}

describe('helperArgv', () => {
  it('is a flat argv of every op, ending with exec CWD CPU AS NPROC ROOT ENV PRLIMIT UNSHARE EXE ARGS...', () => {
    const spec = baseSpec({
      command: { cwd: '/w', executable: '/usr/bin/env', argv: ['A=1', 'make'] },
      limits: { cpuTimeSeconds: 5, memoryBytes: 1048576, maxProcesses: 64 },
    });
    const plan = planCell(spec, ctx());
    const argv = helperArgv(plan);
    expect(argv.slice(0, 6)).toEqual(['ns-check', '5', 'root-check', '/var/lib/build-cell', spec.root, 'wait-go']);
    expect(argv.slice(argv.indexOf('exec'))).toEqual([
      'exec',
      '/w',
      '5',
      '1048576',
      '64',
      MERGED,
      TOOLS.env,
      TOOLS.prlimit,
      TOOLS.unshare,
      '/usr/bin/env',
      'A=1',
      'make',
    ]);
    expect(decodeHelperArgv(argv).ops).toEqual(plan.ops);
  });

  it("uses '-' for unset limits", () => {
    const plan = planCell(baseSpec({ limits: { memoryBytes: 2 * 1048576 } }), ctx());
    const argv = helperArgv(plan);
    expect(argv.slice(argv.indexOf('exec'), argv.indexOf('exec') + 6)).toEqual([
      'exec',
      '/workspace',
      '-',
      '2097152',
      '-',
      MERGED,
    ]);
  });

  it('passes arguments with spaces, newlines, quotes and op names through unchanged', () => {
    const tricky = ['a b', 'line1\nline2', `it's "quoted"`, '$(rm -rf /)', '', '-', 'exec', 'bind', '\\n', '\t'];
    const plan = planCell(
      baseSpec({ command: { cwd: '/w d', executable: 'my tool', argv: tricky } }),
      ctx({ hostname: 'h "x"' }),
    );
    const argv = helperArgv(plan);
    const at = argv.indexOf('exec');
    expect(argv.slice(at + 9)).toEqual(['my tool', ...tricky]);
    expect(argv[at + 1]).toBe('/w d');
    expect(argv[at - 1]).toBe('h "x"');
    expect(argv.length).toBe(at + 10 + tricky.length);
  });

  it('property: argv after exec is exactly the command', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'binary', maxLength: 12 }), { maxLength: 6 }), (args) => {
        const plan = planCell(baseSpec({ command: { cwd: '/', executable: 'x', argv: args } }), ctx());
        const argv = helperArgv(plan);
        expect(decodeHelperArgv(argv).exec).toEqual([
          'exec',
          '/',
          '-',
          '-',
          '-',
          MERGED,
          TOOLS.env,
          TOOLS.prlimit,
          TOOLS.unshare,
          'x',
          ...args,
        ]);
      }),
      { numRuns: 100 },
    );
  });
});

describe('hostLocation', () => {
  // Imports are copied here (the context names no import sources); the cache is an overlay.
  const spec = baseSpec({
    workspacePath: '/workspace',
    imports: [
      { source: '/h/src', destination: '/src' },
      { source: '/h/inner', destination: '/opt/tools/inner' },
    ],
    caches: [{ source: '/h/tools', destination: '/opt/tools' }],
  });
  const layout = scratchLayout(spec.scratch);
  const ROOT = spec.root;
  const CACHE0 = `${SCRATCH}/overlay/cache-0-upper`;

  it.each([
    ['/workspace', 'staged', undefined, `${SCRATCH}/workspace`, ''],
    ['/workspace/out/bin', 'staged', undefined, `${SCRATCH}/workspace`, 'out/bin'],
    ['/src/a', 'staged', undefined, `${SCRATCH}/imports/0`, 'a'],
    ['/opt/tools/x', 'staged', '/h/tools', CACHE0, 'x'],
    ['/opt/tools/inner/y', 'staged', undefined, `${SCRATCH}/imports/1`, 'y'], // longest match wins
    ['/opt/tools/innerx', 'staged', '/h/tools', CACHE0, 'innerx'],
    ['/workspace2/a', 'rootfs', ROOT, `${SCRATCH}/overlay/upper`, 'workspace2/a'],
    ['/etc/resolv.conf', 'rootfs', ROOT, `${SCRATCH}/overlay/upper`, 'etc/resolv.conf'],
    ['/', 'rootfs', ROOT, `${SCRATCH}/overlay/upper`, ''],
  ] as const)('%s -> %s, lower %s, dir %s, rel %j', (cellPath, base, lower, dir, rel) => {
    expect(hostLocation(spec, layout, cellPath)).toStrictEqual({ base, lower, dir, rel });
  });

  it.each([
    ['/workspace', 'rootfs', ROOT, `${SCRATCH}/overlay/upper`, 'workspace'],
    ['/src', 'rootfs', ROOT, `${SCRATCH}/overlay/upper`, 'src'],
    ['/opt/tools', 'rootfs', ROOT, `${SCRATCH}/overlay/upper`, 'opt/tools'],
    ['/opt/tools/inner', 'staged', '/h/tools', CACHE0, 'inner'],
    ['/workspace/sub', 'staged', undefined, `${SCRATCH}/workspace`, 'sub'],
  ] as const)(
    'a mount point %s lives in what is mounted below it: %s, lower %s, dir %s, rel %j',
    (cellPath, base, lower, dir, rel) => {
      expect(hostLocation(spec, layout, cellPath, true)).toStrictEqual({ base, lower, dir, rel });
    },
  );

  it('does not depend on the order of the mounts for the longest match', () => {
    const reordered = baseSpec({
      imports: [{ source: '/h/tools', destination: '/opt/tools' }],
      caches: [{ source: '/h/inner', destination: '/opt/tools/inner' }],
    });
    expect(hostLocation(reordered, scratchLayout(reordered.scratch), '/opt/tools/inner/z')).toStrictEqual({
      base: 'staged',
      lower: '/h/inner',
      dir: CACHE0,
      rel: 'z',
    });
    expect(hostLocation(reordered, scratchLayout(reordered.scratch), '/opt/tools/z')).toStrictEqual({
      base: 'staged',
      lower: undefined,
      dir: `${SCRATCH}/imports/0`,
      rel: 'z',
    });
  });

  describe('an overlay workspace', () => {
    const ws = baseSpec({ workspaceSeed: { kind: 'snapshot', path: '/home/u/project' } });
    const wsLayout = scratchLayout(ws.scratch);

    it('has the seed as its lower and its own upper as the layer new components go to', () => {
      expect(hostLocation(ws, wsLayout, '/workspace/out/bin')).toStrictEqual({
        base: 'staged',
        lower: '/home/u/project',
        dir: `${SCRATCH}/overlay/workspace-upper`,
        rel: 'out/bin',
      });
      expect(hostLocation(ws, wsLayout, '/workspace')).toStrictEqual({
        base: 'staged',
        lower: '/home/u/project',
        dir: `${SCRATCH}/overlay/workspace-upper`,
        rel: '',
      });
      expect(hostLocation(ws, wsLayout, '/workspace/sub', true)).toStrictEqual({
        base: 'staged',
        lower: '/home/u/project',
        dir: `${SCRATCH}/overlay/workspace-upper`,
        rel: 'sub',
      });
    });

    it('is itself a mount point in the rootfs', () => {
      expect(hostLocation(ws, wsLayout, '/workspace', true)).toStrictEqual({
        base: 'rootfs',
        lower: ROOT,
        dir: `${SCRATCH}/overlay/upper`,
        rel: 'workspace',
      });
    });

    it.each([
      ['empty', { kind: 'empty' }],
      ['archive', { kind: 'archive', path: '/h/ws.tgz' }],
      ["snapshot with ','", { kind: 'snapshot', path: '/h/a,b' }],
      ["snapshot with ':'", { kind: 'snapshot', path: '/h/a:b' }],
    ] as Array<[string, BuildCellSpec['workspaceSeed']]>)(
      'is the staged copy, without a lower, for a %s seed',
      (_what, workspaceSeed) => {
        const copied = baseSpec({ workspaceSeed });
        expect(hostLocation(copied, scratchLayout(copied.scratch), '/workspace/out')).toStrictEqual({
          base: 'staged',
          lower: undefined,
          dir: `${SCRATCH}/workspace`,
          rel: 'out',
        });
      },
    );
  });

  describe('caches', () => {
    it('an overlay cache: the host cache dir is the lower, its upper the layer', () => {
      const c = baseSpec({
        caches: [
          { source: '/h/c0', destination: '/root/.cache' },
          { source: '/h/c1', destination: '/root/.npm' },
        ],
      });
      const l = scratchLayout(c.scratch);
      expect(hostLocation(c, l, '/root/.npm/_cacache')).toStrictEqual({
        base: 'staged',
        lower: '/h/c1',
        dir: `${SCRATCH}/overlay/cache-1-upper`,
        rel: '_cacache',
      });
      expect(hostLocation(c, l, '/root/.cache/pip', true)).toStrictEqual({
        base: 'staged',
        lower: '/h/c0',
        dir: `${SCRATCH}/overlay/cache-0-upper`,
        rel: 'pip',
      });
      expect(hostLocation(c, l, '/root/.cache', true)).toStrictEqual({
        base: 'rootfs',
        lower: ROOT,
        dir: `${SCRATCH}/overlay/upper`,
        rel: 'root/.cache',
      });
    });

    it.each(['/h/c,0', '/h/c:0'])('a copied cache (%s): the staged copy, without a lower', (source) => {
      const c = baseSpec({ caches: [{ source, destination: '/root/.cache' }] });
      expect(hostLocation(c, scratchLayout(c.scratch), '/root/.cache/pip')).toStrictEqual({
        base: 'staged',
        lower: undefined,
        dir: `${SCRATCH}/caches/0`,
        rel: 'pip',
      });
    });
  });

  describe('imports', () => {
    it('a copied import: the staged copy, without a lower', () => {
      const i = baseSpec({ imports: [{ source: '/h/a,b', destination: '/src' }] });
      const plan = planCell(i, ctx({ importKinds: ['dir'], importSources: ['/h/a,b'] }));
      expect(plan.staging.imports).toEqual(['copy']);
      expect(hostLocation(i, plan.layout, '/src/sub', true)).toStrictEqual({
        base: 'staged',
        lower: undefined,
        dir: `${SCRATCH}/imports/0`,
        rel: 'sub',
      });
    });

    // Below a read-only overlay import nothing can be created: hostLocation knows it from the staging.
    it('a read-only overlay import has no writable dir', () => {
      const i = baseSpec({
        imports: [{ source: '/h/src', destination: '/src' }],
        command: { cwd: '/src/sub', executable: 'sh', argv: [] },
      });
      const plan = planCell(i, ctx({ importKinds: ['dir'], importSources: ['/h/src'] }));
      expect(plan.staging.imports).toEqual(['overlay']);
      expect(plan.targets).toContainEqual({ cellPath: '/src/sub', kind: 'dir' });
      const where = hostLocation(i, plan.layout, '/src/sub', true, plan.staging);
      expect(where.base).toBe('staged');
      expect(where.rel).toBe('sub');
      expect(where.dir).toBeUndefined();
    });
  });
});

describe('the nested user namespace of root cells', () => {
  const arm64 = resolveArch('arm64');
  const emulation = (binfmt: 'private' | 'global') => ({
    arch: arm64,
    qemuPath: '/usr/bin/qemu-aarch64-static',
    binfmt,
    ruleName: 'build-cell-x',
  });
  it('enters it after every mount, and registers a private binfmt rule inside it', () => {
    const plan = planCell(baseSpec(), ctx({ nestedUserns: true, emulation: emulation('private') }));
    const names = plan.ops.map((o) => o.op);
    expect(names.slice(-5)).toEqual(['hostname', 'enter-userns', 'wait-map', 'binfmt-mount', 'binfmt-register']);
    expect(plan.ops.find((o) => o.op === 'enter-userns')).toEqual({
      op: 'enter-userns',
      proc: `${plan.layout.merged}/proc`,
      unshare: TOOLS.unshare,
      shell: TOOLS.shell,
    });
  });
  it('registers a global rule before it, as real root', () => {
    const names = planCell(baseSpec(), ctx({ nestedUserns: true, emulation: emulation('global') })).ops.map(
      (o) => o.op,
    );
    expect(names.indexOf('binfmt-register')).toBeLessThan(names.indexOf('enter-userns'));
    expect(names.slice(-3)).toEqual(['hostname', 'enter-userns', 'wait-map']);
  });
  it('is absent for rootless cells (they are in a user namespace already)', () => {
    expect(planCell(baseSpec(), ctx({ rootless: true })).ops.map((o) => o.op)).not.toContain('enter-userns');
  });
});

describe('batchMounts', () => {
  const layout = scratchLayout('/s/cells/c1');
  const root = 'redirect_dir=off,metacopy=off';
  const ops: SetupOp[] = [
    { op: 'overlay', lower: '/img', upper: '/s/u', work: '/s/w', target: layout.merged, options: root },
    { op: 'proc', target: `${layout.merged}/proc` },
    { op: 'bind', source: layout.dev, target: `${layout.merged}/dev` },
    { op: 'bind', source: '/dev/null', target: `${layout.merged}/dev/null` },
    { op: 'devpts', target: `${layout.merged}/dev/pts` },
    {
      op: 'overlay',
      lower: '/h/my ws',
      upper: '/s/wu',
      work: '/s/ww',
      target: `${layout.merged}/workspace`,
      options: root,
    },
    { op: 'overlay-ro', lowers: ['/h/imp', '/s/e'], target: `${layout.merged}/src`, options: root },
    { op: 'bind-ro', source: '/etc/resolv.conf', target: `${layout.merged}/etc/resolv.conf` },
    { op: 'hostname', name: 'h' },
  ];
  it('runs every mount of a root cell, in order, as one mount --all', () => {
    const batched = batchMounts(ops, layout, { rootless: false });
    expect(batched.map((o) => o.op)).toEqual(['mounts', 'hostname']);
    const all = batched[0] as Extract<SetupOp, { op: 'mounts' }>;
    expect(all.entries).toEqual([
      {
        source: 'overlay',
        target: layout.merged,
        type: 'overlay',
        options: 'lowerdir=/img,upperdir=/s/u,workdir=/s/w,redirect_dir=off,metacopy=off',
      },
      { source: 'proc', target: `${layout.merged}/proc`, type: 'proc', options: 'nosuid,nodev,noexec' },
      { source: layout.dev, target: `${layout.merged}/dev`, type: 'none', options: 'bind' },
      { source: '/dev/null', target: `${layout.merged}/dev/null`, type: 'none', options: 'bind' },
      {
        source: 'devpts',
        target: `${layout.merged}/dev/pts`,
        type: 'devpts',
        options: 'newinstance,ptmxmode=0666,mode=0620',
      },
      {
        source: 'overlay',
        target: `${layout.merged}/workspace`,
        type: 'overlay',
        options: 'lowerdir=/h/my ws,upperdir=/s/wu,workdir=/s/ww,redirect_dir=off,metacopy=off',
      },
      {
        source: 'overlay',
        target: `${layout.merged}/src`,
        type: 'overlay',
        options: 'lowerdir=/h/imp:/s/e,redirect_dir=off,metacopy=off',
      },
      { source: '/etc/resolv.conf', target: `${layout.merged}/etc/resolv.conf`, type: 'none', options: 'bind,ro' },
    ]);
    expect(all.file.startsWith(`${layout.scratch}/`)).toBe(true);
  });
  it('keeps the root overlay, proc and devpts as ops of their own without root (the helper has fallbacks for them)', () => {
    const batched = batchMounts(ops, layout, { rootless: true });
    expect(batched.map((o) => o.op)).toEqual(['overlay', 'proc', 'mounts', 'devpts', 'mounts', 'hostname']);
    expect(new Set(batched.filter((o) => o.op === 'mounts').map((o) => (o as { file: string }).file)).size).toBe(2);
  });
  it('writes each overlay with the options the plan gave it (userxattr in a user namespace)', () => {
    const rootless = ops.map((o): SetupOp =>
      o.op === 'overlay' || o.op === 'overlay-ro' ? { ...o, options: 'userxattr' } : o,
    );
    const batched = batchMounts(rootless, layout, { rootless: true });
    const entries = batched.flatMap((o) => (o.op === 'mounts' ? o.entries : []));
    expect(entries.find((e) => e.target.endsWith('/workspace'))!.options).toBe(
      'lowerdir=/h/my ws,upperdir=/s/wu,workdir=/s/ww,userxattr',
    );
    expect(entries.find((e) => e.target.endsWith('/src'))!.options).toBe('lowerdir=/h/imp:/s/e,userxattr');
  });
  it('escapes whitespace and backslashes in fstab fields', () => {
    expect(fstabText([{ source: '/a b\\c', target: '/t\tx', type: 'none', options: 'bind' }])).toBe(
      '/a\\040b\\134c /t\\011x none bind 0 0\n',
    );
  });
});

describe('rootless cells: overlay options and ids', () => {
  const overlays = (plan: CellPlan) =>
    plan.ops.filter(
      (o): o is Extract<SetupOp, { op: 'overlay' | 'overlay-ro' }> => o.op === 'overlay' || o.op === 'overlay-ro',
    );
  const withInputs = () =>
    baseSpec({
      workspaceSeed: { kind: 'snapshot', path: '/h/ws' },
      imports: [{ source: '/h/imp', destination: '/src' }],
      caches: [{ source: '/h/cache', destination: '/root/.cache' }],
    });
  it('mounts every overlay with userxattr (dpkg renames new directories into image directories)', () => {
    const plan = planCell(withInputs(), ctx({ rootless: true, importKinds: ['dir'], importSources: ['/h/imp'] }));
    expect(overlays(plan).map((o) => o.op)).toEqual(['overlay', 'overlay', 'overlay-ro', 'overlay']);
    for (const op of overlays(plan)) expect(op.options).toBe('userxattr');
  });
  it('mounts every overlay of a root cell with redirect_dir and metacopy off', () => {
    const plan = planCell(withInputs(), ctx({ importKinds: ['dir'], importSources: ['/h/imp'] }));
    for (const op of overlays(plan)) expect(op.options).toBe('redirect_dir=off,metacopy=off');
  });
  it('with subordinate ids: gives the files back to the user at the end, and lets apt use its _apt user', () => {
    const plan = planCell(baseSpec(), ctx({ rootless: true, subIds: true }));
    expect(plan.ops.filter((o) => o.op === 'flatten-owners')).toEqual([
      { op: 'flatten-owners', dir: SCRATCH, list: `${SCRATCH}/owners.list` },
    ]);
    expect(plan.files).toEqual([]);
  });
  it('with root alone mapped: apt downloads as root, and there is nothing to give back', () => {
    const plan = planCell(baseSpec(), ctx({ rootless: true }));
    expect(plan.ops.map((o) => o.op)).not.toContain('flatten-owners');
    expect(plan.files.map((f) => f.cellPath)).toEqual(['/etc/apt/apt.conf.d/00build-cell-rootless']);
  });
  it('root cells neither flatten nor configure apt', () => {
    const plan = planCell(baseSpec(), ctx({ subIds: true }));
    expect(plan.ops.map((o) => o.op)).not.toContain('flatten-owners');
    expect(plan.files).toEqual([]);
  });
});
