/**
 * The install step's registry tier (--install-registry, --install-push; the action's
 * install-registry, install-push and install-source), against a real docker-registry with
 * htpasswd auth on 127.0.0.1: a push after an install that ran, pulls into fresh state dirs
 * (and a rootless user's), matrix legs and scripts on their own tags, bad or read-only
 * credentials as warnings with green builds, a re-pointed tag refused by its labels, podman
 * running the pushed image, and the action's push rules (never from a fork's pull request).
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runAction, type RunActionOptions } from '../helpers/action-harness.js';
import {
  expectHostUnchanged,
  removeDir,
  runCli,
  snapshotHost,
  tempDir,
  type CliResult,
  type HostSnapshot,
  expectOk,
} from '../helpers/cli.js';
import { busyboxLayout, DEBIAN_TAG, debianLayout, node24Binary } from '../helpers/fixtures.js';
import { podman } from '../helpers/podman.js';
import { startReadOnlyProxy, type ReadOnlyProxy } from '../helpers/read-only-proxy.js';
import { startRegistryWithAuth, type AuthRegistry } from '../helpers/registry.js';
import { startAzurite, startResultsService } from '../helpers/results-service.js';
import { createUser, layoutForUser, removeUser } from '../helpers/users.js';

const WRITER = { username: 'builder', password: 'builder-secret-4d1c' };
const READER = { username: 'reader', password: 'reader-secret-77e2' };

let busybox: string;
let debian: string;
let registry: AuthRegistry;
let readOnly: ReadOnlyProxy;
let state: string;
let work: string;
let before: HostSnapshot;

const INSTALL = [
  'printf \'#!/bin/sh\\necho "tool from the install step, script A, $(uname -m)"\\n\' > /bin/tool',
  'chmod +x /bin/tool',
].join('\n');
const SCRIPT_B = INSTALL.replace('script A', 'script B');

const result = (name: string) => JSON.parse(readFileSync(join(work, name), 'utf8'));
const installRuns = (r: CliResult) => (r.stderr.match(/install step ran in/g) ?? []).length;
const warnings = (r: CliResult) => r.stderr.split('\n').filter((l) => l.startsWith('build-cell: warning:'));

/** `build-cell run` on busybox with an install step and the registry tier; creds as given. */
function run(
  options: {
    state?: string;
    arch?: string;
    script?: string;
    host?: string;
    repo?: string;
    push?: boolean;
    creds?: typeof WRITER | null;
  },
  command: string[],
  resultName?: string,
): Promise<CliResult> {
  const creds = options.creds === undefined ? WRITER : options.creds;
  const arch = options.arch ?? 'amd64';
  return runCli(
    [
      'run',
      '--state-dir',
      options.state ?? state,
      '--image',
      `oci:${busybox}:${arch}`,
      '--arch',
      arch,
      '--install',
      options.script ?? INSTALL,
      ...registryFlags(options.repo ?? 'envs', { push: options.push !== false, host: options.host, creds }),
      ...(resultName ? ['--result-file', join(work, resultName)] : []),
      '--verbose',
      ...command,
    ],
    { env: { ...process.env, ...(creds ? { BUILD_CELL_REGISTRY_PASSWORD: creds.password } : {}) } },
  );
}

/** --install-registry HOST/REPO with a user name (the writer's by default; its password in the environment), as a user gives them. */
const registryFlags = (repo: string, options: { push?: boolean; host?: string; creds?: typeof WRITER | null } = {}) => {
  const creds = options.creds === undefined ? WRITER : options.creds;
  return [
    '--install-registry',
    `${options.host ?? registry.host}/${repo}`,
    ...(options.push ? ['--install-push'] : []),
    '--tls-verify',
    'false',
    ...(creds ? ['--registry-username', creds.username] : []),
  ];
};
const WRITER_ENV = { ...process.env, BUILD_CELL_REGISTRY_PASSWORD: WRITER.password };

