/**
 * A session: a cell's root filesystem that outlives one run, so that several steps (workflow
 * steps through `shell: build-cell {0}`, or `build-cell session exec`) run in fresh cells over
 * the same root state. Its description is a small owner-only file, SESSIONS/NAME/session.json
 * (no secrets: environment values are never in it); its root layer lives under the state dir
 * (root's in sudo mode), so the engine checks it like any of its paths.
 */
import type { EmulationMode } from '../emulation/native.js';
import type { QemuSelection } from '../engine-types.js';
import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Mode } from '../privilege/mode.js';
import type { ImageReference } from '../image/reference.js';
import type {
  CleanupPolicy,
  HostToCell,
  NetworkPolicy,
  ResourceLimits,
  ScriptShell,
  TmpfsMount,
} from '../cellspec/types.js';
import { UserError, show } from '../util/errors.js';
import type { Owner } from '../util/fs.js';
import { randomHex } from '../util/random.js';

export const SESSION_FORMAT = 1;
export const DEFAULT_SESSION = 'default';

export interface SessionState {
  format: typeof SESSION_FORMAT;
  name: string;
  mode: Mode;
  stateDir: string;
  /** Who gets what the steps leave on the host (the user behind sudo). */
  owner?: Owner;
  /** The image the steps run on (an install step's derived image), by its store reference and digest. */
  image: { ref: ImageReference; arch: string; digest: string };
  /** The live host workspace (written back after each step); undefined: an empty one. */
  workspace?: string;
  workspacePath: string;
  cwd: string;
  shell: ScriptShell;
  imports: HostToCell[];
  caches: HostToCell[];
  /** Mounted afresh, empty, in every step's cell (--tmpfs / tmpfs at the start). */
  tmpfs?: TmpfsMount[];
  network: NetworkPolicy;
  limits: ResourceLimits;
  cleanup: CleanupPolicy;
  /** The CPU model qemu emulates in every step (--qemu-cpu / qemu-cpu at the start). */
  qemuCpu?: string;
  /** The emulation mode of every step (--emulation / emulation at the start); absent: auto. */
  emulation?: EmulationMode;
  /** The qemu build every step runs under (--qemu / qemu at the start), resolved once. */
  qemu?: QemuSelection;
  /** Write-back may write under .git directories (write-back-git / --write-back-git at the start). */
  writeBackGit?: boolean;
  /** What every runner step's file commands may pass on (forward-env, forward-path at the start); none when absent. */
  forward?: { env: string[]; path: boolean };
  /** The session's root layer, under the state dir. */
  root: { dir: string; upper: string };
  /** Whether a step failed (the end's cleanup policy and exports use it). */
  failed: boolean;
}

export function checkSessionName(name: string, field: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name)) {
    throw new UserError(
      field,
      `${show(name)} is not a session name: letters, digits, '.', '_' and '-', at most 64, starting with a letter or digit`,
    );
  }
  return name;
}

export const sessionFile = (sessions: string, name: string) => join(sessions, name, 'session.json');

/** The session's root layer under the state dir; `scope` keeps jobs sharing a state dir apart. */
export function rootLayerFor(stateDir: string, scope: string, name: string): SessionState['root'] {
  const dir = join(stateDir, 'sessions', `${scope}-${name}`);
  return { dir, upper: join(dir, 'upper') };
}

export function readSession(sessions: string, name: string, hint: string): SessionState {
  let text: string;
  try {
    text = readFileSync(sessionFile(sessions, name), 'utf8');
  } catch {
    let known: string[];
    try {
      known = readdirSync(sessions).filter((n) => {
        try {
          readFileSync(sessionFile(sessions, n));
          return true;
        } catch {
          return false;
        }
      });
    } catch {
      known = [];
    }
    const which =
      name === DEFAULT_SESSION
        ? 'no build-cell session is running here'
        : `there is no build-cell session named ${show(name)}`;
    throw new UserError('session', `${which}${known.length ? ` (running: ${known.join(', ')})` : ''}: ${hint}`);
  }
  const state = JSON.parse(text) as SessionState;
  if (state.format !== SESSION_FORMAT)
    throw new UserError(
      'session',
      `${sessionFile(sessions, name)} was written by another version of build-cell: start the session again`,
    );
  return state;
}

/** Owner-only, written whole (temp + rename). */
export function writeSession(sessions: string, state: SessionState): void {
  const dir = join(sessions, state.name);
  // Parents as usual (the state dir must stay traversable for the cell's helper), the session's own owner-only.
  mkdirSync(sessions, { recursive: true });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = sessionFile(sessions, state.name);
  const temp = `${file}.${process.pid}.${randomHex(4)}.tmp`;
  writeFileSync(temp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  renameSync(temp, file);
}
