/**
 * The post step (post-if: always()): remove what the cell left for this job. A preserved
 * scratch holds root-owned files (the cell's overlay), so it goes through sudo when the
 * runner user is not root. Never fails the job.
 */
import * as core from '@actions/core';
import { spawnSync } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { STATE } from './state.js';

export async function runPost(): Promise<void> {
  const scratch = core.getState(STATE.scratch);
  if (!scratch) return;
  const asRoot = core.getState(STATE.mode) !== 'sudo' || process.getuid?.() === 0;
  try {
    if (asRoot) await rm(scratch, { recursive: true, force: true });
    else {
      const result = spawnSync('sudo', ['-n', 'rm', '-rf', '--', scratch], { encoding: 'utf8' });
      if (result.status !== 0) throw new Error(result.stderr || `sudo rm exited with ${result.status}`);
    }
    core.info(`removed the preserved scratch ${scratch}`);
  } catch (error) {
    core.warning(`could not remove the preserved scratch ${scratch}: ${(error as Error).message}`);
  }
}
