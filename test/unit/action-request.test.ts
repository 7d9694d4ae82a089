import { describe, expect, it } from 'vitest';
import { parseInputs } from '../../src/action/inputs.js';
import {
  FILE_COMMANDS_CELL_DIR,
  installIdentity,
  managedCacheDir,
  toCellRequest,
} from '../../src/action/inputs-to-request.js';
import { installKey } from '../../src/install/key.js';
import { buildCacheKeys, imageCacheKey } from '../../src/action/cache-keys.js';
import { summaryRows, formatBytes } from '../../src/action/summary.js';
import { resolveArch } from '../../src/emulation/arch.js';
import { validateSpec } from '../../src/cellspec/validate.js';

const env = {
  GITHUB_WORKSPACE: '/ws',
  RUNNER_TEMP: '/tmp/rt',
  GITHUB_SHA: 'abc',
  ACTIONS_RUNTIME_TOKEN: 'secret-token',
  GITHUB_OUTPUT: '/host/out',
  CI: 'true',
};
const inputsOf = (values: Record<string, string>) =>
  parseInputs(
    (name) => (({ image: 'debian:bookworm', run: 'make', ...values }) as Record<string, string>)[name] ?? '',
    env,
  );
const ctx = {
  env,
  runnerTemp: '/tmp/rt',
  fileCommandsDir: '/tmp/rt/build-cell/fc',
  cacheDirs: ['/tmp/rt/build-cell/caches/0_var_cache_apt'],
};

describe('toCellRequest', () => {
  it('builds a valid spec from the inputs', () => {
    const request = toCellRequest(
      inputsOf({ caches: '/var/cache/apt', exports: '/workspace/out:out', env: 'CC=gcc' }),
      ctx,
    );
    const spec = { ...request.spec, root: '/state/images/rootfs/x', scratch: '/state/cells/y' };
    expect(() => validateSpec(spec)).not.toThrow();
    expect(spec.workspaceSeed).toEqual({ kind: 'snapshot', path: '/ws' });
    expect(spec.caches).toEqual([
      { source: '/tmp/rt/build-cell/caches/0_var_cache_apt', destination: '/var/cache/apt' },
      { source: '/tmp/rt/build-cell/fc', destination: FILE_COMMANDS_CELL_DIR },
    ]);
    expect(spec.exports).toEqual([{ source: '/workspace/out', destination: '/ws/out' }]);
    expect(spec.command).toEqual({ cwd: '/workspace', executable: '/bin/sh', argv: ['-e', '/.build-cell/run.sh'] });
    expect(spec.script).toBe('make');
    expect(request.inheritImageEnv).toBe(true);
  });

  it('passes curated GitHub variables, remaps file commands, and never passes runtime tokens', () => {
    const spec = toCellRequest(inputsOf({ env: 'CC=gcc\nGITHUB_SHA=override' }), ctx).spec;
    const env2 = Object.fromEntries(spec.env);
    expect(env2.CC).toBe('gcc');
    expect(env2.GITHUB_SHA).toBe('override');
    expect(env2.CI).toBe('true');
    expect(env2.GITHUB_WORKSPACE).toBe('/workspace');
    expect(env2.GITHUB_OUTPUT).toBe(`${FILE_COMMANDS_CELL_DIR}/output`);
    expect(env2.GITHUB_STEP_SUMMARY).toBe(`${FILE_COMMANDS_CELL_DIR}/step_summary`);
    expect(env2.ACTIONS_RUNTIME_TOKEN).toBeUndefined();
  });

  it('runs bash scripts with --noprofile --norc -eo pipefail, and command lines as argv', () => {
    expect(toCellRequest(inputsOf({ shell: 'bash' }), ctx).spec.command).toEqual({
      cwd: '/workspace',
      executable: 'bash',
      argv: ['--noprofile', '--norc', '-eo', 'pipefail', '/.build-cell/run.sh'],
    });
    const argv = toCellRequest(inputsOf({ run: '', command: 'make\n-j4\n' }), ctx).spec;
    expect(argv.command).toEqual({ cwd: '/workspace', executable: 'make', argv: ['-j4'] });
    expect(argv.script).toBeUndefined();
  });

  it('uses archives and empty workspaces', () => {
    expect(toCellRequest(inputsOf({ workspace: 'src.tgz' }), ctx).spec.workspaceSeed).toEqual({
      kind: 'archive',
      path: '/ws/src.tgz',
    });
    expect(toCellRequest(inputsOf({ workspace: 'none' }), ctx).spec.workspaceSeed).toEqual({ kind: 'empty' });
  });

  it('names managed cache directories after their cell path', () => {
    expect(managedCacheDir('/t', 2, '/root/.cache/pip')).toBe('/t/build-cell/caches/2_root_.cache_pip');
  });
});

