import * as core from '@actions/core';
import { exec } from '@actions/exec';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { holdLog } from '../../src/action/held-log.js';

// What reaches stdout, in order (installed before the first holdLog hooks the stream).
const written: string[] = [];
const original = process.stdout.write.bind(process.stdout);
beforeAll(() => {
  const record = (chunk: string | Uint8Array): boolean => {
    written.push(String(chunk));
    return true;
  };
  process.stdout.write = record;
});
afterAll(() => {
  process.stdout.write = original;
});

describe('held log', () => {
  it("holds the work's lines (a child process's output too) while the foreground's pass, and prints them on release", async () => {
    written.length = 0;
    const work = holdLog(async () => {
      core.info('work 1');
      await sleep(20);
      await exec('sh', ['-c', 'echo from-child']);
      core.warning('work 2');
      return 7;
    });
    core.info('group 1');
    await sleep(200);
    core.info('group 2');
    expect(written).toEqual(['group 1\n', 'group 2\n']);
    const result = work.release();
    expect(await result).toBe(7);
    expect(written.join('')).toMatch(
      /^group 1\ngroup 2\nwork 1\n\[command\]\S*\/sh -c echo from-child\nfrom-child\n::warning::work 2\n$/,
    );
  });

  it('lets the work write through once released, and hands its failure to release()', async () => {
    written.length = 0;
    const work = holdLog(async () => {
      core.info('before');
      await sleep(50);
      core.info('after');
      throw new Error('restore failed');
    });
    core.info('group');
    const released = work.release();
    expect(written).toEqual(['group\n', 'before\n']);
    await expect(released).rejects.toThrow('restore failed');
    expect(written).toEqual(['group\n', 'before\n', 'after\n']);
  });
});
