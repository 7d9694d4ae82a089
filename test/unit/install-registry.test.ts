/**
 * The install step's registry tier, its pure parts: the repository parser, tags, labels and
 * their check, which registry the credentials go to, the CLI flags and action inputs, the
 * action's push rule (never from a fork's pull request) and its install-source output.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { resolveArch } from '../../src/emulation/arch.js';
import { parseReference } from '../../src/image/reference.js';
import {
  installLabels,
  installTag,
  LABEL,
  labelMismatch,
  parseRepository,
  registryAccess,
  sourceRepository,
} from '../../src/install/registry.js';
import { parseCli, type CliEnvironment } from '../../src/cli/args.js';
import { parseInputs, type InputReader } from '../../src/action/inputs.js';
import { decideInstallPush, isForkPullRequest } from '../../src/action/install-push.js';
import { describeInstall, installSource } from '../../src/action/install-cache.js';
import type { InstallResult } from '../../src/install/port.js';
import { expectUserError } from './spec-fixture.js';

const HASH = 'c'.repeat(64);
const BASE = `sha256:${'b'.repeat(64)}`;
const identity = { script: 'apt-get install -y gcc', shell: 'sh' as const, key: 'v2', keyEnvNames: ['B', 'A', 'B'] };
const labels = installLabels({
  hash: HASH,
  arch: resolveArch('arm64'),
  baseDigest: BASE,
  identity,
  source: 'https://github.com/acme/app',
});

describe('parseRepository', () => {
  it('takes a repository with a host, or a Docker Hub name, and gives host/path', () => {
    expect(parseRepository('ghcr.io/acme/build-envs', 'f')).toBe('ghcr.io/acme/build-envs');
    expect(parseRepository('docker://localhost:5000/envs', 'f')).toBe('localhost:5000/envs');
    expect(parseRepository('127.0.0.1:5000/a/b-c_d.e', 'f')).toBe('127.0.0.1:5000/a/b-c_d.e');
    expect(parseRepository('acme/envs', 'f')).toBe('docker.io/acme/envs');
    expect(parseRepository('envs', 'f')).toBe('docker.io/library/envs');
    // ${{ github.repository }} may have capitals; a registry's names do not.
    expect(parseRepository('ghcr.io/Acme/App-envs', 'f')).toBe('ghcr.io/acme/app-envs');
  });

  it('refuses tags, digests, uppercase paths and empty values, naming the field', () => {
    expectUserError(
      () => parseRepository('ghcr.io/acme/envs:latest', '--install-registry'),
      '--install-registry',
      'must not name a tag',
    );
    expectUserError(
      () => parseRepository('ghcr.io/acme/envs@sha256:x', 'install-registry'),
      'install-registry',
      'without a tag',
    );
    expectUserError(
      () => parseRepository('ghcr.io/acme/-envs', 'install-registry'),
      'install-registry',
      'malformed repository path',
    );
    expectUserError(() => parseRepository(' ', 'install-registry'), 'install-registry', 'ghcr.io/acme/build-envs');
    expectUserError(
      () => parseRepository('bad_host.io:x/envs', 'install-registry'),
      'install-registry',
      'malformed registry host',
    );
  });
});

describe('tags and labels', () => {
  it('tags a key by its arch and hash, within the registry limit of 128 characters', () => {
    expect(installTag(resolveArch('arm64'), HASH)).toBe(`install-arm64-${HASH}`);
    const armhf = installTag(resolveArch('armhf'), HASH);
    expect(armhf).toBe(`install-arm-v7-${HASH}`);
    expect(armhf.length).toBeLessThanOrEqual(128);
    expect(armhf).toMatch(/^[\w][\w.-]{0,127}$/);
  });

  it('labels the key parts, hashing the script and install-key, names only for the env', () => {
    expect(labels).toMatchObject({
      [LABEL.key]: HASH,
      [LABEL.arch]: 'arm64',
      [LABEL.base]: BASE,
      [LABEL.shell]: 'sh',
      [LABEL.envNames]: 'A,B',
      [LABEL.source]: 'https://github.com/acme/app',
    });
    expect(labels[LABEL.script]).toMatch(/^[a-f0-9]{64}$/);
    expect(Object.values(labels).join(' ')).not.toContain('apt-get');
    expect(Object.values(labels).join(' ')).not.toContain('v2');
  });

  it('labelMismatch names every part that differs; the source repository may differ', () => {
    expect(labelMismatch(labels, labels)).toBeUndefined();
    expect(labelMismatch({ ...labels, [LABEL.source]: 'https://github.com/other/repo' }, labels)).toBeUndefined();
    const other = installLabels({ hash: 'd'.repeat(64), arch: resolveArch('amd64'), baseDigest: BASE, identity });
    expect(labelMismatch(other, labels)).toMatch(
      /dev\.build-cell\.install\.key is "d+", not "c+".*install\.arch is "amd64", not "arm64"/,
    );
    expect(labelMismatch({}, labels)).toMatch(/dev\.build-cell\.install\.key is missing/);
  });

  it('the source repository comes from the workflow environment, or is unknown', () => {
    expect(sourceRepository({ GITHUB_REPOSITORY: 'acme/app' })).toBe('https://github.com/acme/app');
    expect(sourceRepository({ GITHUB_REPOSITORY: 'acme/app', GITHUB_SERVER_URL: 'https://ghe.example/' })).toBe(
      'https://ghe.example/acme/app',
    );
    expect(sourceRepository({})).toBeUndefined();
    expect(sourceRepository({ GITHUB_REPOSITORY: 'not a repo' })).toBeUndefined();
  });
});

describe('registryAccess', () => {
  const creds = { tlsVerify: true, username: 'u', password: 'p' };
  it('gives the credentials to the install registry, and to the image only on the same host', () => {
    expect(registryAccess(parseReference('debian:bookworm'), 'ghcr.io/acme/envs', creds)).toEqual({
      image: { tlsVerify: true },
      install: creds,
    });
    expect(registryAccess(parseReference('ghcr.io/acme/base:1'), 'ghcr.io/acme/envs', creds)).toEqual({
      image: creds,
      install: creds,
    });
    const withFile = { tlsVerify: false, username: 'u', password: 'p', authFile: '/a.json' };
    expect(registryAccess(parseReference('debian:bookworm'), 'ghcr.io/acme/envs', withFile).image).toEqual({
      tlsVerify: false,
      authFile: '/a.json',
    });
    expect(registryAccess(parseReference('oci:/l:t'), 'ghcr.io/acme/envs', creds)).toEqual({
      image: creds,
      install: creds,
    });
  });
});

describe('the CLI flags', () => {
  const ENV: CliEnvironment = { cwd: '/w', env: { HOME: '/h', GITHUB_REPOSITORY: 'acme/app' }, uid: 1000 };
  const parse = (flags: string[]) => parseCli(['run', '--image', 'busybox', ...flags, '--', 'true'], ENV);
  it('--install-registry and --install-push go with --install, on run, prepare and session start', () => {
    const run = parse(['--install', 'true', '--install-registry', 'localhost:5000/envs', '--install-push']);
    expect(run.kind === 'run' && run.install).toEqual({
      script: 'true',
      key: '',
      registry: { repository: 'localhost:5000/envs', push: true },
      source: 'https://github.com/acme/app',
    });
    const prepare = parseCli(
      ['prepare', '--image', 'busybox', '--install', 'true', '--install-registry', 'r.io/a'],
      ENV,
    );
    expect(prepare.kind === 'prepare' && prepare.install?.registry).toEqual({ repository: 'r.io/a', push: false });
    const session = parseCli(
      ['session', 'start', '--image', 'busybox', '--install', 'true', '--install-registry', 'r.io/a'],
      ENV,
    );
    expect(session.kind === 'session-start' && session.install?.registry?.repository).toBe('r.io/a');
  });

  it('refuses the flags alone, and a tag', () => {
    expectUserError(() => parse(['--install-registry', 'r.io/a']), '--install-registry', 'needs --install');
    expectUserError(() => parse(['--install', 'true', '--install-push']), '--install-push', 'needs --install-registry');
    expectUserError(
      () => parse(['--install', 'true', '--install-registry', 'r.io/a:v1']),
      '--install-registry',
      'must not name a tag',
    );
  });
});

describe('the action inputs and push rule', () => {
  const reader =
    (values: Record<string, string>): InputReader =>
    (name) =>
      values[name] ?? '';
  const parse = (values: Record<string, string>) =>
    parseInputs(reader({ image: 'debian:bookworm', run: 'true', ...values }), { GITHUB_WORKSPACE: '/ws' });
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });
  const eventFile = (event: unknown) => {
    dir = mkdtempSync(join(tmpdir(), 'bc-unit-event-'));
    writeFileSync(join(dir, 'event.json'), JSON.stringify(event));
    return join(dir, 'event.json');
  };

  it('parses install-registry and install-push (auto by default), only with install', () => {
    expect(parse({ install: 'true', 'install-registry': 'ghcr.io/acme/envs' }).install?.registry).toEqual({
      repository: 'ghcr.io/acme/envs',
      push: 'auto',
    });
    expect(() => parse({ 'install-registry': 'ghcr.io/acme/envs' })).toThrow(/install-registry: needs install/);
    expect(() => parse({ install: 'true', 'install-push': 'true' })).toThrow(/install-push: needs install-registry/);
    expect(() => parse({ install: 'true', 'install-registry': 'r.io/a', 'install-push': 'yes' })).toThrow(
      /install-push.*auto, true, false/,
    );
  });

  it('auto pushes with credentials, and never for a pull request from a fork', () => {
    const withCreds = parse({
      install: 'true',
      'install-registry': 'r.io/a',
      'registry-username': 'u',
      'registry-password': 'p',
    });
    const push = { GITHUB_EVENT_NAME: 'push', GITHUB_REPOSITORY: 'acme/app' };
    expect(decideInstallPush(withCreds, push).push).toBe(true);
    const noCreds = parse({ install: 'true', 'install-registry': 'r.io/a' });
    expect(decideInstallPush(noCreds, push)).toMatchObject({
      push: false,
      why: expect.stringMatching(/no registry credentials/),
    });
    const fork = eventFile({ pull_request: { head: { repo: { full_name: 'mallory/app', fork: true } } } });
    const pr = { GITHUB_EVENT_NAME: 'pull_request_target', GITHUB_EVENT_PATH: fork, GITHUB_REPOSITORY: 'acme/app' };
    expect(decideInstallPush(withCreds, pr)).toMatchObject({ push: false, why: expect.stringMatching(/fork/) });
    const forced = parse({
      install: 'true',
      'install-registry': 'r.io/a',
      'install-push': 'false',
      'registry-username': 'u',
      'registry-password': 'p',
    });
    expect(decideInstallPush(forced, push).push).toBe(false);
    expect(
      decideInstallPush(parse({ install: 'true', 'install-registry': 'r.io/a', 'install-push': 'true' }), pr).push,
    ).toBe(true);
  });

  it('tells a fork from a pull request within the repository, and distrusts an unreadable event', () => {
    const same = eventFile({ pull_request: { head: { repo: { full_name: 'acme/app', fork: false } } } });
    expect(
      isForkPullRequest({ GITHUB_EVENT_NAME: 'pull_request', GITHUB_EVENT_PATH: same, GITHUB_REPOSITORY: 'acme/app' }),
    ).toBe(false);
    expect(
      isForkPullRequest({
        GITHUB_EVENT_NAME: 'pull_request',
        GITHUB_EVENT_PATH: '/nonexistent',
        GITHUB_REPOSITORY: 'acme/app',
      }),
    ).toBe(true);
    expect(isForkPullRequest({ GITHUB_EVENT_NAME: 'push', GITHUB_REPOSITORY: 'acme/app' })).toBe(false);
  });

  it('install-source and the summary say where the derived image came from and whether it was pushed', () => {
    const base: InstallResult = { ran: true, source: 'ran', digest: BASE, baseDigest: BASE, hash: HASH, seconds: 3.2 };
    const registry = { reference: `r.io/a:install-amd64-${HASH}`, pushed: true, notes: [] };
    expect(installSource({ ...base, source: 'cache', ran: false })).toBe('actions-cache');
    expect(installSource({ ...base, source: 'registry', ran: false })).toBe('registry');
    expect(installSource(base)).toBe('ran');
    expect(describeInstall({ ...base, registry }, undefined)).toBe(
      `ran in 3.2 s, pushed to r.io/a:install-amd64-${HASH}`,
    );
    expect(describeInstall({ ...base, registry: { ...registry, pushed: false } }, undefined)).toBe(
      'ran in 3.2 s, not pushed',
    );
    expect(describeInstall({ ...base, ran: false, source: 'registry', registry }, undefined)).toBe(
      `pulled from r.io/a:install-amd64-${HASH} (not run)`,
    );
  });
});