describe('cache keys', () => {
  const arm = resolveArch('arm');
  it('keys images by architecture and digest', () => {
    expect(imageCacheKey(arm, `sha256:${'a'.repeat(64)}`)).toBe(`build-cell-image-v3-arm-v7-${'a'.repeat(64)}`);
    expect(imageCacheKey(resolveArch('arm64'), 'sha256:1')).not.toBe(imageCacheKey(resolveArch('amd64'), 'sha256:1'));
  });
  it('rolls build-cache keys per run and restores by prefix', () => {
    const base = { arch: arm, image: 'docker://debian:bookworm', cellPaths: ['/var/cache/apt'], userKey: 'lock-abc' };
    const a = buildCacheKeys({ ...base, runId: '10', runAttempt: '1' });
    const b = buildCacheKeys({ ...base, runId: '11', runAttempt: '1' });
    expect(a.primary).not.toBe(b.primary);
    expect(a.restoreKeys).toEqual(b.restoreKeys);
    expect(a.primary.startsWith(a.restoreKeys[0]!)).toBe(true);
    expect(buildCacheKeys({ ...base, userKey: 'other', runId: '10' }).restoreKeys).not.toEqual(a.restoreKeys);
    expect(buildCacheKeys({ ...base, arch: resolveArch('amd64'), runId: '10' }).restoreKeys).not.toEqual(a.restoreKeys);
  });
});

describe('summary', () => {
  it('shows every phase, the digest and the outcome', () => {
    const rows = summaryRows({
      image: 'debian:bookworm',
      digest: 'sha256:x',
      arch: 'arm64',
      emulated: true,
      imageCacheHit: true,
      exitCode: 137,
      signal: 9,
      timings: { run: 1500, stage: 12 },
      exports: [],
    });
    const table = Object.fromEntries(rows.map(([k, v]) => [k, v]));
    expect(table.arch).toBe('arm64 (emulated with qemu)');
    expect(table['time: run']).toBe('1.5 s');
    expect(table['time: stage']).toBe('12 ms');
    expect(table['time: upload']).toBe('–');
    expect(table['exit code']).toBe('137 (killed by signal 9)');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(table.emulation).toBeUndefined();
  });

  it('records the emulation: qemu and the CPU model with where it came from', () => {
    const emulation = '/usr/bin/qemu-aarch64-static, CPU cortex-a53 (qemu-cpu)';
    const rows = summaryRows({
      image: 'debian',
      arch: 'arm64',
      emulated: true,
      emulation,
      imageCacheHit: false,
      exitCode: 0,
      timings: {},
      exports: [],
    });
    expect(Object.fromEntries(rows.map(([k, v]) => [k, v])).emulation).toBe(emulation);
  });

  it('says native or qemu and why, and the qemu build chosen', () => {
    const rows = summaryRows({
      image: 'debian',
      arch: '386',
      emulated: true,
      decision: '386: emulated (this kernel cannot run 32-bit x86 natively)',
      qemu: '7.2 (Debian qemu-user-static 1:7.2+dfsg-7+deb12u18+b3)',
      imageCacheHit: false,
      exitCode: 0,
      timings: {},
      exports: [],
    });
    const table = Object.fromEntries(rows.map(([k, v]) => [k, v]));
    expect(table['native or qemu']).toBe('386: emulated (this kernel cannot run 32-bit x86 natively)');
    expect(table['qemu build']).toMatch(/^7\.2 /);
  });
});

describe('emulation handed to the engine', () => {
  it('passes the mode always, and the resolved qemu build only when the qemu input chose one', () => {
    expect(toCellRequest({ ...inputsOf({}), emulation: 'qemu' }, ctx).emulation).toBe('qemu');
    expect('qemu' in toCellRequest(inputsOf({}), ctx)).toBe(false);
    const qemu = { path: '/opt/hostedtoolcache/qemu-i386-static/x/qemu-i386-static', choice: '7.2' };
    expect(toCellRequest(inputsOf({}), { ...ctx, qemu }).qemu).toEqual(qemu);
  });
});

describe('qemu-cpu handed to the engine', () => {
  it('goes into the cell request only when given', () => {
    expect(toCellRequest({ ...inputsOf({}), qemuCpu: 'cortex-a53' }, ctx).qemuCpu).toBe('cortex-a53');
    expect('qemuCpu' in toCellRequest(inputsOf({}), ctx)).toBe(false);
  });
});

describe('pull policy handed to the engine', () => {
  it('re-resolves tags (unless the action already did), never digest pins', () => {
    expect(toCellRequest(inputsOf({}), ctx).image.pull).toBe('always');
    expect(toCellRequest(inputsOf({}), { ...ctx, digest: `sha256:${'1'.repeat(64)}` }).image.digest).toBe(
      `sha256:${'1'.repeat(64)}`,
    );
    expect(toCellRequest(inputsOf({ image: `debian@sha256:${'a'.repeat(64)}` }), ctx).image.pull).toBe('missing');
  });
});

describe('one install key for the store and the Actions cache', () => {
  const digest = `sha256:${'a'.repeat(64)}`;
  it.each<Record<string, string>>([
    {},
    { env: 'CC=gcc\nCFLAGS=-O2', 'install-key': 'k1' },
    { shell: 'bash', env: 'B=1\nA=2' },
    { arch: 'arm64', 'install-key': 'x' },
  ])('the key the engine makes from the request is the key the Actions cache restores (%j)', (values) => {
    const inputs = inputsOf({ install: 'apt-get update && apt-get install -y gcc', ...values });
    const request = toCellRequest(inputs, ctx);
    const fromRequest = installKey(request.install!, inputs.arch, digest);
    expect(installKey(installIdentity(inputs)!, inputs.arch, digest)).toBe(fromRequest);
    // and it changes with every part it is made of
    const other = inputsOf({ install: 'apt-get install -y make', ...values });
    expect(installKey(toCellRequest(other, ctx).install!, inputs.arch, digest)).not.toBe(fromRequest);
  });
  it('is undefined without an install step', () => {
    expect(installIdentity(inputsOf({}))).toBeUndefined();
  });
});
