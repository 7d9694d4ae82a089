/** Names of the values the main step hands to the post step (core.saveState / getState). */
export const STATE = {
  /** root or sudo: how the post step may remove root-owned files. */
  mode: 'mode',
  /** The cell's scratch directory, saved before the cell starts (so a cancelled run is cleaned too). */
  scratch: 'scratch',
  cleanup: 'cleanup',
  /** "success" once the command exited 0; absent after a failure or a cancelled run. */
  outcome: 'outcome',
  /** RUNNER_TEMP/build-cell work directory of this step. */
  work: 'work',
  /** The session the main step started (its name): the post step ends it. */
  session: 'session',
} as const;
