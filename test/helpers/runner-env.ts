/**
 * The environment the action harness (action-harness.ts) gives a step, as the
 * runner does: the test process's own env without per-job variables, the GitHub
 * context (GITHUB_*, RUNNER_*, CI) and, with a results service,
 * ACTIONS_RESULTS_URL / ACTIONS_RUNTIME_TOKEN / ACTIONS_CACHE_SERVICE_V2; and a
 * `run:` step's shell looked up on the step's PATH.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

// Per-job runner variables from an enclosing CI job (GITHUB_OUTPUT, GITHUB_TOKEN...), and
// vitest's / npm's own markers, must not leak into the step.
const STRIP_PREFIXES = ['GITHUB_', 'RUNNER_', 'ACTIONS_', 'INPUT_', 'STATE_', 'VITEST', 'npm_'];

/** The test process's env without anything a runner would set per job, or vitest's markers. */
export function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || STRIP_PREFIXES.some((p) => k.startsWith(p))) continue;
    if ((k === 'NODE_ENV' && v === 'test') || (k === 'TEST' && v === 'true')) continue;
    env[k] = v;
  }
  return env;
}

const randomDigits = (n: number): string =>
  Array.from(randomBytes(n), (b, i) => String(i === 0 ? (b % 9) + 1 : b % 10)).join('');

export interface GithubContextOptions {
  /** GITHUB_ACTION_PATH. */
  actionDir: string;
  workspace: string;
  runnerTemp: string;
  toolCache: string;
  /** GITHUB_EVENT_PATH. */
  eventPath: string;
  repository: string;
  sha: string;
  ref: string;
  /** GITHUB_ACTION (the step id; default build-cell). */
  action?: string;
  eventName?: string;
  job?: string;
  /** GITHUB_RUN_ID (default 10 random digits). */
  runId?: string;
  runAttempt?: number;
  /** RUNNER_DEBUG=1 and ACTIONS_STEP_DEBUG. */
  debug?: boolean;
  /** The results service and the runtime token for it. */
  results?: { url: string; token: string };
}

/** The GitHub context env of every step of the job. */
export function githubContext(o: GithubContextOptions): Record<string, string> {
  const { workspace, repository, sha, ref } = o;
  const refName = ref.replace(/^refs\/(heads|tags)\//, '');
  const context: Record<string, string> = {
    CI: 'true',
    GITHUB_ACTIONS: 'true',
    GITHUB_ACTION: o.action ?? 'build-cell',
    GITHUB_ACTION_PATH: o.actionDir,
    GITHUB_ACTION_REPOSITORY: 'metalor/build-cell',
    GITHUB_ACTION_REF: 'v1',
    GITHUB_ACTOR: 'octocat',
    GITHUB_ACTOR_ID: '583231',
    GITHUB_TRIGGERING_ACTOR: 'octocat',
    GITHUB_API_URL: 'https://api.github.com',
    GITHUB_GRAPHQL_URL: 'https://api.github.com/graphql',
    GITHUB_SERVER_URL: 'https://github.com',
    GITHUB_EVENT_NAME: o.eventName ?? 'push',
    GITHUB_EVENT_PATH: o.eventPath,
    GITHUB_JOB: o.job ?? 'build',
    GITHUB_REF: ref,
    GITHUB_REF_NAME: refName,
    GITHUB_REF_TYPE: ref.startsWith('refs/tags/') ? 'tag' : 'branch',
    GITHUB_REF_PROTECTED: 'false',
    GITHUB_REPOSITORY: repository,
    GITHUB_REPOSITORY_OWNER: repository.split('/')[0]!,
    GITHUB_REPOSITORY_ID: '123456789',
    GITHUB_REPOSITORY_OWNER_ID: '987654',
    GITHUB_RETENTION_DAYS: '90',
    GITHUB_RUN_ID: o.runId ?? randomDigits(10),
    GITHUB_RUN_NUMBER: '1',
    GITHUB_RUN_ATTEMPT: String(o.runAttempt ?? 1),
    GITHUB_SHA: sha,
    GITHUB_WORKFLOW: 'CI',
    GITHUB_WORKFLOW_REF: `${repository}/.github/workflows/ci.yml@${ref}`,
    GITHUB_WORKFLOW_SHA: sha,
    GITHUB_WORKSPACE: workspace,
    RUNNER_ARCH: 'X64',
    RUNNER_OS: 'Linux',
    RUNNER_NAME: 'GitHub Actions 1',
    RUNNER_ENVIRONMENT: 'github-hosted',
    RUNNER_TEMP: o.runnerTemp,
    RUNNER_TOOL_CACHE: o.toolCache,
    RUNNER_WORKSPACE: dirname(workspace),
  };
  if (o.debug) {
    context.RUNNER_DEBUG = '1';
    context.ACTIONS_STEP_DEBUG = 'true';
  }
  if (o.results) {
    context.ACTIONS_RESULTS_URL = o.results.url;
    context.ACTIONS_RUNTIME_TOKEN = o.results.token;
    // Without it @actions/cache uses the legacy v1 service at ACTIONS_CACHE_URL.
    context.ACTIONS_CACHE_SERVICE_V2 = 'True';
  }
  return context;
}

/** `command -v NAME` on `path` (the runner resolves a custom shell's program so). */
export function findOnPath(name: string, path: string): string | undefined {
  if (name.includes('/')) return existsSync(name) ? name : undefined;
  for (const dir of path.split(':')) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  return undefined;
}
