/**
 * The bundled action (dist/main.js + dist/post.js) run as the GitHub runner runs it, against
 * a real Actions results service backed by Azurite, a real registry, and real cells.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cellOutput, runAction, type RunActionOptions } from '../helpers/action-harness.js';
import { expectHostUnchanged, removeDir, snapshotHost, strayProcesses, tempDir } from '../helpers/cli.js';
import { busyboxLayout, DEBIAN_TAG, debianLayout, node24Binary } from '../helpers/fixtures.js';
import { pushLayout, startRegistry, startRegistryWithAuth, type Registry } from '../helpers/registry.js';
import { startAzurite, startResultsService } from '../helpers/results-service.js';
import { createUser, layoutForUser, removeUser } from '../helpers/users.js';
import { ensureDeb, startSource } from '../helpers/tools-source.js';
import { kernelHasPrivateBinfmt } from '../../src/emulation/binfmt.js';
import { pinFor, qemuPinFor } from '../../src/tools/pinned.js';

let layout: string;
let node24: string;
let azurite: Awaited<ReturnType<typeof startAzurite>>;
let service: Awaited<ReturnType<typeof startResultsService>>;
let registry: Registry;
const temps: string[] = [];

const fresh = (prefix: string) => {
  const dir = tempDir(prefix);
  temps.push(dir);
  return dir;
};

/** Files under `dir` that contain any of `needles` (grep exits 1 when there are none). */
function filesContaining(dir: string, needles: string[]): string[] {
  try {
    return execFileSync('grep', ['-rlaF', ...needles.flatMap((n) => ['-e', n]), dir], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    })
      .trim()
      .split('\n');
  } catch (error) {
    if ((error as { status?: number }).status === 1) return [];
    throw error;
  }
}

/** Run the action on Node 24 with the results service, a fresh state dir unless given. */
async function action(inputs: Record<string, string>, options: RunActionOptions = {}) {
  const state = inputs['state-dir'] ?? fresh('bc-action-state-');
  const before = snapshotHost();
  const run = await runAction({
    node: node24,
    results: { url: service.url },
    ...options,
    inputs: { 'state-dir': state, ...inputs },
  });
  expectHostUnchanged(before, state);
  return { ...run, state };
}

beforeAll(async () => {
  [layout, node24] = await Promise.all([busyboxLayout(), node24Binary()]);
  azurite = await startAzurite();
  service = await startResultsService(azurite.blobEndpoint);
  registry = await startRegistry();
  await pushLayout(layout, 'multi', registry.host, 'busybox', 'multi');
});

afterAll(async () => {
  await service?.stop();
  await azurite?.stop();
  await registry?.stop();
  for (const dir of temps) await removeDir(dir);
});

const SCRIPT = [
  'cat hello.txt',
  'mkdir -p out && echo "built on $(uname -m)" > out/result.txt',
  'echo "machine=$(uname -m)" >> "$GITHUB_OUTPUT"',
  'echo "FROM_CELL=yes" >> "$GITHUB_ENV"',
  'echo "### written in the cell" >> "$GITHUB_STEP_SUMMARY"',
  'n=$(cat /var/cache/thing/n 2>/dev/null || echo 0); echo $((n + 1)) > /var/cache/thing/n; echo "cache count $((n + 1))"',
].join('\n');

