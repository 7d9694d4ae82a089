import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveInCell } from '../../src/cell/finalize.js';
import { scratchPreserved } from '../../src/cellspec/types.js';
import { CellSetupError } from '../../src/util/errors.js';

let root = '';
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'bc-final-'));
  await mkdir(join(root, 'workspace', 'out', 'deep'), { recursive: true });
  await writeFile(join(root, 'workspace', 'out', 'app'), 'bin');
  await writeFile(join(root, 'workspace', 'out', 'deep', 'f'), 'f');
  await symlink('/etc', join(root, 'workspace', 'evil'));
  await symlink('out', join(root, 'workspace', 'rel-link'));
  await symlink('/etc/passwd', join(root, 'workspace', 'out', 'passwd-link'));
  await writeFile(join(root, 'workspace', 'file'), 'x');
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('resolveInCell', () => {
  it('returns the host path of normal files and directories', async () => {
    expect(await resolveInCell(root, '/workspace/out/app', 'exports[0].source')).toBe(join(root, 'workspace/out/app'));
    expect(await resolveInCell(root, '/workspace/out', 'f')).toBe(join(root, 'workspace/out'));
    expect(await resolveInCell(root, '/workspace//out/./deep/f', 'f')).toBe(join(root, 'workspace/out/deep/f'));
    expect(await resolveInCell(root, '/', 'f')).toBe(root);
  });

  it('returns undefined for a missing path', async () => {
    expect(await resolveInCell(root, '/workspace/nope', 'f')).toBeUndefined();
    expect(await resolveInCell(root, '/nope/deeper/still', 'f')).toBeUndefined();
  });

  it('returns undefined when an intermediate component is a regular file', async () => {
    expect(await resolveInCell(root, '/workspace/file/x', 'f')).toBeUndefined();
  });

  it('throws when an intermediate component is a symlink (out -> /etc), naming field and component', async () => {
    const error = await resolveInCell(root, '/workspace/evil/passwd', 'exports[1].source').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CellSetupError);
    expect((error as Error).message).toBe(
      'exports[1].source: /workspace/evil/passwd passes through a symlink at /workspace/evil; exports never follow symlinks',
    );
  });

  it('throws for a relative symlink in the middle too', async () => {
    await expect(resolveInCell(root, '/workspace/rel-link/app', 'f')).rejects.toThrow(
      'passes through a symlink at /workspace/rel-link',
    );
  });

  it('returns the path when only the final component is a symlink (copied as a link)', async () => {
    expect(await resolveInCell(root, '/workspace/evil', 'f')).toBe(join(root, 'workspace/evil'));
    expect(await resolveInCell(root, '/workspace/out/passwd-link', 'f')).toBe(join(root, 'workspace/out/passwd-link'));
  });
});

describe('scratchPreserved (the engine and the post step share it)', () => {
  it.each([
    ['always', true, false],
    ['always', false, false],
    ['preserve-on-failure', true, false],
    ['preserve-on-failure', false, true],
    ['never', true, true],
    ['never', false, true],
  ] as const)('policy %s, succeeded %s -> %s', (policy, succeeded, expected) => {
    expect(scratchPreserved(policy, succeeded)).toBe(expected);
  });
});
