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
import { scratchPreserved } from '../cellspec/types.js';
import { bestEffort } from './best-effort.js';
import { getInputs } from './inputs.js';
import { endActionSession } from './session.js';
import { withCommandsStopped } from '../github/workflow-commands.js';
import { uploadExports } from './artifact.js';
import { saveCache } from './actions-cache.js';
import { buildCaches } from './cache-keys.js';

/**
 * The end of a session (see session.ts): its exports copied out of a last cell over its state,
 * the artifact uploaded, the build caches saved (they hold every step's changes), its root
 * layer removed per cleanup. A failed export fails the post step.
 */
async function endSessionPost(work: string): Promise<void> {
  const inputs = getInputs();
  const runnerTemp = process.env.RUNNER_TEMP || '/tmp';
  // The last cell runs over the session's state, which the steps' code wrote: its output is inert too.
  const ended = await withCommandsStopped(() => endActionSession(inputs, work));
  if (ended.error) core.setFailed(`build-cell: ending the session: ${ended.error}`);
  if (inputs.artifactName && ended.exports.length) {
    const id = await bestEffort('uploading the artifact', () =>
      uploadExports(
        inputs.artifactName!,
        ended.exports.map((e) => e.destination),
        process.env.GITHUB_WORKSPACE || process.cwd(),
      ),
    );
    core.info(`artifact ${inputs.artifactName}${id !== undefined ? ` (id ${id})` : ''} uploaded`);
  }
  if (inputs.caches.length) {
    const caches = buildCaches(inputs, runnerTemp);
    await bestEffort('saving the build caches', () => saveCache(caches.dirs, caches.primary));
  }
  core.info(
    `session ${inputs.session} ended${ended.exports.length ? `: ${ended.exports.length} export(s) copied out` : ''}`,
  );
}

export async function runPost(): Promise<void> {
  const work = core.getState(STATE.work);
  if (core.getState(STATE.session) && work) await bestEffort('ending the session', () => endSessionPost(work));
  if (work) {
    // Request and file-command directories of a main step that did not get to remove them.
    for (const name of await readdir(work).catch(() => [] as string[])) {
      if (/^(request-|result-|file-commands-)/.test(name))
        await rm(join(work, name), { recursive: true, force: true }).catch(() => undefined);
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