describe('the action', () => {
  it('runs a cell, plumbs outputs, env and summary, exports, uploads, and caches image and build caches', async () => {
    const workspace = fresh('bc-action-ws-');
    writeFileSync(join(workspace, 'hello.txt'), 'hello from the workspace\n');
    const inputs = {
      image: `oci:${layout}:amd64`,
      run: SCRIPT,
      caches: '/var/cache/thing',
      exports: '/workspace/out:out',
      'artifact-name': 'result',
      'forward-env': 'FROM_CELL',
    };
    // GitHub's hosted runners all use the same RUNNER_TEMP path (part of the cache version).
    const runnerTemp = fresh('bc-action-rt-');
    const first = await action(inputs, { workspace, runnerTemp, runId: '100' });
    expect(first.mainCode, first.stdout + first.stderr).toBe(0);
    expect(first.postCode).toBe(0);
    expect(first.stdout).toContain('hello from the workspace');
    expect(first.stdout).toContain('cache count 1');
    expect(first.outputs).toMatchObject({
      'exit-code': '0',
      machine: 'x86_64',
      'image-cache-hit': 'false',
      'cache-hit': 'false',
    });
    expect(first.outputs['image-digest']).toMatch(/^sha256:[a-f0-9]{64}$/);
    expect(first.outputs['artifact-id']).toMatch(/^\d+$/);
    expect(first.env.FROM_CELL).toBe('yes');
    expect(first.summary).toContain('written in the cell');
    expect(first.summary).toMatch(/time: run/);
    expect(first.summary).toContain('/workspace/out');
    expect(first.groups).toEqual(
      expect.arrayContaining(['build-cell configuration', 'Tools', 'Image cache', 'Run', 'Artifact', 'Caches: save']),
    );
    expect(readFileSync(join(workspace, 'out', 'result.txt'), 'utf8')).toBe('built on x86_64\n');
    const artifact = service.artifacts().find((a) => a.name === 'result')!;
    expect(artifact.finalized).toBe(true);
    const zip = join(fresh('bc-action-zip-'), 'a.zip');
    writeFileSync(zip, await service.readBlob(artifact.blobName));
    expect(execFileSync('unzip', ['-p', zip, 'out/result.txt'], { encoding: 'utf8' })).toBe('built on x86_64\n');
    expect(service.caches().map((c) => c.key)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^build-cell-image-v3-amd64-/),
        expect.stringMatching(/^build-cell-caches-v1-amd64-/),
      ]),
    );

    // A new machine (empty state dir, empty runner temp) in a later run: both caches restore.
    await removeDir(runnerTemp);
    mkdirSync(runnerTemp);
    const workspace2 = fresh('bc-action-ws-');
    writeFileSync(join(workspace2, 'hello.txt'), 'again\n');
    const second = await action(
      { ...inputs, 'artifact-name': 'result-2' },
      { workspace: workspace2, runnerTemp, runId: '101' },
    );
    expect(second.mainCode, second.stdout + second.stderr).toBe(0);
    expect(second.outputs).toMatchObject({
      'image-cache-hit': 'true',
      'cache-hit': 'true',
      'image-digest': first.outputs['image-digest'],
    });
    expect(second.stdout).toContain('cache count 2');
  });

  it('runs a foreign architecture from a registry, re-resolving the tag', async () => {
    const workspace = fresh('bc-action-ws-');
    const run = await action(
      {
        image: `${registry.host}/busybox:multi`,
        arch: 'arm64',
        'tls-verify': 'false',
        run: 'echo "machine=$(uname -m)" >> "$GITHUB_OUTPUT"',
        'image-cache': 'false',
      },
      { workspace },
    );
    expect(run.mainCode, run.stdout + run.stderr).toBe(0);
    expect(run.outputs.machine).toBe('aarch64');
    expect(run.summary).toContain('emulated');
  });

  it('with store-max-size, removes the least recently used images after the run, never the one it used', async () => {
    const state = fresh('bc-action-state-');
    const first = await action({
      image: `oci:${layout}:amd64`,
      run: 'true',
      'image-cache': 'false',
      'state-dir': state,
    });
    expect(first.mainCode, first.stdout + first.stderr).toBe(0);
    const capped = await action({
      image: `oci:${layout}:arm64`,
      arch: 'arm64',
      run: 'true',
      'image-cache': 'false',
      'state-dir': state,
      'store-max-size': '1M',
    });
    expect(capped.mainCode, capped.stdout + capped.stderr).toBe(0);
    expect(capped.stdout).toMatch(/store cap 1 MB: images \d+ MB -> \d+ MB, removed oci:.*:amd64 \(amd64/);
    expect(capped.summary).toContain('store cap');
    expect(readdirSync(join(state, 'images', 'rootfs'))).toEqual([expect.stringMatching(/^arm64-/)]);
    const bad = await action({ image: `oci:${layout}:amd64`, run: 'true', 'store-max-size': 'half' });
    expect(bad.mainCode).not.toBe(0);
    expect(bad.stdout + bad.stderr).toMatch(/store-max-size: must be a size of at least 1M/);
  });

  it('emulates the qemu-cpu model asked for, says so in the summary, and rejects one qemu does not know before anything runs', async () => {
    const ok = await action({
      image: `oci:${layout}:arm64`,
      arch: 'arm64',
      'qemu-cpu': 'cortex-a53',
      run: 'echo "cpu=$QEMU_CPU" >> "$GITHUB_OUTPUT"',
      'image-cache': 'false',
    });
    expect(ok.mainCode, ok.stdout + ok.stderr).toBe(0);
    expect(ok.outputs.cpu).toBe('cortex-a53');
    expect(ok.summary).toMatch(/emulation.*qemu-aarch64-static, CPU cortex-a53 \(qemu-cpu\)/);
    const state = join(fresh('bc-action-cpu-'), 'state');
    const bad = await action({
      image: `oci:${layout}:arm64`,
      arch: 'arm64',
      'qemu-cpu': 'pentium',
      run: 'true',
      'image-cache': 'false',
      'state-dir': state,
    });
    expect(bad.mainCode).toBe(1);
    expect(bad.errors.join('\n')).toMatch(
      /qemu-cpu: "pentium" is not a CPU model of arm64 .*valid are, for example, max/,
    );
    expect(existsSync(state)).toBe(false);
    expect(bad.groups).not.toContain('Run');
    const native = await action({
      image: `oci:${layout}:amd64`,
      'qemu-cpu': 'cortex-a53',
      run: 'echo "cpu=${QEMU_CPU:-unset}" >> "$GITHUB_OUTPUT"',
      'image-cache': 'false',
    });
    expect(native.mainCode, native.stdout + native.stderr).toBe(0);
    expect(native.outputs.cpu).toBe('unset');
    expect(native.warnings.join('\n')).toMatch(/qemu-cpu cortex-a53 is not used: amd64 runs natively/);
  });

  it.skipIf(process.arch !== 'x64' || !kernelHasPrivateBinfmt())(
    "emulation: qemu runs the host's own arch under qemu with the CPU model asked for, and says why in the summary",
    async () => {
      const run = await action({
        image: `oci:${layout}:amd64`,
        emulation: 'qemu',
        'qemu-cpu': 'qemu64',
        run: 'echo "cpu=$QEMU_CPU machine=$(uname -m)" >> "$GITHUB_OUTPUT"',
        'image-cache': 'false',
      });
      expect(run.mainCode, run.stdout + run.stderr).toBe(0);
      expect(run.outputs.cpu).toBe('qemu64 machine=x86_64');
      expect(run.warnings.join('\n')).not.toMatch(/is not used/);
      expect(run.summary).toMatch(/native or qemu.*amd64: emulated \(emulation: qemu asks for qemu\)/);
      expect(run.stdout).toContain('emulation: amd64: emulated (emulation: qemu asks for qemu)');
      const bad = await action({ image: `oci:${layout}:amd64`, emulation: 'always', run: 'true' });
      expect(bad.mainCode).toBe(1);
      expect(bad.errors.join('\n')).toMatch(/emulation: must be auto .* or qemu/);
    },
  );

  it('fails the step with the exit code, and still saves the build caches', async () => {
    const run = await action(
      {
        image: `oci:${layout}:amd64`,
        run: 'echo partial > /var/cache/failing/p\nexit 3',
        caches: '/var/cache/failing',
        'image-cache': 'false',
        privilege: 'root',
      },
      { runId: '200' },
    );
    expect(run.mainCode).toBe(1);
    expect(run.outputs['exit-code']).toBe('3');
    expect(run.errors.join('\n')).toMatch(/exited with 3/);
    const saved = service.caches().find((c) => /^build-cell-caches-v1-amd64-.*-200-1$/.test(c.key));
    expect(saved).toBeDefined();
  });

  it('passes command lines as argv and runs bash scripts with pipefail', async () => {
    const workspace = fresh('bc-action-ws-');
    const argv = await action(
      {
        image: `oci:${layout}:amd64`,
        run: '',
        command: 'sh\n-c\necho "$0 $1" > out.txt\nfirst word\nsecond',
        exports: '/workspace/out.txt:out.txt',
        'image-cache': 'false',
      },
      { workspace },
    );
    expect(argv.mainCode, argv.stdout + argv.stderr).toBe(0);
    expect(readFileSync(join(workspace, 'out.txt'), 'utf8')).toBe('first word second\n');
    const bash = await action({
      image: `oci:${layout}:amd64`,
      shell: 'bash',
      run: 'false | true\necho not reached',
      'image-cache': 'false',
    });
    // The busybox image has no bash: the error says so (a Debian image would run it with pipefail).
    expect(bash.mainCode).toBe(1);
    expect(bash.stdout + bash.stderr).toMatch(/bash: No such file or directory/);
  });

  it('rejects bad input before anything runs, naming the input', async () => {
    const state = join(fresh('bc-action-bad-'), 'state');
    const run = await action({ image: `oci:${layout}:amd64`, run: 'true', memory: 'lots', 'state-dir': state });
    expect(run.mainCode).toBe(1);
    expect(run.errors.join('\n')).toMatch(/memory: must be a size/);
    expect(existsSync(state)).toBe(false);
    expect(run.groups).not.toContain('Run');
  });

  it('keeps secrets out of logs, summary, state and the files it leaves', async () => {
    const password = 'p4ss-w0rd-xyz-9';
    const secret = 'super-secret-value-123';
    const authRegistry = await startRegistryWithAuth('ci-user', password);
    try {
      await pushLayout(layout, 'amd64', authRegistry.host, 'private/busybox', 'v1', authRegistry.credentials);
      const run = await action(
        {
          image: `${authRegistry.host}/private/busybox:v1`,
          'tls-verify': 'false',
          'registry-username': 'ci-user',
          'registry-password': password,
          env: `TOKEN=${secret}`,
          run: 'test "${#TOKEN}" = 22 && echo token-ok',
          cleanup: 'never',
        },
        { keepTemp: true },
      );
      expect(run.mainCode, run.stdout + run.stderr).toBe(0);
      expect(run.stdout).toContain('token-ok');
      expect(run.masks).toEqual(expect.arrayContaining([password, secret]));
      // ::add-mask:: lines are how the runner learns what to mask; it never prints them.
      const logs = (text: string) =>
        text
          .split('\n')
          .filter((line) => !line.startsWith('::add-mask::'))
          .join('\n');
      for (const text of [
        logs(run.stdout),
        logs(run.stderr),
        run.summary,
        JSON.stringify(run.state),
        JSON.stringify(run.outputs),
      ]) {
        expect(text).not.toContain(password);
        expect(text).not.toContain(secret);
      }
      // Nothing on disk holds them: not the state dir (store and the preserved scratch), not the runner temp.
      for (const dir of [run.state, run.runnerTemp]) expect(filesContaining(dir, [password, secret])).toEqual([]);
      await run.cleanup();
    } finally {
      await authRegistry.stop();
    }
  });

  it('runs the install step once, saves it, and a fresh runner restores it without running it', async () => {
    const inputs = {
      image: `oci:${layout}:amd64`,
      install: 'echo INSTALL-RAN; echo "tool v1" > /tool',
      'install-key': 'k1',
      run: 'cat /tool; echo "has=$(cat /tool)" >> "$GITHUB_OUTPUT"',
    };
    // GitHub's hosted runners all use the same RUNNER_TEMP path (part of the cache version).
    const runnerTemp = fresh('bc-action-rt-');
    const first = await action(inputs, { runId: '300', runnerTemp });
    expect(first.mainCode, first.stdout + first.stderr).toBe(0);
    expect(first.stdout).toContain('INSTALL-RAN');
    expect(first.outputs).toMatchObject({ 'install-cache-hit': 'false', has: 'tool v1' });
    expect(first.outputs['install-digest']).toMatch(/^sha256:[a-f0-9]{64}$/);
    expect(first.outputs['install-digest']).not.toBe(first.outputs['image-digest']);
    expect(first.summary).toMatch(/install step.*ran in \d+\.\d s, saved to the Actions cache/);
    expect(service.caches().map((c) => c.key)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^build-cell-install-v3-amd64-[a-f0-9]{16}-[a-f0-9]{32}$/)]),
    );

    // A fresh runner: new state dir and tool cache (action() gives each run new ones), empty runner temp.
    await removeDir(runnerTemp);
    mkdirSync(runnerTemp);
    const second = await action(inputs, { runId: '301', runnerTemp });
    expect(second.mainCode, second.stdout + second.stderr).toBe(0);
    expect(second.stdout).not.toContain('INSTALL-RAN');
    expect(second.outputs).toMatchObject({
      'install-cache-hit': 'true',
      has: 'tool v1',
      'install-digest': first.outputs['install-digest'],
      'image-digest': first.outputs['image-digest'],
    });
    expect(second.stdout).toContain('install step restored from the Actions cache');
    expect(second.summary).toMatch(/install step.*restored from the Actions cache/);

    // Another key: the install runs again; a failing install fails the step and caches nothing.
    const failed = await action(
      { ...inputs, install: 'echo nope; exit 9', 'install-key': 'k2' },
      { runId: '302', runnerTemp },
    );
    expect(failed.mainCode).toBe(1);
    expect(failed.outputs['exit-code']).toBe('125');
    expect(failed.errors.join('\n')).toMatch(/install step failed: the install script exited with 9/);
    expect(failed.stdout).not.toContain('tool v1');
  });

  it('writes the workspace back, with a build cache inside the workspace restored and saved through the Actions cache', async () => {
    const inputs = {
      image: `oci:${layout}:amd64`,
      'write-back': 'true',
      caches: '/workspace/target',
      'image-cache': 'false',
      run: 'n=$(cat target/count 2>/dev/null || echo 0); echo $((n + 1)) > target/count; mkdir -p out && echo "build $((n + 1))" > out/result; rm -f stale',
    };
    const runnerTemp = fresh('bc-action-rt-');
    const workspace = fresh('bc-action-ws-');
    writeFileSync(join(workspace, 'stale'), 's');
    const first = await action(inputs, { workspace, runnerTemp, runId: '400' });
    expect(first.mainCode, first.stdout + first.stderr).toBe(0);
    expect(readFileSync(join(workspace, 'out', 'result'), 'utf8')).toBe('build 1\n');
    expect(existsSync(join(workspace, 'stale'))).toBe(false);
    expect(existsSync(join(workspace, 'target'))).toBe(false);
    expect(first.summary).toMatch(/write-back.*\d+ written, 1 deleted/);
    await removeDir(runnerTemp);
    mkdirSync(runnerTemp);
    const second = await action(inputs, { workspace, runnerTemp, runId: '401' });
    expect(second.mainCode, second.stdout + second.stderr).toBe(0);
    expect(second.outputs['cache-hit']).toBe('true');
    expect(readFileSync(join(workspace, 'out', 'result'), 'utf8')).toBe('build 2\n');
    const refused = await action({ ...inputs, workspace: 'none' }, { runId: '402' });
    expect(refused.mainCode).toBe(1);
    expect(refused.errors.join('\n')).toMatch(
      /write-back: needs a directory workspace to write back to, and workspace is none/,
    );
  });

  it('runs later steps in the session with shell: build-cell {0}: state, env, outputs, write-back, exit codes; post exports and uploads', async () => {
    const workspace = fresh('bc-action-ws-');
    writeFileSync(join(workspace, 'hello.txt'), 'hi\n');
    // A variable of the machine (the environment the runner process itself started with, here
    // this test's): never the cell's. The harness passes this process's environment on to steps.
    const machine = readFileSync('/proc/self/environ', 'utf8')
      .split('\0')
      .map((e) => e.split('=')[0]!)
      .find((n) => /^(LANG|LC_ALL|TERM|PYENV_ROOT|DEBIAN_FRONTEND)$/.test(n));
    const run = await action(
      {
        image: `oci:${layout}:amd64`,
        session: 'true',
        caches: '/var/cache/c',
        exports: '/workspace/out:out',
        'artifact-name': 'session-out',
        'forward-env': 'FROM_*',
        run: 'echo main > /root/state; echo "first=1" >> "$GITHUB_OUTPUT"; echo "FROM_MAIN=m" >> "$GITHUB_ENV"',
      },
      {
        workspace,
        runId: '500',
        steps: [
          {
            shell: 'build-cell {0}',
            env: { MY_VAR: 'hello from env:' },
            run: [
              'cat /root/state',
              'echo "MY_VAR=$MY_VAR FROM_MAIN=$FROM_MAIN"',
              'echo "v=$(cat /root/state)" >> "$GITHUB_OUTPUT"',
              'echo step1 >> /root/state',
              'mkdir -p out && echo built > out/file',
              'echo "FROM_STEP=yes" >> "$GITHUB_ENV"',
              'echo x > /var/cache/c/f',
              'echo "### from a session step" >> "$GITHUB_STEP_SUMMARY"',
            ].join('\n'),
          },
          { host: (ws) => writeFileSync(join(ws, 'from-host'), 'h\n') },
          {
            shell: 'build-cell {0}',
            run: [
              'cat from-host',
              'echo "FROM_STEP=$FROM_STEP"',
              'echo "path=$PATH"',
              'echo "tokens=$(env | grep -c "^ACTIONS_" || true)"',
              `echo "host-only=\${${machine ?? 'NO_SUCH_VARIABLE'}:-absent}"`,
              'cat /root/state',
              'test -f /var/cache/c/f && echo cache-kept',
              'exit 3',
            ].join('\n'),
          },
        ],
      },
    );
    expect(run.mainCode, run.stdout + run.stderr).toBe(0);
    expect(run.outputs.first).toBe('1');
    const [one, , two] = run.steps;
    expect(one!.code, one!.stdout + one!.stderr).toBe(0);
    expect(one!.stdout).toContain('main\nMY_VAR=hello from env: FROM_MAIN=m\n');
    expect(one!.outputs).toEqual({ v: 'main' });
    expect(one!.summary).toContain('from a session step');
    expect(readFileSync(join(workspace, 'out', 'file'), 'utf8')).toBe('built\n');
    expect(two!.code).toBe(3);
    expect(two!.stdout).toContain('h\nFROM_STEP=yes\n');
    expect(two!.stdout).toContain('tokens=0\n');
    expect(two!.stdout).toContain('host-only=absent\n');
    // The image's PATH, not the host's (nor the shim's directory).
    const cellPath = /^path=(.*)$/m.exec(two!.stdout)![1]!;
    expect(cellPath.split(':')).not.toContain(join(run.runnerTemp, 'build-cell', 'bin'));
    expect(cellPath).toBe('/usr/sbin:/usr/bin:/sbin:/bin');
    expect(two!.stdout).toContain('main\nstep1\ncache-kept\n');
    // post: the session ends, its exports become the artifact.
    expect(run.postCode, run.stdout + run.stderr).toBe(0);
    const artifact = service.artifacts().find((a) => a.name === 'session-out');
    expect(artifact?.finalized).toBe(true);
    expect(readdirSync(join(run.state, 'sessions'))).toEqual([]);
  });

  it('a session step without a session, or with an unknown name, says how to start one', async () => {
    const run = await action(
      { image: `oci:${layout}:amd64`, session: 'arm', run: 'true' },
      {
        steps: [
          { shell: 'build-cell --session other {0}', run: 'true' },
          { shell: 'build-cell {0}', run: 'true' },
        ],
      },
    );
    const [unknown, none] = run.steps;
    expect(unknown!.code).toBe(125);
    expect(unknown!.stderr).toMatch(
      /there is no build-cell session named "other" \(running: arm\): start one in an earlier step of this job: `uses: metalor\/build-cell@v1` with `session: true`/,
    );
    expect(none!.code).toBe(125);
    expect(none!.stderr).toMatch(/no build-cell session is running here \(running: arm\)/);
  });

  it('a named session on arm64: a cancelled step (timeout-minutes) stops its cell, and the session stays usable', async () => {
    const workspace = fresh('bc-action-ws-');
    const run = await action(
      { image: `oci:${layout}:arm64`, arch: 'arm64', session: 'arm', run: 'echo arm > /root/who' },
      {
        workspace,
        steps: [
          { shell: 'build-cell --session arm {0}', run: 'cat /root/who; uname -m' },
          { shell: 'build-cell --session arm {0}', run: 'echo started; sleep 300', signalAfterMs: 2000 },
          { shell: 'build-cell --session arm {0}', run: 'cat /root/who; echo still-usable' },
        ],
      },
    );
    const [first, cancelled, after] = run.steps;
    expect(first!.code, first!.stderr).toBe(0);
    expect(cellOutput(first!.stdout)).toBe('arm\naarch64\n');
    expect(cancelled!.stdout).toContain('started');
    expect(cancelled!.code).not.toBe(0);
    expect(cellOutput(after!.stdout)).toBe('arm\nstill-usable\n');
    expect(run.postCode).toBe(0);
    expect(strayProcesses(run.state)).toEqual([]);
  });

  it('stops the cell and fails when the job is cancelled', async () => {
    const run = await action(
      { image: `oci:${layout}:amd64`, run: 'echo started; sleep 300', 'image-cache': 'false' },
      { signalAfterMs: 2500 },
    );
    expect(run.mainCode).not.toBe(0);
    expect(run.stdout).toContain('started');
    expect(strayProcesses(run.state)).toEqual([]);
  });
});

