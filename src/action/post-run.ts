/**
 * The post step (post-if: always()): cleanup per the `cleanup` policy, also when main failed
 * or was cancelled before the engine could clean up itself. A scratch holds root-owned files
 * (the cell's overlay), so it is removed through sudo when the runner user is not root.
 * Never fails the job.
 */
import * as core from '@actions/core';
import { lazyChildProcess } from '../util/builtins.js';
import { existsSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { STATE } from './state.js';
import { scratchPreserved } from '../spec/types.js';


export async function runPost(): Promise<void> {
  const work = core.getState(STATE.work);
  if (work) {
    // Request and file-command directories of a main step that did not get to remove them.
    for (const name of await readdir(work).catch(() => [] as string[])) {
      if (/^(request-|result-|file-commands-)/.test(name)) await rm(join(work, name), { recursive: true, force: true }).catch(() => undefined);
    }
  }
  const scratch = core.getState(STATE.scratch);
  if (!scratch || !existsSync(scratch)) return;
  const succeeded = core.getState(STATE.outcome) === 'success';
  if (scratchPreserved(core.getState(STATE.cleanup), succeeded)) {
    core.info(`keeping the scratch ${scratch} (cleanup: ${core.getState(STATE.cleanup)})`);
    return;
  }
  const asRoot = core.getState(STATE.mode) !== 'sudo' || process.getuid?.() === 0;
  try {
    if (asRoot) await rm(scratch, { recursive: true, force: true });
    else {
      const result = lazyChildProcess().spawnSync('sudo', ['-n', 'rm', '-rf', '--', scratch], { encoding: 'utf8' });
      if (result.status !== 0) throw new Error(result.stderr || `sudo rm exited with ${result.status}`);
    }
    core.info(`removed the scratch ${scratch}`);
  } catch (error) {
    core.warning(`could not remove the scratch ${scratch}: ${(error as Error).message}`);
  }
}
