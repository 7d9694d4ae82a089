/**
 * Write-back's pure parts: which inputs may ask for it, and which upper entries are staging's own;
 * and on plain directories, that `.git` stays the host's unless the author opts in.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkWriteBack, gitWarning, isGitDir, stagingOnly, writeBack } from '../../src/write-back/workspace.js';
import type { BuildCellSpec } from '../../src/cellspec/types.js';
import type { CellPlan } from '../../src/cell/plan.js';
import { parseCli } from '../../src/cli/args.js';
import { parseInputs, type InputReader } from '../../src/action/inputs.js';
import { expectUserError } from './spec-fixture.js';

describe('who may write back', () => {
  it('needs a directory workspace, and says what the cell has instead', () => {
    expect(() => checkWriteBack({ workspaceSeed: { kind: 'snapshot', path: '/ws' } })).not.toThrow();
    expectUserError(
      () => checkWriteBack({ workspaceSeed: { kind: 'archive', path: '/ws.tar' } }, '--write-back'),
      '--write-back',
      'needs a directory workspace',
      'an archive',
    );
    expectUserError(() => checkWriteBack({ workspaceSeed: { kind: 'empty' } }), 'writeBack', 'no workspace');
  });
  it('is a CLI flag, checked with the other flags', () => {
    const env = { cwd: '/home/u', env: { HOME: '/home/u' }, uid: 1000 };
    expect(parseCli(['run', '--image', 'x', '--workspace', 'proj', '--write-back', '--', 'make'], env)).toMatchObject({
      writeBack: true,
    });
    expect(parseCli(['run', '--image', 'x', '--workspace', 'proj', '--', 'make'], env)).not.toHaveProperty('writeBack');
    expectUserError(
      () => parseCli(['run', '--image', 'x', '--write-back', '--', 'make'], env),
      '--write-back',
      'no workspace',
    );
    expectUserError(
      () => parseCli(['run', '--image', 'x', '--workspace', 'w.tgz', '--write-back', '--', 'make'], env),
      '--write-back',
      'an archive',
    );
  });
  it('is an action input, false by default, refused without a directory workspace', () => {
    const env = { GITHUB_WORKSPACE: '/home/runner/work/r/r' };
    const read =
      (values: Record<string, string>): InputReader =>
      (name) =>
        (({ image: 'debian', run: 'make', ...values }) as Record<string, string>)[name] ?? '';
    expect(parseInputs(read({}), env).writeBack).toBe(false);
    expect(parseInputs(read({ 'write-back': 'true' }), env).writeBack).toBe(true);
    expect(() => parseInputs(read({ 'write-back': 'true', workspace: 'none' }), env)).toThrow(
      /^write-back: needs a directory workspace to write back to, and workspace is none/,
    );
    expect(() => parseInputs(read({ 'write-back': 'true', workspace: 'src.tar.gz' }), env)).toThrow(
      /^write-back: .*the archive "src.tar.gz"/,
    );
    expect(() => parseInputs(read({ 'write-back': 'yes' }), env)).toThrow(/^write-back:/);
  });
});

describe('stagingOnly', () => {
  let upper: string;
  beforeEach(() => {
    upper = mkdtempSync(join(tmpdir(), 'bc-staged-'));
  });
  afterEach(() => rmSync(upper, { recursive: true, force: true }));
  it('skips what staging made and nothing else: a parent it made stays when the cell put more in it', () => {
    for (const d of ['target', 'web/node_modules', 'a/b/mnt', 'a/b/mine'])
      mkdirSync(join(upper, d), { recursive: true });
    writeFileSync(join(upper, 'config.toml'), '');
    const skip = stagingOnly(upper, [
      'target',
      'web',
      'web/node_modules',
      'a',
      'a/b',
      'a/b/mnt',
      'config.toml',
      'gone',
    ]);
    expect(skip('target')).toBe(true);
    expect(skip('web')).toBe(true);
    expect(skip('web/node_modules')).toBe(true);
    expect(skip('config.toml')).toBe(true);
    expect(skip('gone')).toBe(true);
    expect(skip('a')).toBe(false);
    expect(skip('a/b')).toBe(false);
    expect(skip('a/b/mnt')).toBe(true);
    expect(skip('a/b/mine')).toBe(false);
    expect(skip('other')).toBe(false);
  });
});

describe('write-back and .git', () => {
  let base: string;
  const tree = (root: string, files: Record<string, string>) => {
    for (const [rel, content] of Object.entries(files)) {
      mkdirSync(join(root, rel, '..'), { recursive: true });
      if (rel.endsWith('/')) mkdirSync(join(root, rel), { recursive: true });
      else writeFileSync(join(root, rel), content);
    }
  };
  const HOST = {
    '.git/config': 'orig',
    '.git/HEAD': 'ref',
    'src.txt': 'old',
    'sub/.git/config': 'sub-orig',
    'sub/file': 'x',
    'old/.git/config': 'kept',
    'gone.txt': 'g',
  };
  const UPPER = {
    '.git/config': '[core]\n\tfsmonitor = "touch /tmp/pwned-by-git; false"\n',
    '.git/hooks/post-checkout': '#!/bin/sh\nid\n',
    'sub/.git/config': 'evil',
    'src.txt': 'new',
    'sub/file': 'y',
    'old/': '',
  };
  // The cell's view: the host's names less what it deleted (gone.txt, old/.git), plus its own.
  const VIEW = { ...UPPER, '.git/HEAD': 'ref', 'sub/.git/config': 'evil' };
  beforeEach(() => {
    base = mkdtempSync(join(tmpdir(), 'bc-wb-git-'));
    tree(join(base, 'host'), HOST);
    tree(join(base, 'upper'), UPPER);
    tree(join(base, 'root', 'ws'), VIEW);
  });
  afterEach(() => rmSync(base, { recursive: true, force: true }));

  const run = (git: boolean) =>
    writeBack(
      { workspaceSeed: { kind: 'snapshot', path: join(base, 'host') }, workspacePath: '/ws' } as BuildCellSpec,
      { staging: { workspace: 'overlay' }, layout: { workspaceUpper: join(base, 'upper') } } as unknown as CellPlan,
      [],
      join(base, 'root'),
      { git },
    );
  const read = (rel: string) => readFileSync(join(base, 'host', rel), 'utf8');

  it('leaves every .git as the host has it, names what the cell changed there, and writes the rest', async () => {
    const result = await run(false);
    expect(read('.git/config')).toBe('orig');
    expect(existsSync(join(base, 'host', '.git/hooks'))).toBe(false);
    expect(read('sub/.git/config')).toBe('sub-orig');
    expect(read('old/.git/config')).toBe('kept');
    expect(read('src.txt')).toBe('new');
    expect(read('sub/file')).toBe('y');
    expect(existsSync(join(base, 'host', 'gone.txt'))).toBe(false);
    expect([...result.git].sort()).toEqual([
      '.git/config',
      '.git/hooks/post-checkout',
      'old/.git (deleted)',
      'sub/.git/config',
    ]);
    expect(gitWarning(result.git, 'write-back-git: true')).toMatch(
      /^write-back: the cell's changes under .git were not written back \(git on the host would run .*\): .*\.git\/hooks\/post-checkout.*; write-back-git: true writes them back$/,
    );
  });

  it('writes .git too when the author opts in', async () => {
    const result = await run(true);
    expect(result.git).toEqual([]);
    expect(read('.git/config')).toContain('fsmonitor');
    expect(read('.git/hooks/post-checkout')).toContain('id');
    expect(read('sub/.git/config')).toBe('evil');
    expect(existsSync(join(base, 'host', 'old/.git'))).toBe(false);
  });

  it('knows a git directory at any depth and in any case', () => {
    for (const rel of ['.git', 'sub/.git', 'a/b/.GIT']) expect(isGitDir(rel), rel).toBe(true);
    for (const rel of ['.gitignore', 'git', 'x.git', '.git/config', '.github']) expect(isGitDir(rel), rel).toBe(false);
  });

  it('is asked for with --write-back-git (with --write-back, or alone at a session start) and write-back-git', () => {
    const env = { cwd: '/home/u', env: { HOME: '/home/u' }, uid: 1000 };
    expect(
      parseCli(['run', '--image', 'x', '--workspace', 'p', '--write-back', '--write-back-git', '--', 'make'], env),
    ).toMatchObject({ writeBack: true, writeBackGit: true });
    expectUserError(
      () => parseCli(['run', '--image', 'x', '--workspace', 'p', '--write-back-git', '--', 'make'], env),
      '--write-back-git',
      'needs --write-back',
    );
    expect(parseCli(['session', 'start', '--image', 'x', '--workspace', 'p', '--write-back-git'], env)).toMatchObject({
      kind: 'session-start',
      writeBackGit: true,
    });
    const read =
      (values: Record<string, string>): InputReader =>
      (name) =>
        (({ image: 'debian', run: 'make', ...values }) as Record<string, string>)[name] ?? '';
    const ws = { GITHUB_WORKSPACE: '/w' };
    expect(parseInputs(read({}), ws).writeBackGit).toBe(false);
    expect(parseInputs(read({ 'write-back': 'true', 'write-back-git': 'true' }), ws).writeBackGit).toBe(true);
    expect(parseInputs(read({ session: 'true', 'write-back-git': 'true' }), ws).writeBackGit).toBe(true);
    expect(() => parseInputs(read({ 'write-back-git': 'true' }), ws)).toThrow(/^write-back-git: needs write-back/);
  });
});