/** The registry's tags of envs, and a tag's labels (skopeo, with the writer's credentials). */
const skopeo = (args: string[]) =>
  execFileSync('skopeo', [...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const creds = `--creds=${WRITER.username}:${WRITER.password}`;
const tags = () => {
  try {
    return (
      JSON.parse(skopeo(['list-tags', '--tls-verify=false', creds, `docker://${registry.host}/envs`])) as {
        Tags: string[];
      }
    ).Tags.sort();
  } catch {
    return [];
  }
};
/** The registry's digest of REPO:TAG (its Docker-Content-Digest), read with the writer's credentials. */
async function manifestDigest(repo: string, tag: string): Promise<string> {
  const response = await fetch(`http://${registry.host}/v2/${repo}/manifests/${tag}`, {
    method: 'HEAD',
    headers: {
      Accept: 'application/vnd.oci.image.manifest.v1+json',
      Authorization: `Basic ${Buffer.from(`${WRITER.username}:${WRITER.password}`).toString('base64')}`,
    },
  });
  return response.headers.get('docker-content-digest') ?? `no digest (HTTP ${response.status})`;
}
const copyTag = (from: string, to: string) =>
  skopeo([
    'copy',
    '--quiet',
    '--src-tls-verify=false',
    '--dest-tls-verify=false',
    `--src-creds=${WRITER.username}:${WRITER.password}`,
    `--dest-creds=${WRITER.username}:${WRITER.password}`,
    `docker://${from}`,
    `docker://${to}`,
  ]);
const labelsOf = (reference: string) =>
  (
    JSON.parse(skopeo(['inspect', '--tls-verify=false', creds, `docker://${reference}`])) as {
      Labels: Record<string, string>;
    }
  ).Labels;

beforeAll(async () => {
  [busybox, debian] = await Promise.all([busyboxLayout(), debianLayout()]);
  registry = await startRegistryWithAuth(WRITER.username, WRITER.password);
  readOnly = await startReadOnlyProxy(registry.host, READER, WRITER);
}, 30 * 60_000);

afterAll(async () => {
  await readOnly?.stop();
  await registry?.stop();
});

beforeEach(() => {
  before = snapshotHost();
  state = tempDir('bc-ireg-state-');
  work = tempDir('bc-ireg-work-');
});

afterEach(async () => {
  expectHostUnchanged(before, state);
  await removeDir(state);
  await removeDir(work);
});

describe('the install step with a registry (CLI)', () => {
  it('pushes after an install that ran; a fresh state dir pulls it instead of running the install; the store serves the next run', async () => {
    const first = await run({}, ['--', 'tool'], 'r1.json');
    expectOk(first, 'first run');
    expect(first.stdout).toBe('tool from the install step, script A, x86_64\n');
    expect(installRuns(first)).toBe(1);
    const r1 = result('r1.json').install;
    const tag = `install-amd64-${r1.hash}`;
    expect(r1).toMatchObject({
      ran: true,
      source: 'ran',
      registry: { reference: `${registry.host}/envs:${tag}`, pushed: true },
    });
    expect(first.stderr).toContain(`pushed to ${registry.host}/envs:${tag}`);
    expect(first.stdout + first.stderr).not.toContain(WRITER.password);
    // Beside the runnable image, its EROFS image (an artifact), which a fresh machine mounts.
    expect(r1.registry.notes).toContain(`pushed the EROFS image to ${registry.host}/envs:${tag}-erofs`);
    expect(tags()).toEqual(expect.arrayContaining([tag, `${tag}-erofs`]));
    // The labels name the key's parts (values of the env never).
    expect(labelsOf(`${registry.host}/envs:${tag}`)).toMatchObject({
      'dev.build-cell.install.key': r1.hash,
      'dev.build-cell.install.arch': 'amd64',
      'dev.build-cell.install.base-digest': r1.baseDigest,
      'dev.build-cell.install.shell': 'sh',
    });

    const fresh = tempDir('bc-ireg-fresh-');
    try {
      const second = await run({ state: fresh }, ['--network', 'disabled', '--', 'tool'], 'r2.json');
      expectOk(second, 'fresh state dir');
      expect(second.stdout).toBe('tool from the install step, script A, x86_64\n');
      expect(installRuns(second)).toBe(0);
      expect(result('r2.json').install).toMatchObject({ ran: false, source: 'registry', hash: r1.hash });
      // Named by the artifact's own manifest digest, never by the digest its record claims.
      const artifactDigest = await manifestDigest('envs', `${tag}-erofs`);
      expect(result('r2.json').install.digest).toBe(artifactDigest);
      expect(artifactDigest).not.toBe(r1.digest);
      // The pull is the run's pull phase.
      expect(result('r2.json').install.pullMs).toBeGreaterThan(0);
      expect(result('r2.json').timings.pull).toBeGreaterThanOrEqual(result('r2.json').install.pullMs);
      expect(second.stderr).toContain(`install step pulled from ${registry.host}/envs:${tag} (not run)`);
      expect(result('r2.json').install.registry.notes).toEqual([
        `pulled the EROFS image from ${registry.host}/envs:${tag}-erofs`,
      ]);
      expect(second.stderr).toMatch(/image: EROFS image (mounted|extracted)/);
      const third = await run({ state: fresh }, ['--', 'tool'], 'r3.json');
      expectOk(third, 'the store');
      expect(result('r3.json').install).toMatchObject({ ran: false, source: 'store' });
      expect(warnings(third)).toEqual([]);
    } finally {
      await removeDir(fresh);
    }
  });

  it('matrix legs (amd64, arm64) and two scripts each get their own tag, and pull back their own image', async () => {
    const legs = [
      { arch: 'amd64', script: INSTALL, out: 'script A, x86_64' },
      { arch: 'arm64', script: INSTALL, out: 'script A, aarch64' },
      { arch: 'amd64', script: SCRIPT_B, out: 'script B, x86_64' },
    ];
    const hashes: string[] = [];
    for (const [i, leg] of legs.entries()) {
      const made = await run({ arch: leg.arch, script: leg.script }, ['--', 'tool'], `m${i}.json`);
      expectOk(made, `push ${leg.arch} ${leg.out}`);
      expect(made.stdout).toContain(leg.out);
      hashes.push(result(`m${i}.json`).install.hash);
    }
    expect(new Set(hashes).size).toBe(3);
    for (const [i, leg] of legs.entries()) expect(tags()).toContain(`install-${leg.arch}-${hashes[i]}`);
    for (const [i, leg] of legs.entries()) {
      const fresh = tempDir('bc-ireg-leg-');
      try {
        const pulled = await run(
          { state: fresh, arch: leg.arch, script: leg.script, push: false },
          ['--', 'tool'],
          `p${i}.json`,
        );
        expectOk(pulled, `pull ${leg.arch} ${leg.out}`);
        expect(pulled.stdout).toBe(`tool from the install step, ${leg.out}\n`);
        expect(result(`p${i}.json`).install).toMatchObject({ source: 'registry', hash: hashes[i] });
      } finally {
        await removeDir(fresh);
      }
    }
  });

  it('a wrong password, no credentials and a read-only user are warnings: the install runs and the build is green', async () => {
    const script = `${INSTALL}\necho creds-case > /case`;
    const wrong = await run(
      { script, creds: { username: WRITER.username, password: 'wrong-password-5e1f' } },
      ['--', 'tool'],
      'w.json',
    );
    expectOk(wrong, 'wrong password');
    expect(installRuns(wrong)).toBe(1);
    expect(result('w.json').install).toMatchObject({ source: 'ran', registry: { pushed: false } });
    expect(warnings(wrong).join('\n')).toMatch(/could not be pulled from .*envs:install-amd64-/);
    expect(warnings(wrong).join('\n')).toMatch(/was not pushed to .*the build goes on/);
    // Never the password, in the log or the result file.
    expect(wrong.stdout + wrong.stderr + readFileSync(join(work, 'w.json'), 'utf8')).not.toContain(
      'wrong-password-5e1f',
    );
    // A registry that does not answer at all: a warning too.
    const closed = await run({ script: `${script}\necho closed`, host: '127.0.0.1:1' }, ['--', 'tool'], 'c.json');
    expectOk(closed, 'unreachable registry');
    expect(installRuns(closed)).toBe(1);
    expect(warnings(closed).join('\n')).toMatch(
      /could not be pulled from 127\.0\.0\.1:1\/envs:install-amd64-.*(connect|refused)/,
    );
    const anonymous = await run({ script: `${script}\necho anonymous`, creds: null }, ['--', 'tool'], 'a.json');
    expectOk(anonymous, 'no credentials');
    expect(installRuns(anonymous)).toBe(1);
    expect(warnings(anonymous).join('\n')).toMatch(
      /could not be pulled from .*envs:install-amd64-.*(unauthorized|authentication required)/,
    );
    expect(warnings(anonymous).join('\n')).toMatch(/was not pushed to /);

    const reader = await run(
      { script: `${script}\necho reader`, creds: READER, host: readOnly.host },
      ['--', 'tool'],
      'ro.json',
    );
    expectOk(reader, 'read-only user');
    expect(installRuns(reader)).toBe(1);
    expect(result('ro.json').install.registry.pushed).toBe(false);
    expect(warnings(reader).join('\n')).toMatch(/was not pushed to .*(denied|DENIED)/);
    expect(readOnly.refused().length).toBeGreaterThan(0);
    expect(tags()).not.toContain(`install-amd64-${result('ro.json').install.hash}`);
    // The reader can pull what the writer pushed.
    const pushed = await run({ script: `${script}\necho shared`, creds: WRITER }, ['--', 'true'], 'pw.json');
    expectOk(pushed, 'writer pushes');
    const fresh = tempDir('bc-ireg-reader-');
    try {
      const pulled = await run(
        { state: fresh, script: `${script}\necho shared`, creds: READER, host: readOnly.host },
        ['--', 'tool'],
        'pr.json',
      );
      expectOk(pulled, 'reader pulls');
      expect(result('pr.json').install.source).toBe('registry');
    } finally {
      await removeDir(fresh);
    }
  });

  it('without its EROFS image, or with something else under its tag, the runnable image is pulled and unpacked', async () => {
    const script = `${INSTALL}\necho image-only`;
    expectOk(await run({ script }, ['--', 'true'], 'io.json'), 'push');
    const tag = `install-amd64-${result('io.json').install.hash}`;
    const pullFresh = async (name: string) => {
      const fresh = tempDir('bc-ireg-image-only-');
      try {
        const pulled = await run({ state: fresh, script, repo: 'image-only', push: false }, ['--', 'tool'], name);
        expectOk(pulled, name);
        expect(pulled.stdout).toBe('tool from the install step, script A, x86_64\n');
        expect(result(name).install).toMatchObject({ source: 'registry', ran: false });
        expect(warnings(pulled)).toEqual([]);
        return result(name).install.registry.notes as string[];
      } finally {
        await removeDir(fresh);
      }
    };
    // Only the runnable image, in a repository of its own (as docker push, or an older build-cell, leaves it).
    copyTag(`${registry.host}/envs:${tag}`, `${registry.host}/image-only:${tag}`);
    expect(await pullFresh('io2.json')).toEqual([
      `not in ${registry.host}/image-only:${tag}-erofs`,
      `pulled from ${registry.host}/image-only:${tag}`,
    ]);
    // The runnable image under the EROFS tag too (its labels are right): not an EROFS artifact, so not used.
    copyTag(`${registry.host}/envs:${tag}`, `${registry.host}/image-only:${tag}-erofs`);
    expect(await pullFresh('io3.json')).toEqual([
      expect.stringMatching(
        /^the EROFS image could not be used \(.* is not a build-cell EROFS artifact: artifactType undefined\): the image is pulled instead$/,
      ),
      `pulled from ${registry.host}/image-only:${tag}`,
    ]);
  });

  it('a tag re-pointed to an image with other labels is refused, the install runs, and its push repairs the tag', async () => {
    const a = await run({ script: `${INSTALL}\necho a > /which` }, ['--', 'true'], 'a.json');
    const b = await run({ script: `${INSTALL}\necho b > /which`, push: false }, ['--', 'true'], 'b.json');
    expectOk(a, 'a');
    expectOk(b, 'b');
    const tagA = `${registry.host}/envs:install-amd64-${result('a.json').install.hash}`;
    const tagB = `${registry.host}/envs:install-amd64-${result('b.json').install.hash}`;
    // Someone points b's tags (the image and its EROFS image) at a's.
    for (const suffix of ['', '-erofs']) copyTag(`${tagA}${suffix}`, `${tagB}${suffix}`);
    const fresh = tempDir('bc-ireg-repoint-');
    try {
      const refused = await run(
        { state: fresh, script: `${INSTALL}\necho b > /which` },
        ['--', 'cat', '/which'],
        'rb.json',
      );
      expectOk(refused, 'refused tag');
      expect(refused.stdout).toBe('b\n');
      expect(installRuns(refused)).toBe(1);
      const said = warnings(refused).join('\n');
      expect(said).toMatch(/refused .*-erofs .*its labels name another install step .*dev\.build-cell\.install\.key/);
      expect(said).toMatch(/refused .*install-amd64-[a-f0-9]{64} \(sha256:.*its labels name another install step/);
      expect(labelsOf(tagB)['dev.build-cell.install.key']).toBe(result('b.json').install.hash);
    } finally {
      await removeDir(fresh);
    }
  });

  it('prepare --install pulls the derived image and prints its rootfs, a directory (the EROFS image extracted)', async () => {
    const script = `${INSTALL}\necho prepare`;
    expectOk(await run({ script }, ['--', 'true']), 'push');
    const fresh = tempDir('bc-ireg-prepare-');
    try {
      const prepared = await runCli(
        [
          'prepare',
          '--state-dir',
          fresh,
          '--image',
          `oci:${busybox}:amd64`,
          '--install',
          script,
          ...registryFlags('envs'),
          '--verbose',
        ],
        { env: WRITER_ENV },
      );
      expectOk(prepared, 'prepare');
      expect(prepared.stderr).toContain('install step pulled from');
      const [digest, rootfs] = prepared.stdout.trim().split(' ');
      expect(digest).toMatch(/^sha256:[a-f0-9]{64}$/);
      expect(readFileSync(join(rootfs!, 'bin', 'tool'), 'utf8')).toContain('script A');
      expect(prepared.stderr).toMatch(/image: EROFS image .*extracted/);
    } finally {
      await removeDir(fresh);
    }
  });

  it('session start pulls the install step from the registry; the steps run on it', async () => {
    const pushed = await run({ script: `${INSTALL}\necho session` }, ['--', 'true']);
    expectOk(pushed, 'push');
    const fresh = tempDir('bc-ireg-session-');
    try {
      const base = ['--state-dir', fresh];
      const start = await runCli(
        [
          'session',
          'start',
          '--name',
          'reg',
          ...base,
          '--image',
          `oci:${busybox}:amd64`,
          '--install',
          `${INSTALL}\necho session`,
          ...registryFlags('envs'),
        ],
        { env: WRITER_ENV },
      );
      expectOk(start, 'session start');
      expect(start.stderr).toContain('install step pulled from');
      const step = await runCli(['session', 'exec', '--name', 'reg', ...base, '--', 'tool']);
      expectOk(step, 'session exec');
      expect(step.stdout).toBe('tool from the install step, script A, x86_64\n');
      expectOk(await runCli(['session', 'end', '--name', 'reg', ...base]), 'session end');
    } finally {
      await removeDir(fresh);
    }
  });

  it('rootless: a user pulls the install step into their own store', async () => {
    const script = `${INSTALL}\necho rootless`;
    expectOk(await run({ script }, ['--', 'true']), 'push as root');
    const user = 'bc-test-ireg';
    const home = tempDir('bc-ireg-home-');
    chmodSync(home, 0o755);
    createUser(user, home);
    try {
      execFileSync('chown', [user, home]);
      const image = `oci:${layoutForUser(busybox, home, user)}:amd64`;
      const userState = join(home, 'state');
      const pulled = await runCli(
        [
          'run',
          '--privilege',
          'rootless',
          '--state-dir',
          userState,
          '--image',
          image,
          '--install',
          script,
          ...registryFlags('envs'),
          '--result-file',
          join(home, 'r.json'),
          '--',
          'tool',
        ],
        {
          wrapper: ['runuser', '-u', user, '--'],
          cwd: home,
          env: { PATH: process.env.PATH, HOME: home, BUILD_CELL_REGISTRY_PASSWORD: WRITER.password },
        },
      );
      expectOk(pulled, 'rootless pull');
      expect(pulled.stdout).toBe('tool from the install step, script A, x86_64\n');
      expect(JSON.parse(readFileSync(join(home, 'r.json'), 'utf8')).install.source).toBe('registry');
      expect(execFileSync('find', [userState, '!', '-user', user], { encoding: 'utf8' })).toBe('');
    } finally {
      removeUser(user);
      await removeDir(home);
    }
  });
});

describe('the pushed image outside build-cell', () => {
  it(
    'podman runs the Debian image with the program the install step installed',
    async () => {
      const apt = 'apt-get update -qq && apt-get install -y -qq --no-install-recommends hello >/dev/null';
      const made = await runCli(
        [
          'run',
          '--state-dir',
          state,
          '--image',
          `oci:${debian}:${DEBIAN_TAG}`,
          '--install',
          apt,
          ...registryFlags('debian-envs', { push: true }),
          '--result-file',
          join(work, 'd.json'),
          '--',
          'hello',
        ],
        { env: WRITER_ENV },
      );
      expectOk(made, 'install hello and push');
      const reference = result('d.json').install.registry.reference as string;
      const pm = podman();
      try {
        await pm.run(['pull', '--quiet', '--tls-verify=false', creds, reference]);
        const out = await pm.run(['run', '--rm', '--network', 'none', reference, 'hello']);
        expect(out).toBe('Hello, world!\n');
      } finally {
        await pm.remove();
      }
    },
    10 * 60_000,
  );
});

describe('the action with install-registry', () => {
  let node24: string;
  let azurite: Awaited<ReturnType<typeof startAzurite>>;
  let service: Awaited<ReturnType<typeof startResultsService>>;
  beforeAll(async () => {
    node24 = await node24Binary();
    azurite = await startAzurite();
    service = await startResultsService(azurite.blobEndpoint);
  });
  afterAll(async () => {
    await service?.stop();
    await azurite?.stop();
  });

  const inputs = (script: string, extra: Record<string, string> = {}) => ({
    image: `oci:${busybox}:amd64`,
    install: script,
    'install-registry': `${registry.host}/action-envs`,
    'registry-username': WRITER.username,
    'registry-password': WRITER.password,
    'tls-verify': 'false',
    run: 'tool',
    ...extra,
  });
  async function job(with_: Record<string, string>, options: RunActionOptions & { runnerTemp: string }) {
    const jobState = tempDir('bc-ireg-action-state-');
    try {
      const run = await runAction({
        node: node24,
        results: { url: service.url },
        ...options,
        inputs: { 'state-dir': jobState, ...with_ },
      });
      expect(run.mainCode, run.stdout + run.stderr).toBe(0);
      return run;
    } finally {
      await removeDir(jobState);
    }
  }

  it('pushes with install-push auto; a fresh runner with an empty Actions cache pulls, saves to the cache; the next restores it', async () => {
    const script = `${INSTALL}\necho action`;
    const rtA = tempDir('bc-ireg-rt-a-');
    const first = await job(inputs(script), { runId: '701', runnerTemp: rtA });
    expect(first.outputs['install-source']).toBe('ran');
    expect(first.stdout).toMatch(
      /install-registry .*action-envs: pushes after an install that runs \(install-push auto: registry credentials given/,
    );
    expect(first.summary).toMatch(
      /ran in \d+\.\d s, saved to the Actions cache, pushed to .*action-envs:install-amd64-/,
    );
    // Another runner temp path: another Actions cache version, so an empty cache for this job.
    const rtB = tempDir('bc-ireg-rt-b-');
    const second = await job(inputs(script), { runId: '702', runnerTemp: rtB });
    expect(second.outputs).toMatchObject({
      'install-source': 'registry',
      'install-cache-hit': 'true',
      'install-digest': expect.stringMatching(/^sha256:/),
    });
    expect(second.stdout).toContain('tool from the install step');
    expect(second.summary).toMatch(
      /pulled from .*action-envs:install-amd64-[a-f0-9]{64} \(not run\), saved to the Actions cache/,
    );
    await removeDir(rtB);
    mkdirSync(rtB);
    const third = await job(inputs(script), { runId: '703', runnerTemp: rtB });
    expect(third.outputs['install-source']).toBe('actions-cache');
    for (const dir of [rtA, rtB]) await removeDir(dir);
  });

  it('install-push auto never pushes from a pull request from a fork', async () => {
    const script = `${INSTALL}\necho fork`;
    const rt = tempDir('bc-ireg-rt-fork-');
    const event = {
      pull_request: {
        number: 7,
        head: { repo: { full_name: 'mallory/build-cell', fork: true } },
        base: { repo: { full_name: 'metalor/build-cell' } },
      },
    };
    const forked = await job(inputs(script), { runId: '711', runnerTemp: rt, eventName: 'pull_request', event });
    expect(forked.outputs['install-source']).toBe('ran');
    expect(forked.stdout).toContain(
      'no push after an install that runs (install-push auto: this run is for a pull request from a fork)',
    );
    expect(forked.summary).toMatch(/ran in \d+\.\d s, saved to the Actions cache, not pushed/);
    // The same key from the CLI (same script, shell and env names): the registry does not have it.
    const check = await run({ script, repo: 'action-envs', push: false }, ['--', 'true'], 'fork.json');
    expectOk(check, 'the CLI with the same key');
    expect(result('fork.json').install).toMatchObject({ source: 'ran', registry: { pushed: false } });
    expect(result('fork.json').install.registry.notes).toEqual([
      expect.stringMatching(/^not in .*action-envs:install-amd64-[a-f0-9]{64}-erofs$/),
      expect.stringMatching(/^not in .*action-envs:install-amd64-[a-f0-9]{64}$/),
    ]);
    await removeDir(rt);
  });
});
