/**
 * `session: true` (or a name) in the action: the main step starts the session (its `run` is
 * the first step) and puts a `build-cell` command on the job's PATH, so that later steps run
 * with `shell: build-cell {0}` (or `build-cell --session NAME {0}`); the post step ends it:
 * exports, the artifact, the build caches saved, the root layer removed per `cleanup`.
 */
import * as core from '@actions/core';
import { chmodSync, existsSync, mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CellRequest } from '../engine.js';
import type { EngineOutcome } from '../engine-entry.js';
import type { Mode } from '../privilege/mode.js';
import { randomHex } from '../util/random.js';
import { endSession, startSession } from '../session/run.js';
import { readSession, rootLayerFor } from '../session/state.js';
import { FILE_COMMANDS_CELL_DIR } from '../github/file-commands.js';
import type { ActionInputs } from './inputs.js';

/** Where this job's sessions are described (the runner empties RUNNER_TEMP after each job). */
export const sessionsDir = (work: string) => join(work, 'sessions');
const cli = () => join(dirname(fileURLToPath(import.meta.url)), 'cli.js');

/** One scope per job: jobs that share a state dir (self-hosted runners) never share a session. */
function jobScope(work: string): string {
  const file = join(work, 'session-scope');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const scope = `${Date.now().toString(36)}-${randomHex(4)}`;
  mkdirSync(work, { recursive: true });
  writeFileSync(file, scope, { mode: 0o600 });
  return scope;
}

/** The `build-cell` the steps call: the runner looks it up on PATH (GITHUB_PATH) for `shell: build-cell {0}`. */
export function shimScript(node: string, cliPath: string, sessions: string, stateDir: string): string {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  return [
    '#!/bin/sh',
    "# build-cell: `shell: build-cell {0}` runs a step's script in this job's session (see the action's session input).",
    // The CLI makes no TLS connection of its own: Node need not parse a CA bundle at every step.
    // --state-dir: where the CLI keeps its code cache (as for every other build-cell command).
    `exec env -u NODE_EXTRA_CA_CERTS ${q(node)} ${q(cliPath)} session step --sessions ${q(sessions)} --state-dir ${q(stateDir)} "$@"`,
    '',
  ].join('\n');
}

export async function startActionSession(
  inputs: ActionInputs,
  request: CellRequest,
  mode: Mode,
  work: string,
): Promise<EngineOutcome> {
  const name = inputs.session!;
  const sessions = sessionsDir(work);
  let stateDir = request.stateDir;
  try {
    stateDir = realpathSync(stateDir);
  } catch {
    // made by the engine
  }
  const { state, outcome } = await startSession(
    {
      sessions,
      name,
      mode,
      shell: inputs.shell,
      request: { ...request, spec: { ...request.spec, exports: [] } },
      root: rootLayerFor(stateDir, jobScope(work), name),
      run: inputs.command.kind !== 'none',
      firstCellOnly: [FILE_COMMANDS_CELL_DIR],
      forward: { env: inputs.forwardEnv, path: inputs.forwardPath },
    },
    { cli: cli(), runnerLog: true },
  );
  if (!outcome.ok) return outcome;
  const bin = join(work, 'bin');
  mkdirSync(bin, { recursive: true });
  const shim = join(bin, 'build-cell');
  writeFileSync(shim, shimScript(process.execPath, cli(), sessions, stateDir), { mode: 0o755 });
  chmodSync(shim, 0o755);
  core.addPath(bin);
  core.info(
    `session ${state.name} started: later steps run in it with \`shell: build-cell${name === 'default' ? '' : ` --session ${name}`} {0}\`; the post step ends it`,
  );
  return outcome;
}

/** The post step's part: exports from the session's state, then its root layer removed per cleanup. */
export async function endActionSession(
  inputs: ActionInputs,
  work: string,
): Promise<{ exports: Array<{ source: string; destination: string; bytes: number }>; error?: string }> {
  const sessions = sessionsDir(work);
  const state = readSession(sessions, inputs.session!, 'the main step did not start it');
  const { outcome, kept } = await endSession(
    sessions,
    state,
    inputs.exports.map((m) => ({ source: m.cell, destination: m.host })),
    { cli: cli(), runnerLog: true },
  );
  if (kept) core.info(`keeping the session's root layer ${state.root.dir} (cleanup: ${state.cleanup})`);
  if (outcome && !outcome.ok) return { exports: [], error: outcome.error };
  return { exports: outcome?.ok ? outcome.result.exports : [] };
}
