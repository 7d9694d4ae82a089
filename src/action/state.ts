/** Names of the values the main step hands to the post step (core.saveState / getState). */
export const STATE = {
  mode: 'mode',
  scratch: 'scratch',
} as const;
