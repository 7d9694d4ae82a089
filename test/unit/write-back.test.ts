/** Write-back's pure parts: which inputs may ask for it, and which upper entries are staging's own. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkWriteBack, stagingOnly } from '../../src/cell/write-back.js';
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
