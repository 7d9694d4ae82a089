/**
 * The CLI's launcher (dist/cli.js, from src/launcher/cli-launcher.cjs): it runs the bundle with
 * a V8 code cache per command, trusted only where nobody but this user can write, and it drops
 * NODE_EXTRA_CA_CERTS.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CLI, removeDir, tempDir } from '../helpers/cli.js';

let dir: string;
let cache: string;

beforeEach(() => {
  dir = tempDir('bc-launcher-');
  cache = join(dir, 'cache');
});

afterEach(async () => {
  await removeDir(dir);
});

/** Run `build-cell ARGS` through its shebang, as the installed command runs. */
function launch(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(CLI, args, {
    encoding: 'utf8',
    env: { ...process.env, BUILD_CELL_CODE_CACHE: cache, ...env },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

const cacheFiles = () => (existsSync(cache) ? readdirSync(cache).sort() : []);
const only = () => {
  const files = cacheFiles();
  expect(files).toHaveLength(1);
  return join(cache, files[0]!);
};

describe('the code cache', () => {
  it('is written after a first start, owner-only, one per command, and used (not rewritten) after', () => {
    expect(launch(['--version']).stdout).toMatch(/^build-cell \d/);
    const file = only();
    expect(file).toMatch(/cli-[0-9a-f]{16}-v\d+\.\d+\.\d+-\w+---version\.bin$/);
    expect(lstatSync(cache).mode & 0o777).toBe(0o700);
    expect(lstatSync(file).mode & 0o777).toBe(0o600);
    const first = lstatSync(file);
    expect(launch(['--version']).status).toBe(0);
    const second = lstatSync(file);
    expect([second.ino, second.mtimeMs]).toEqual([first.ino, first.mtimeMs]);
    expect(launch(['--help']).status).toBe(0);
    expect(cacheFiles()).toHaveLength(2);
  });

  it('replaces a cache that V8 rejects (garbage), and the command still works', () => {
    launch(['--version']);
    const file = only();
    writeFileSync(file, 'not a code cache', { mode: 0o600 });
    expect(launch(['--version']).stdout).toMatch(/^build-cell \d/);
    expect(readFileSync(file, 'utf8')).not.toBe('not a code cache');
  });

  it('neither reads nor writes a cache in a directory others can write', () => {
    mkdirSync(cache, { mode: 0o777 });
    chmodSync(cache, 0o777);
    expect(launch(['--version']).status).toBe(0);
    expect(cacheFiles()).toEqual([]);
  });

  it.each([
    ['group-writable', (f: string) => chmodSync(f, 0o664)],
    ['owned by another user', (f: string) => chownSync(f, 12345, 12345)],
  ])('never reads a cache file that is %s: it is replaced by one of its own', (_, spoil) => {
    launch(['--version']);
    const file = only();
    writeFileSync(file, 'planted', { mode: 0o600 });
    spoil(file);
    expect(launch(['--version']).status).toBe(0);
    const info = lstatSync(file);
    expect([info.uid, info.mode & 0o777]).toEqual([process.geteuid!(), 0o600]);
    expect(readFileSync(file, 'utf8')).not.toBe('planted');
  });

  it('never follows a symlink planted as the cache file', () => {
    launch(['--version']);
    const file = only();
    const victim = join(dir, 'victim');
    writeFileSync(victim, 'victim\n');
    execFileSync('rm', [file]);
    symlinkSync(victim, file);
    expect(launch(['--version']).status).toBe(0);
    expect(readFileSync(victim, 'utf8')).toBe('victim\n');
    expect(lstatSync(file).isFile()).toBe(true);
  });

  it('lives in the state dir given, and never creates a state dir of its own', () => {
    const state = join(dir, 'state');
    const env = { BUILD_CELL_CODE_CACHE: '' };
    expect(launch(['--version', '--state-dir', state], env).status).toBe(0);
    expect(existsSync(state)).toBe(false);
    mkdirSync(state);
    expect(launch(['--version', `--state-dir=${state}`], env).status).toBe(0);
    expect(readdirSync(join(state, 'code-cache'))).toEqual([expect.stringMatching(/---version\.bin$/)]);
    expect(lstatSync(join(state, 'code-cache')).mode & 0o777).toBe(0o700);
    // A code-cache dir made by an earlier run (another bundle, another command) gets this one's too.
    expect(launch(['--help', `--state-dir=${state}`], env).status).toBe(0);
    expect(readdirSync(join(state, 'code-cache')).sort()).toEqual([
      expect.stringMatching(/---help\.bin$/),
      expect.stringMatching(/---version\.bin$/),
    ]);
  });

  it('is off with BUILD_CELL_CODE_CACHE=off', () => {
    expect(launch(['--version'], { BUILD_CELL_CODE_CACHE: 'off' }).status).toBe(0);
    expect(existsSync(cache)).toBe(false);
  });
});

describe('the environment', () => {
  it('drops NODE_EXTRA_CA_CERTS before Node starts (its start would parse the file)', () => {
    // A missing file: Node warns about it at start-up whenever it sees the variable.
    const bogus = join(dir, 'missing.pem');
    const result = launch(['--version'], { NODE_EXTRA_CA_CERTS: bogus });
    expect(result.status).toBe(0);
    expect(result.stderr).toBe('');
    const direct = spawnSync(process.execPath, ['-e', '0'], {
      encoding: 'utf8',
      env: { ...process.env, NODE_EXTRA_CA_CERTS: bogus },
    });
    expect(direct.stderr).toMatch(/Ignoring extra certs/);
  });
});
