/**
 * The environment of a session step run by the runner (`shell: build-cell {0}`): what the
 * workflow gave the step (its `env:`, the job's and the workflow's, GITHUB_ENV of earlier
 * steps) reaches the cell; the runner's internals, the host's own variables (PATH, HOME, the
 * machine's environment) and the runtime tokens (ACTIONS_*) never do. The machine's
 * environment is the runner process's own (the step's parent): a variable with the same value
 * there is the machine's, not the workflow's. Pure.
 */
import { PASSED_GITHUB_VARS } from '../github/variables.js';

/** Names that belong to the runner or to this host, whatever their value. */
const RUNNER_PREFIXES = /^(GITHUB_|RUNNER_|ACTIONS_|INPUT_|STATE_|BUILD_CELL_|XDG_|SUDO_|LD_)/;
const HOST_ONLY = new Set([
  'PATH',
  'HOME',
  'USER',
  'LOGNAME',
  'SHELL',
  'PWD',
  'OLDPWD',
  'SHLVL',
  '_',
  'HOSTNAME',
  'MAIL',
  'TMPDIR',
  'INVOCATION_ID',
  'JOURNAL_STREAM',
  'NODE_OPTIONS',
  'NODE_EXTRA_CA_CERTS',
]);

export function stepEnvironment(step: NodeJS.ProcessEnv, machine: Record<string, string>): Array<[string, string]> {
  const passed = new Set(PASSED_GITHUB_VARS);
  const out: Array<[string, string]> = [];
  for (const [name, value] of Object.entries(step)) {
    if (value === undefined) continue;
    if (passed.has(name)) {
      out.push([name, value]);
      continue;
    }
    if (RUNNER_PREFIXES.test(name) || HOST_ONLY.has(name) || machine[name] === value) continue;
    out.push([name, value]);
  }
  return out.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** A process's environment from /proc (NUL-separated NAME=VALUE), or {} when unreadable. */
export function parseEnviron(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const entry of text.split('\0')) {
    const eq = entry.indexOf('=');
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return env;
}
