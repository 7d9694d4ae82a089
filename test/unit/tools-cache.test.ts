import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveArch } from '../../src/emulation/arch.js';
import { adopt, complete, pinnedEntries, stage, stagedPath } from '../../src/tools/pinned-entries.js';
import { qemuPinFor, toolCacheVersion } from '../../src/tools/pinned.js';
import { describeTools, toolsCacheKey } from '../../src/action/tools-cache.js';

const arm64 = resolveArch('arm64');
const riscv64 = resolveArch('riscv64');

describe('pinnedEntries: the tool-cache entries a resolve may fill from a download', () => {
  it('is umoci alone for a native job, plus each guest qemu of the chosen build', () => {
    expect(pinnedEntries({ qemu: [] }, '/tc', 'x64').map((e) => e.name)).toEqual(['umoci']);
    const entries = pinnedEntries({ qemu: [riscv64, arm64, arm64] }, '/tc', 'x64');
    expect(entries.map((e) => e.name)).toEqual(['umoci', 'qemu-aarch64-static', 'qemu-riscv64-static']);
    const pin = qemuPinFor('7.2', 'x64')!;
    expect(entries[1]).toEqual({
      name: 'qemu-aarch64-static',
      version: toolCacheVersion(pin.version),
      arch: 'x64',
      pin: `${pin.package} ${pin.version} amd64 sha256:${pin.sha256}`,
      dir: join('/tc', 'qemu-aarch64-static', toolCacheVersion(pin.version), 'x64'),
    });
  });

  it('follows the qemu build: 10.0 is another pin, path none', () => {
    const ten = pinnedEntries({ qemu: [arm64], qemuVersion: '10.0' }, '/tc', 'arm64');
    expect(ten[1]!.pin).toContain(qemuPinFor('10.0', 'arm64')!.sha256);
    expect(pinnedEntries({ qemu: [arm64], qemuVersion: 'path' }, '/tc', 'x64').map((e) => e.name)).toEqual(['umoci']);
  });

  it('has mkfs.erofs (erofs-utils) when the job saves images', () => {
    const entries = pinnedEntries({ qemu: [], mkfsErofs: true }, '/tc', 'arm64');
    expect(entries.map((e) => e.name)).toEqual(['umoci', 'mkfs.erofs']);
    expect(entries[1]!.pin).toMatch(/^erofs-utils 1\.5-1 arm64 sha256:[0-9a-f]{64}$/);
  });

  it('is empty on a host build-cell pins nothing for', () => {
    expect(pinnedEntries({ qemu: [arm64] }, '/tc', 'ppc64')).toEqual([]);
  });
});

describe('toolsCacheKey', () => {
  const entries = pinnedEntries({ qemu: [arm64] }, '/tc', 'x64');
  it('names the host and hashes the pins, not the tool cache path or the order', () => {
    const key = toolsCacheKey(entries, 'linux', 'x64');
    expect(key).toMatch(/^build-cell-tools-v1-linux-x64-[0-9a-f]{32}$/);
    expect(toolsCacheKey([...pinnedEntries({ qemu: [arm64] }, '/elsewhere', 'x64')].reverse(), 'linux', 'x64')).toBe(
      key,
    );
  });
  it('changes with a pin, a guest or the host', () => {
    const key = toolsCacheKey(entries, 'linux', 'x64');
    expect(toolsCacheKey(pinnedEntries({ qemu: [arm64], qemuVersion: '10.0' }, '/tc', 'x64'), 'linux', 'x64')).not.toBe(
      key,
    );
    expect(toolsCacheKey(pinnedEntries({ qemu: [riscv64] }, '/tc', 'x64'), 'linux', 'x64')).not.toBe(key);
    expect(toolsCacheKey(entries, 'linux', 'arm64')).not.toBe(key);
  });
});

describe('stage and adopt: an entry carried to another tool cache', () => {
  let base: string;
  const saved = process.env.RUNNER_TOOL_CACHE;
  beforeEach(async () => {
    base = await mkdtemp(join(tmpdir(), 'bc-tools-cache-'));
  });
  afterEach(async () => {
    if (saved === undefined) delete process.env.RUNNER_TOOL_CACHE;
    else process.env.RUNNER_TOOL_CACHE = saved;
    await rm(base, { recursive: true, force: true });
  });

  it('arrives complete where tool-cache looks for it, and an absent staged copy is left alone', async () => {
    const machineA = pinnedEntries({ qemu: [arm64] }, join(base, 'a'), 'x64');
    for (const entry of machineA) {
      mkdirSync(entry.dir, { recursive: true });
      writeFileSync(join(entry.dir, entry.name), `#!/bin/sh\necho ${entry.name}\n`, { mode: 0o755 });
      writeFileSync(`${entry.dir}.complete`, '');
    }
    const staging = join(base, 'staging');
    await stage(machineA.slice(0, 1), staging);
    expect(existsSync(join(stagedPath(machineA[0]!, staging), 'umoci'))).toBe(true);

    process.env.RUNNER_TOOL_CACHE = join(base, 'b');
    const machineB = pinnedEntries({ qemu: [arm64] }, join(base, 'b'), 'x64');
    expect(machineB.some(complete)).toBe(false);
    expect(await adopt(machineB, staging)).toEqual(['umoci']);
    expect(complete(machineB[0]!)).toBe(true);
    expect(readFileSync(join(machineB[0]!.dir, 'umoci'), 'utf8')).toBe('#!/bin/sh\necho umoci\n');
    // qemu was not staged: still missing, for the resolve to fetch.
    expect(complete(machineB[1]!)).toBe(false);
  });
});

describe('describeTools: the summary line', () => {
  const entries = pinnedEntries({ qemu: [arm64] }, '/tc', 'x64');
  it('says where the tools came from', () => {
    expect(describeTools({ key: 'k', dir: '/d', entries, hit: true })).toBe(
      'umoci, qemu-aarch64-static: restored from the Actions cache',
    );
    expect(describeTools({ key: 'k', dir: '/d', entries: entries.slice(1), hit: false })).toBe(
      'qemu-aarch64-static: fetched from the tools source (not in the Actions cache yet)',
    );
  });
});
