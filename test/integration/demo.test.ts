/** The README's first command: `build-cell demo`, a cell on a busybox image built from the host's own busybox. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { expectHostUnchanged, removeDir, runCli, snapshotHost, tempDir } from '../helpers/cli.js';

const state = tempDir('bc-demo-state-');
afterAll(() => removeDir(state));

describe('build-cell demo', () => {
  it('runs a cell that says where it runs, twice on one image built once into the state dir', async () => {
    const before = snapshotHost();
    for (const round of [1, 2]) {
      const result = await runCli(['demo', '--state-dir', state]);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout, `round ${round}`).toMatch(
        /^Hello from a build cell: Linux \S+, hostname build-cell, pid \d+\n/,
      );
      expect(result.stdout).toContain('image: build-cell demo (busybox from the host)\n');
      // Its own PID namespace: the helper and the command's few, no host process.
      expect(Number(/processes visible: (\d+)\n$/.exec(result.stdout)?.[1])).toBeLessThan(10);
      expect(result.stderr).toContain(`demo image oci:${join(state, 'demo', 'layout')}:busybox`);
    }
    expect(existsSync(join(state, 'demo', 'layout', 'index.json'))).toBe(true);
    expectHostUnchanged(before, state);
  });
});
