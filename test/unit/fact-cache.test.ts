import { afterEach, describe, expect, it } from 'vitest';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bootId, cachedFact, rememberFactsIn } from '../../src/util/fact-cache.js';

describe('cachedFact: host probes remembered in the state dir', () => {
  const dirs: string[] = [];
  const stateDir = () => {
    const dir = mkdtempSync(join(tmpdir(), 'bc-facts-'));
    dirs.push(dir);
    return dir;
  };
  afterEach(() => {
    rememberFactsIn(undefined);
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('probes once, then answers from STATE/probe-NAME.json while the fingerprint holds', () => {
    const dir = stateDir();
    rememberFactsIn(dir);
    let probes = 0;
    const probe = () => (probes++, { ok: true });
    expect(cachedFact('x', () => 'boot-1', probe)).toEqual({ ok: true });
    expect(cachedFact('x', () => 'boot-1', probe)).toEqual({ ok: true });
    expect(probes).toBe(1);
    expect(JSON.parse(readFileSync(join(dir, 'probe-x.json'), 'utf8'))).toEqual({
      fingerprint: 'boot-1',
      value: { ok: true },
    });
    // Another boot (or kernel, or sysctl): probed again.
    expect(cachedFact('x', () => 'boot-2', probe)).toEqual({ ok: true });
    expect(probes).toBe(2);
  });

  it('keeps only what `keep` allows (a failed userns probe is retried next run)', () => {
    const dir = stateDir();
    rememberFactsIn(dir);
    cachedFact(
      'y',
      () => 'f',
      () => false,
      Boolean,
    );
    expect(existsSync(join(dir, 'probe-y.json'))).toBe(false);
  });

  it('ignores a file anybody else can write, and a state dir that does not exist', () => {
    const dir = stateDir();
    rememberFactsIn(dir);
    const file = join(dir, 'probe-z.json');
    writeFileSync(file, JSON.stringify({ fingerprint: 'f', value: 'planted' }));
    chmodSync(file, 0o666);
    expect(
      cachedFact(
        'z',
        () => 'f',
        () => 'probed',
      ),
    ).toBe('probed');
    rememberFactsIn(join(dir, 'missing'));
    expect(
      cachedFact(
        'w',
        () => 'f',
        () => 'probed',
      ),
    ).toBe('probed');
    expect(existsSync(join(dir, 'missing'))).toBe(false);
  });

  it("reads this boot's id", () => {
    expect(bootId()).toMatch(/^[0-9a-f-]{36}$|^pid-\d+$/);
  });
});
