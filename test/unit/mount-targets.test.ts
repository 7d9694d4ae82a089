import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  chmod,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prepareTarget } from '../../src/cell/mount-targets.js';
import { CellSetupError } from '../../src/util/errors.js';

let dir = '';
let lower = '';
let upper = '';

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bc-targets-'));
  lower = join(dir, 'lower');
  upper = join(dir, 'upper');
  await mkdir(lower);
  await mkdir(upper);
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Every path below `root`, with a type letter, sorted. */
async function tree(root: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const name of (await readdir(root)).sort()) {
    const info = await lstat(join(root, name));
    const kind = info.isSymbolicLink() ? 'l' : info.isDirectory() ? 'd' : 'f';
    out.push(`${kind} ${prefix}${name}`);
    if (kind === 'd') out.push(...(await tree(join(root, name), `${prefix}${name}/`)));
  }
  return out;
}

async function expectFailure(promise: Promise<unknown>, message: string): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CellSetupError);
  expect((error as Error).message).toBe(message);
}

describe('prepareTarget', () => {
  it('creates missing directories in upper only, never in lower', async () => {
    await mkdir(join(lower, 'etc'));
    const lowerBefore = await tree(lower);
    await prepareTarget({ lower, upper, rel: 'workspace/sub', kind: 'dir', cellPath: '/workspace/sub' });
    expect(await tree(upper)).toEqual(['d workspace', 'd workspace/sub']);
    expect(await tree(lower)).toEqual(lowerBefore);
    expect((await stat(join(upper, 'workspace/sub'))).mode & 0o777).toBe(0o755 & ~process.umask());
  });

  it('creates a missing file target as an empty regular file', async () => {
    await prepareTarget({ lower, upper, rel: 'etc/app.conf', kind: 'file', cellPath: '/etc/app.conf' });
    expect(await tree(upper)).toEqual(['d etc', 'f etc/app.conf']);
    expect(await readFile(join(upper, 'etc/app.conf'), 'utf8')).toBe('');
    expect(await tree(lower)).toEqual([]);
  });

  it('does nothing when the target already exists in lower with the right kind', async () => {
    await mkdir(join(lower, 'proc'));
    await writeFile(join(lower, 'hosts'), 'x');
    await prepareTarget({ lower, upper, rel: 'proc', kind: 'dir', cellPath: '/proc' });
    await prepareTarget({ lower, upper, rel: 'hosts', kind: 'file', cellPath: '/hosts' });
    expect(await tree(upper)).toEqual([]);
  });

  it('does nothing for the top itself (rel "")', async () => {
    await prepareTarget({ lower, upper, rel: '', kind: 'dir', cellPath: '/workspace' });
    expect(await tree(upper)).toEqual([]);
  });

  it('copies an existing lower directory up with the same mode when a child must be created', async () => {
    await mkdir(join(lower, 'opt'));
    await chmod(join(lower, 'opt'), 0o710);
    await mkdir(join(lower, 'opt', 'app'));
    await chmod(join(lower, 'opt', 'app'), 0o1750);
    await prepareTarget({ lower, upper, rel: 'opt/app/data', kind: 'dir', cellPath: '/opt/app/data' });
    expect(await tree(upper)).toEqual(['d opt', 'd opt/app', 'd opt/app/data']);
    expect((await stat(join(upper, 'opt'))).mode & 0o7777).toBe(0o710);
    expect((await stat(join(upper, 'opt/app'))).mode & 0o7777).toBe(0o1750);
    expect(await tree(lower)).toEqual(['d opt', 'd opt/app']);
  });

  it('refuses a symlink planted in lower at an intermediate component, naming the cell path', async () => {
    await symlink('/etc', join(lower, 'evil'));
    await expectFailure(
      prepareTarget({ lower, upper, rel: 'evil/x', kind: 'dir', cellPath: '/evil/x' }),
      'mount target /evil/x traverses a symlink at /evil',
    );
    expect(await tree(upper)).toEqual([]);
  });

  it('refuses a symlink deeper down, naming the component', async () => {
    await mkdir(join(lower, 'a'));
    await symlink('../../..', join(lower, 'a', 'b'));
    await expectFailure(
      prepareTarget({ lower, upper, rel: 'a/b/c', kind: 'file', cellPath: '/a/b/c' }),
      'mount target /a/b/c traverses a symlink at /a/b',
    );
  });

  it('refuses a symlink at the final component unless replaceSymlink (file)', async () => {
    await mkdir(join(lower, 'etc'));
    await symlink('../run/systemd/resolve/stub-resolv.conf', join(lower, 'etc', 'resolv.conf'));
    await expectFailure(
      prepareTarget({ lower, upper, rel: 'etc/resolv.conf', kind: 'file', cellPath: '/etc/resolv.conf' }),
      'mount target /etc/resolv.conf traverses a symlink at /etc/resolv.conf',
    );
    await expectFailure(
      prepareTarget({
        lower,
        upper,
        rel: 'etc/resolv.conf',
        kind: 'dir',
        replaceSymlink: true,
        cellPath: '/etc/resolv.conf',
      }),
      'mount target /etc/resolv.conf traverses a symlink at /etc/resolv.conf',
    );
  });

  it('with replaceSymlink (file), shadows a lower symlink by a regular file in upper', async () => {
    await mkdir(join(lower, 'etc'));
    await symlink('/run/systemd/resolve/stub-resolv.conf', join(lower, 'etc', 'resolv.conf'));
    await prepareTarget({
      lower,
      upper,
      rel: 'etc/resolv.conf',
      kind: 'file',
      replaceSymlink: true,
      cellPath: '/etc/resolv.conf',
    });
    const shadow = await lstat(join(upper, 'etc/resolv.conf'));
    expect(shadow.isFile()).toBe(true);
    expect(shadow.size).toBe(0);
    expect(await readlink(join(lower, 'etc/resolv.conf'))).toBe('/run/systemd/resolve/stub-resolv.conf');
  });

  // Regression (fixed): src/cell/mount-targets.ts:52 with replaceSymlink, when the symlink is found in *upper*
  // (latent today: only /etc/resolv.conf uses replaceSymlink, in a fresh overlay upper; but any
  // non-empty upper such as a staged workspace would hit it), `writeFile(upperPath, '')`
  // follows it and truncates whatever it points to on the host (as root: any file). Fix:
  // `await rm(upperPath, { force: true })` (or unlink) first, then
  // `writeFile(upperPath, '', { mode: 0o644, flag: 'wx' })`.
  it('with replaceSymlink, never writes through a symlink that is in upper', async () => {
    const victim = join(dir, 'victim');
    await writeFile(victim, 'precious');
    await mkdir(join(upper, 'etc'));
    await symlink(victim, join(upper, 'etc', 'resolv.conf'));
    await prepareTarget({
      lower,
      upper,
      rel: 'etc/resolv.conf',
      kind: 'file',
      replaceSymlink: true,
      cellPath: '/etc/resolv.conf',
    }).catch(() => undefined);
    expect(await readFile(victim, 'utf8')).toBe('precious');
  });

  it('refuses a file where a directory is expected (final and intermediate)', async () => {
    await writeFile(join(lower, 'workspace'), 'x');
    await expectFailure(
      prepareTarget({ lower, upper, rel: 'workspace', kind: 'dir', cellPath: '/workspace' }),
      'mount target /workspace already exists as a non-directory at /workspace',
    );
    await expectFailure(
      prepareTarget({ lower, upper, rel: 'workspace/sub', kind: 'dir', cellPath: '/workspace/sub' }),
      'mount target /workspace/sub traverses a non-directory at /workspace',
    );
  });

  it('refuses a directory where a file is expected', async () => {
    await mkdir(join(lower, 'app.conf'));
    await expectFailure(
      prepareTarget({ lower, upper, rel: 'app.conf', kind: 'file', cellPath: '/etc/app.conf' }),
      'mount target /etc/app.conf already exists as a directory at /etc/app.conf',
    );
  });

  it('prefers upper over lower', async () => {
    await writeFile(join(lower, 'x'), 'file in lower');
    await mkdir(join(upper, 'x'));
    await prepareTarget({ lower, upper, rel: 'x/y', kind: 'dir', cellPath: '/x/y' });
    expect(await tree(upper)).toEqual(['d x', 'd x/y']);
  });

  it('works without lower (a staged input) and refuses its symlinks too', async () => {
    await mkdir(join(upper, 'src'));
    await symlink('/', join(upper, 'link'));
    await prepareTarget({ upper, rel: 'src/build/out', kind: 'dir', cellPath: '/workspace/src/build/out' });
    expect(await tree(upper)).toEqual(['l link', 'd src', 'd src/build', 'd src/build/out']);
    await expectFailure(
      prepareTarget({ upper, rel: 'link/etc', kind: 'dir', cellPath: '/workspace/link/etc' }),
      'mount target /workspace/link/etc traverses a symlink at /workspace/link',
    );
  });
});