describe('the action as a runner user (sudo, and rootless)', () => {
  const user = 'bc-action-runner';
  let home: string;
  beforeAll(() => {
    home = fresh('bc-action-home-');
    chmodSync(home, 0o777);
    createUser(user, home, { sudo: true });
  });
  afterAll(() => removeUser(user));

  it('leaves no root-owned files in the workspace; the post step applies the cleanup policy', async () => {
    const workspace = join(home, 'ws');
    mkdirSync(workspace);
    writeFileSync(join(workspace, 'hello.txt'), 'hi\n');
    execFileSync('chown', ['-R', `${user}:${user}`, workspace]);
    const run = await action(
      {
        image: `oci:${layout}:amd64`,
        run: 'mkdir -p out/deep && echo built > out/deep/f && echo "who=$(id -u)" >> "$GITHUB_OUTPUT"\nexit 4',
        exports: '/workspace/out:build/out',
        cleanup: 'preserve-on-failure',
        caches: '/root/.cache/x',
        'image-cache': 'false',
        privilege: 'sudo',
      },
      { workspace, wrapper: ['runuser', '-u', user, '--'] },
    );
    expect(run.outputs['exit-code'], run.stdout + run.stderr).toBe('4');
    expect(run.outputs.who).toBe('0');
    expect(run.mainCode).toBe(1);
    const rootOwned: string[] = [];
    const walk = (dir: string) => {
      for (const name of readdirSync(dir)) {
        const path = join(dir, name);
        if (lstatSync(path).uid === 0) rootOwned.push(path);
        if (lstatSync(path).isDirectory()) walk(path);
      }
    };
    walk(workspace);
    expect(rootOwned).toEqual([]);
    expect(readFileSync(join(workspace, 'build', 'out', 'deep', 'f'), 'utf8')).toBe('built\n');
    // preserve-on-failure after a failure: the scratch is kept for inspection, also by post.
    const scratch = run.outputs['scratch-path'];
    expect(scratch).toBeTruthy();
    expect(run.postCode).toBe(0);
    // The workspace was an overlay of the host's: what the cell wrote is in its upper layer.
    expect(existsSync(join(scratch!, 'overlay', 'workspace-upper', 'out', 'deep', 'f'))).toBe(true);
    await removeDir(scratch!);
  });

  it('runs rootless with privilege auto when user namespaces work: no sudo, everything owned by the user', async () => {
    const workspace = join(home, 'ws-rootless');
    mkdirSync(workspace);
    writeFileSync(join(workspace, 'hello.txt'), 'hi\n');
    execFileSync('chown', ['-R', `${user}:${user}`, workspace]);
    const state = join(home, 'state-rootless');
    const userLayout = layoutForUser(layout, home, user);
    const run = await action(
      {
        image: `oci:${userLayout}:arm64`,
        arch: 'arm64',
        'state-dir': state,
        'image-cache': 'false',
        caches: '/var/cache/r',
        run: 'cat hello.txt; mkdir out; uname -m > out/m; echo "who=$(id -u)" >> "$GITHUB_OUTPUT"; echo x > /var/cache/r/f',
        exports: '/workspace/out:out',
        network: 'disabled',
      },
      { workspace, wrapper: ['runuser', '-u', user, '--'], env: { SUDO_ASKPASS: undefined } },
    );
    expect(run.mainCode, run.stdout + run.stderr).toBe(0);
    expect(run.outputs.who).toBe('0');
    expect(readFileSync(join(workspace, 'out', 'm'), 'utf8')).toBe('aarch64\n');
    const owners = execFileSync('find', [workspace, state, '-not', '-user', user], { encoding: 'utf8' }).trim();
    expect(owners).toBe('');
    execFileSync('runuser', ['-u', user, '--', 'rm', '-rf', state, join(workspace, 'out')]);
    expect(existsSync(state)).toBe(false);
  });

  for (const privilege of ['sudo', 'rootless'] as const) {
    it(`a session as the runner user (${privilege}), with bash and an install step: state and outputs across steps, the workspace the user's`, async () => {
      const workspace = join(home, `ws-session-${privilege}`);
      mkdirSync(workspace);
      execFileSync('chown', ['-R', `${user}:${user}`, workspace]);
      const state = join(home, `state-session-${privilege}`);
      mkdirSync(state);
      execFileSync('chown', [`${user}:${user}`, state]);
      // Debian: bash is the session's shell.
      const userLayout = layoutForUser(await debianLayout(), fresh('bc-action-layout-'), user);
      chmodSync(join(userLayout, '..'), 0o755);
      const run = await action(
        {
          image: `oci:${userLayout}:${DEBIAN_TAG}`,
          privilege,
          'state-dir': state,
          session: 'true',
          shell: 'bash',
          install: 'echo installed > /opt-installed',
          run: 'echo "$((6 * 7))" > /root/answer',
          exports: '/workspace/out:out',
          'image-cache': 'false',
        },
        {
          workspace,
          wrapper: ['runuser', '-u', user, '--'],
          steps: [
            {
              shell: 'build-cell {0}',
              run: 'set -o pipefail; cat /opt-installed /root/answer | tr a-z A-Z; mkdir -p out; id -u > out/uid; echo "answer=$(cat /root/answer)" >> "$GITHUB_OUTPUT"',
            },
            { shell: 'build-cell {0}', run: 'false | true; echo "pipefail is on, so this never prints"' },
          ],
        },
      );
      expect(run.mainCode, run.stdout + run.stderr).toBe(0);
      const [one, two] = run.steps;
      expect(one!.code, one!.stderr).toBe(0);
      expect(cellOutput(one!.stdout)).toBe('INSTALLED\n42\n');
      expect(one!.outputs).toEqual({ answer: '42' });
      expect(two!.code).toBe(1);
      expect(two!.stdout).not.toContain('never prints');
      expect(run.postCode, run.stdout + run.stderr).toBe(0);
      expect(readFileSync(join(workspace, 'out', 'uid'), 'utf8')).toBe('0\n');
      expect(execFileSync('find', [workspace, '-not', '-user', user], { encoding: 'utf8' }).trim()).toBe('');
    });
  }

  const APT_JOB = [
    'apt-get update -qq',
    'apt-get install -y --no-install-recommends gcc libc6-dev cron >/dev/null',
    'mkdir -p out && gcc -O2 -o out/hello hello.c && ./out/hello',
  ].join('\n');

  it('runs apt-get install and a compile in the Debian image with the default inputs (auto), and says which mode ran and why', async () => {
    const workspace = join(home, 'ws-apt');
    mkdirSync(workspace);
    writeFileSync(
      join(workspace, 'hello.c'),
      '#include <stdio.h>\nint main(void) { puts("hello from the cell"); return 0; }\n',
    );
    execFileSync('chown', ['-R', `${user}:${user}`, workspace]);
    const state = join(home, 'state-apt');
    const debian = layoutForUser(await debianLayout(), fresh('bc-action-debian-'), user);
    chmodSync(join(debian, '..'), 0o755);
    const run = await action(
      { image: `oci:${debian}:${DEBIAN_TAG}`, 'state-dir': state, run: APT_JOB, exports: '/workspace/out:out' },
      { workspace, wrapper: ['runuser', '-u', user, '--'] },
    );
    expect(run.mainCode, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toContain('hello from the cell');
    expect(run.stdout).not.toMatch(/Invalid cross-device link|returned an error code/);
    // This user has subordinate ids, so auto picks a complete rootless cell.
    expect(run.stdout).toMatch(
      /privilege: rootless \(auto: not root; user namespaces work with the subordinate ids mapped/,
    );
    expect(run.summary).toMatch(/privilege.*rootless: auto: not root/);
    expect(execFileSync('find', [workspace, state, '-not', '-user', user], { encoding: 'utf8' }).trim()).toBe('');
    execFileSync('runuser', ['-u', user, '--', 'rm', '-rf', state, join(workspace, 'out')]);
  });

  it('runs the same job through sudo, leaving the workspace to the runner user', async () => {
    const workspace = join(home, 'ws-apt-sudo');
    mkdirSync(workspace);
    writeFileSync(
      join(workspace, 'hello.c'),
      '#include <stdio.h>\nint main(void) { puts("hello through sudo"); return 0; }\n',
    );
    execFileSync('chown', ['-R', `${user}:${user}`, workspace]);
    // The apt part as the cached install step: its derived layout goes to the Actions cache as the runner user's.
    const [install, compile] = [APT_JOB.split('\n').slice(0, 2).join('\n'), APT_JOB.split('\n')[2]!];
    // The runner user resolves the image's digest itself (for the cache keys): a layout it can read.
    const debian = layoutForUser(await debianLayout(), fresh('bc-action-debian-'), user);
    chmodSync(join(debian, '..'), 0o755);
    const run = await action(
      { image: `oci:${debian}:${DEBIAN_TAG}`, install, run: compile, exports: '/workspace/out:out', privilege: 'sudo' },
      { workspace, wrapper: ['runuser', '-u', user, '--'], keepTemp: true },
    );
    try {
      expect(run.mainCode, run.stdout + run.stderr).toBe(0);
      expect(run.stdout).toContain('hello through sudo');
      expect(run.summary).toMatch(/privilege.*sudo: privilege sudo/);
      expect(run.outputs).toMatchObject({
        'install-cache-hit': 'false',
        'install-digest': expect.stringMatching(/^sha256:/),
      });
      expect(
        execFileSync('find', [workspace, join(run.runnerTemp, 'build-cell'), '-not', '-user', user], {
          encoding: 'utf8',
        }).trim(),
      ).toBe('');
    } finally {
      await run.cleanup();
    }
  });
});

describe('the action: images, tools and the cache service', () => {
  let wrapperDir: string;
  let log: string;
  beforeAll(() => {
    wrapperDir = fresh('bc-action-bin-');
    log = join(wrapperDir, 'calls.log');
    writeFileSync(join(wrapperDir, 'skopeo'), `#!/bin/sh\necho "skopeo $*" >> ${log}\nexec /usr/bin/skopeo "$@"\n`, {
      mode: 0o755,
    });
  });
  const calls = () => (existsSync(log) ? readFileSync(log, 'utf8') : '');

  it('re-resolves a moved tag, and a warm run copies nothing', async () => {
    const env = { PATH: `${wrapperDir}:${process.env.PATH}` };
    // A second amd64 image: the same rootfs with another config (so another digest).
    const moved = fresh('bc-action-moved-');
    execFileSync('cp', ['-a', `${layout}/.`, moved]);
    execFileSync('umoci', [
      'config',
      '--image',
      `${moved}:amd64`,
      '--tag',
      'moved',
      '--config.label',
      'build-cell.test=moved',
    ]);
    await pushLayout(layout, 'amd64', registry.host, 'busybox', 'moving');
    const runnerTemp = fresh('bc-action-rt-');
    const state = fresh('bc-action-state-');
    const inputs = { image: `${registry.host}/busybox:moving`, 'tls-verify': 'false', run: 'true' };
    const first = await action({ ...inputs, 'state-dir': state }, { env, runnerTemp, runId: '300' });
    expect(first.mainCode, first.stdout + first.stderr).toBe(0);
    expect(calls()).toMatch(/skopeo copy/);

    // Another machine, same tag: the layout comes from the Actions cache; one manifest request, no copy.
    await removeDir(runnerTemp);
    mkdirSync(runnerTemp);
    writeFileSync(log, '');
    const warm = await action(inputs, { env, runnerTemp, runId: '301' });
    expect(warm.outputs).toMatchObject({ 'image-cache-hit': 'true', 'image-digest': first.outputs['image-digest'] });
    expect(calls()).toMatch(/skopeo inspect --raw/);
    expect(calls()).not.toMatch(/skopeo copy/);

    // The tag moves: the first machine's store still has the old image, but the new one runs.
    await pushLayout(moved, 'moved', registry.host, 'busybox', 'moving');
    const after = await action({ ...inputs, 'state-dir': state }, { env, runId: '302' });
    expect(after.mainCode, after.stdout + after.stderr).toBe(0);
    expect(after.outputs['image-digest']).not.toBe(first.outputs['image-digest']);
    expect(after.outputs['image-cache-hit']).toBe('false');
  });

  it('downloads pinned tools once, checks them, then uses the tool cache', async () => {
    const qemu = pinFor('qemu-user-static');
    const umoci = pinFor('umoci');
    const files = new Map<string, string>();
    for (const pin of [qemu!, umoci!]) files.set(pin.pool, await ensureDeb(pin));
    const source = await startSource(files);
    try {
      const toolCache = fresh('bc-action-tools-');
      const inputs = {
        image: `oci:${layout}:arm64`,
        arch: 'arm64',
        tools: 'pinned',
        'tools-source': `${source.url}/debian`,
        'image-cache': 'false',
        run: 'echo "machine=$(uname -m)" >> "$GITHUB_OUTPUT"',
      };
      const first = await action(inputs, { toolCache });
      expect(first.mainCode, first.stdout + first.stderr).toBe(0);
      expect(first.outputs.machine).toBe('aarch64');
      expect(source.requests.some((r) => r.includes('qemu-user-static'))).toBe(true);
      expect(source.requests.some((r) => r.includes('umoci'))).toBe(true);
      const count = source.requests.length;
      const second = await action(inputs, { toolCache, node: process.execPath });
      expect(second.mainCode, second.stdout + second.stderr).toBe(0);
      expect(second.outputs.machine).toBe('aarch64');
      expect(source.requests.length).toBe(count);
      expect(second.stdout).toMatch(/from the tool cache/);
    } finally {
      await source.close();
    }
  });

  it('on a fresh runner takes the pinned tools from the Actions cache: nothing reaches the tools source', async () => {
    // qemu 10.0: a key of its own, whatever other tests of this file saved.
    const qemu = qemuPinFor('10.0');
    const umoci = pinFor('umoci');
    const files = new Map<string, string>();
    for (const pin of [qemu!, umoci!]) files.set(pin.pool, await ensureDeb(pin));
    const source = await startSource(files);
    try {
      const runnerTemp = fresh('bc-action-rt-');
      const inputs = {
        image: `oci:${layout}:arm64`,
        arch: 'arm64',
        tools: 'pinned',
        qemu: '10.0',
        'tools-source': `${source.url}/debian`,
        'image-cache': 'false',
        run: 'echo "machine=$(uname -m)" >> "$GITHUB_OUTPUT"',
      };
      const first = await action(inputs, { toolCache: fresh('bc-action-tools-'), runnerTemp, runId: '500' });
      expect(first.mainCode, first.stdout + first.stderr).toBe(0);
      expect(first.stdout).toMatch(
        /no cached tools for build-cell-tools-v1-linux-\w+-[0-9a-f]{32}: they are fetched once, and saved/,
      );
      expect(source.requests.some((r) => r.includes('qemu-user'))).toBe(true);
      const count = source.requests.length;
      // The next job: a new VM (another tool cache, RUNNER_TEMP emptied), the same repository's cache.
      await removeDir(runnerTemp);
      mkdirSync(runnerTemp);
      const second = await action(inputs, { toolCache: fresh('bc-action-tools-'), runnerTemp, runId: '501' });
      expect(second.mainCode, second.stdout + second.stderr).toBe(0);
      expect(second.outputs.machine).toBe('aarch64');
      expect(second.stdout).toMatch(
        /tools restored from the Actions cache \(build-cell-tools-v1-[^)]+\): umoci, qemu-aarch64-static/,
      );
      expect(second.stdout).toMatch(/qemu-aarch64-static: using \S+ \(from the tool cache/);
      // The image's restore ran beside the tools; its lines are printed in a group after theirs.
      const log = second.stdout;
      const imageGroup = log.indexOf('::group::Image cache');
      expect(imageGroup).toBeGreaterThan(log.indexOf('tools restored from the Actions cache'));
      expect(log.indexOf('image-cache is false')).toBeGreaterThan(imageGroup);
      expect(source.requests.length, source.requests.slice(count).join('\n')).toBe(count);
      expect(second.warnings).toEqual([]);
      expect(first.summary).toContain('umoci, qemu-aarch64-static: fetched from the tools source');
      expect(second.summary).toContain('umoci, qemu-aarch64-static: restored from the Actions cache');
    } finally {
      await source.close();
    }
  });

  it('turns a failing cache service into warnings and a green build', async () => {
    const { createServer } = await import('node:http');
    const broken = createServer((_, res) =>
      res
        .writeHead(401, { 'content-type': 'application/json' })
        .end('{"code":"unauthenticated","msg":"token expired"}'),
    );
    await new Promise<void>((resolve) => broken.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(broken.address() as { port: number }).port}/`;
      const run = await action(
        { image: `oci:${layout}:amd64`, caches: '/var/cache/x', run: 'echo ok > /var/cache/x/f' },
        { results: { url } },
      );
      expect(run.mainCode, run.stdout + run.stderr).toBe(0);
      expect(run.outputs['exit-code']).toBe('0');
      expect(run.warnings.length).toBeGreaterThan(0);
      expect(run.errors).toEqual([]);
    } finally {
      await new Promise<void>((resolve) => broken.close(() => resolve()));
    }
  });
});
