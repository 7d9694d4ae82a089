/**
 * Run the bundled GitHub Action (action.yml → runs.main / runs.post) the way the
 * GitHub Actions runner does, for integration tests:
 *
 *  - inputs: action.yml defaults applied, then INPUT_<NAME> env vars (name
 *    upper-cased, spaces → '_', hyphens kept: INPUT_ARTIFACT-NAME);
 *  - fresh file-command files per step (GITHUB_OUTPUT, GITHUB_ENV, GITHUB_PATH,
 *    GITHUB_STEP_SUMMARY, GITHUB_STATE) under RUNNER_TEMP/_runner_file_commands,
 *    parsed afterwards with the runner's rules (`name=value` and
 *    `name<<DELIMITER` heredocs);
 *  - the GitHub context env (GITHUB_*, RUNNER_*, CI) and, when given a results
 *    service, ACTIONS_RESULTS_URL / ACTIONS_RUNTIME_TOKEN / ACTIONS_CACHE_SERVICE_V2;
 *  - `node <main>` with cwd GITHUB_WORKSPACE, then — like `post-if: always()` —
 *    `node <post>` whatever main did, with main's saved state as STATE_<name>
 *    and main's GITHUB_ENV / GITHUB_PATH applied to its environment;
 *  - cancellation as the runner does it: SIGINT to the step's PID, SIGTERM after
 *    7.5 s, SIGKILL after 2.5 s more;
 *  - workflow commands (::error::, ::warning::, ::group::, ::add-mask::,
 *    ::set-output, ::save-state, and the V1 ##[cmd] form) parsed from both output
 *    streams in the order they arrived, honouring ::stop-commands:: for both;
 *    ::set-output and ::save-state set outputs and state, which the step's
 *    file commands (read after it) override.
 *
 * This file is the entry point (runAction, re-exporting the rest); action.yml is
 * read in action-yml.ts, a step's env built in runner-env.ts, file and workflow
 * commands in runner-commands.ts, the step's process run in step-process.ts,
 * and what a run returns is in action-run.ts.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join, resolve as resolvePath } from 'node:path';
import { reportSteps, type ActionRun, type StepResult } from './action-run.js';
import { inputEnvName, readActionYml, REPO_ROOT, resolveInputs } from './action-yml.js';
import {
  commandValues,
  createFileCommands,
  parseStepCommands,
  prependPath,
  readFileCommands,
  type FileCommandPaths,
} from './runner-commands.js';
import { baseEnv, findOnPath, githubContext } from './runner-env.js';
import { fakeRuntimeToken, runtimeTokenIds } from './runtime-token.js';
import { spawnStep, type SpawnStepOptions } from './step-process.js';

export type { ActionRun, StepResult } from './action-run.js';
export {
  inputEnvName,
  parseActionYml,
  readActionYml,
  REPO_ROOT,
  type ActionInput,
  type ActionMetadata,
} from './action-yml.js';
export {
  cellOutput,
  parseKeyValueFile,
  parsePathFile,
  parseWorkflowCommands,
  prependPath,
  type WorkflowCommand,
} from './runner-commands.js';
export { findScriptProcess } from './step-process.js';

export interface ResultsConnection {
  /** ACTIONS_RESULTS_URL (startResultsService().url). */
  url: string;
  /** ACTIONS_RUNTIME_TOKEN; default fakeRuntimeToken(runBackendId, jobBackendId). */
  token?: string;
  runBackendId?: string;
  jobBackendId?: string;
}

export interface RunActionOptions {
  /** `with:` inputs. Values are stringified; action.yml defaults fill the rest. */
  inputs?: Record<string, string | number | boolean>;
  /** Directory holding action.yml (default the repository root). */
  actionDir?: string;
  /** Override runs.main / runs.post (absolute, or relative to actionDir). post: null = none. */
  mainScript?: string;
  postScript?: string | null;
  /** Do not run the post step. */
  skipPost?: boolean;
  /** Node binary (default the one running the tests; pass a Node 24 for `using: node24`). */
  node?: string;
  /** GITHUB_WORKSPACE (default a fresh temp dir, removed afterwards unless keepTemp). */
  workspace?: string;
  /** RUNNER_TEMP (default a fresh temp dir). */
  runnerTemp?: string;
  /** RUNNER_TOOL_CACHE (default a fresh temp dir); pass one to share it across runs. */
  toolCache?: string;
  /** Cache and artifact backend; without it ACTIONS_RESULTS_URL etc. are not set. */
  results?: ResultsConnection;
  /** Extra environment, applied last (undefined removes a variable). */
  env?: Record<string, string | undefined>;
  /** RUNNER_DEBUG=1 (core.isDebug(), ::debug:: shown). */
  debug?: boolean;
  /** Send `signal` to main's PID this long after it started (a cancelled job). */
  signalAfterMs?: number;
  /** SIGINT (the runner's first signal, default) or SIGTERM. */
  signal?: 'SIGINT' | 'SIGTERM';
  /** Escalate like the runner: SIGINT → 7.5 s → SIGTERM → 2.5 s → SIGKILL (default true). */
  escalate?: boolean;
  /** Prefix for the node command, e.g. ['runuser', '-u', 'someone', '--']. Makes the harness temp dirs world-writable. */
  wrapper?: string[];
  /**
   * Who gets the cancellation signals when there is a wrapper: 'node' (default) the
   * wrapped node process running the script, as the runner would signal the action;
   * 'wrapper' the wrapper's PID. (runuser ignores SIGINT without forwarding it, and
   * answers SIGTERM by forwarding it and SIGKILLing the child 2 s later.)
   */
  signalTarget?: 'node' | 'wrapper';
  /** Per-step limit; the step is SIGKILLed when it is exceeded (default 15 min). */
  timeoutMs?: number;
  /** GitHub context overrides. */
  runId?: string;
  runAttempt?: number;
  repository?: string;
  sha?: string;
  ref?: string;
  job?: string;
  /** GITHUB_ACTION (the step id). */
  action?: string;
  eventName?: string;
  /** Payload written to GITHUB_EVENT_PATH. */
  event?: Record<string, unknown>;
  /** Keep the harness temp dir (file commands, default workspace/temp/tool cache). */
  keepTemp?: boolean;
  /**
   * Workflow steps between main and post, run as the runner runs `run:` steps: the script in a
   * file under RUNNER_TEMP, `shell` (default `bash -e {0}`) with its program looked up on the
   * step's PATH (GITHUB_PATH of earlier steps first) and `{0}` replaced by that file, the step's
   * own `env`, GITHUB_ENV of earlier steps, and fresh file-command files. A `host` function
   * instead runs in the test, with the workspace (a host step in between).
   */
  steps?: WorkflowStep[];
}

export type WorkflowStep =
  | { run: string; shell?: string; env?: Record<string, string>; signalAfterMs?: number; timeoutMs?: number }
  | { host: (workspace: string) => Promise<void> | void };

/**
 * Run the action's main and post steps like the GitHub runner. See RunActionOptions;
 * everything is optional: `await runAction({ inputs: { image: 'busybox' }, results })`.
 */
export async function runAction(options: RunActionOptions = {}): Promise<ActionRun> {
  const actionDir = resolvePath(options.actionDir ?? REPO_ROOT);
  const meta = readActionYml(actionDir);
  const shared = (options.wrapper?.length ?? 0) > 0;
  const resolveScript = (p: string): string => (isAbsolute(p) ? p : join(actionDir, p));
  const mainScript = resolveScript(options.mainScript ?? meta.runs.main ?? 'dist/main.js');
  const postRel = options.postScript === undefined ? meta.runs.post : (options.postScript ?? undefined);
  const postScript = postRel && !options.skipPost ? resolveScript(postRel) : undefined;

  const dir = await mkdtemp(join(tmpdir(), 'build-cell-action-'));
  let cleaned = false;
  const cleanup = async (): Promise<void> => {
    if (cleaned) return;
    cleaned = true;
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const mkShared = async (p: string): Promise<string> => {
      await mkdir(p, { recursive: true });
      if (shared) await chmod(p, 0o777);
      return p;
    };
    if (shared) await chmod(dir, 0o777);
    const workspace = options.workspace
      ? resolvePath(options.workspace)
      : await mkShared(join(dir, 'work', 'repo', 'repo'));
    await mkdir(workspace, { recursive: true });
    const runnerTemp = options.runnerTemp ?? (await mkShared(join(dir, 'temp')));
    const toolCache = options.toolCache ?? (await mkShared(join(dir, 'toolcache')));
    const fileCommandDir = join(dir, 'temp', '_runner_file_commands');
    const eventPath = join(dir, 'event.json');
    const repository = options.repository ?? 'metalor/build-cell';
    const sha = options.sha ?? randomBytes(20).toString('hex');
    const ref = options.ref ?? 'refs/heads/main';
    const event = options.event ?? {
      ref,
      after: sha,
      repository: { full_name: repository, name: repository.split('/')[1], owner: { login: repository.split('/')[0] } },
    };
    await writeFile(eventPath, JSON.stringify(event));
    if (shared) await chmod(eventPath, 0o644);

    const { inputs, unexpectedInputs } = resolveInputs(meta, options.inputs);

    let runBackendId: string | undefined;
    let jobBackendId: string | undefined;
    let token: string | undefined;
    if (options.results) {
      runBackendId = options.results.runBackendId ?? randomUUID();
      jobBackendId = options.results.jobBackendId ?? randomUUID();
      token = options.results.token ?? fakeRuntimeToken(runBackendId, jobBackendId);
      const ids = runtimeTokenIds(token);
      if (ids) ({ runBackendId, jobBackendId } = ids);
    }

    const context = githubContext({
      actionDir,
      workspace,
      runnerTemp,
      toolCache,
      eventPath,
      repository,
      sha,
      ref,
      action: options.action,
      eventName: options.eventName,
      job: options.job,
      runId: options.runId,
      runAttempt: options.runAttempt,
      debug: options.debug,
      ...(options.results && token ? { results: { url: options.results.url, token } } : {}),
    });

    const node = options.node ?? process.execPath;
    const timeoutMs = options.timeoutMs ?? 15 * 60_000;
    const wrapper = options.wrapper ?? [];

    /** Fresh file commands and the env of a step: the job's, `env` and `path` carried from earlier steps, then `vars`. */
    const prepareStep = async (
      env: Record<string, string>,
      path: string[],
      vars: Record<string, string> = {},
    ): Promise<{ files: FileCommandPaths; env: Record<string, string> }> => {
      const files = await createFileCommands(fileCommandDir, shared);
      const stepEnv: Record<string, string> = { ...baseEnv(), ...context, ...env };
      if (path.length) stepEnv.PATH = prependPath(path, stepEnv.PATH);
      Object.assign(stepEnv, vars, files);
      for (const [k, v] of Object.entries(options.env ?? {})) {
        if (v === undefined) delete stepEnv[k];
        else stepEnv[k] = v;
      }
      return { files, env: stepEnv };
    };

    /** Run a prepared step and read what it told the runner. */
    const runStep = async (
      files: FileCommandPaths,
      o: Omit<SpawnStepOptions, 'cwd' | 'signal' | 'escalate'>,
    ): Promise<StepResult> => {
      const ran = await spawnStep({
        ...o,
        cwd: workspace,
        signal: options.signal ?? 'SIGINT',
        escalate: options.escalate ?? true,
      });
      const parsed = await readFileCommands(files);
      const commands = parseStepCommands(ran.output, o.step);
      // The runner acts on ::set-output and ::save-state while the step runs, on its files after it.
      const outputs = { ...commandValues(commands, 'set-output'), ...parsed.outputs };
      const state = { ...commandValues(commands, 'save-state'), ...parsed.state };
      return { ...ran, ...parsed, outputs, state, commands };
    };

    /** The action's main or post step: `node <script>` with the inputs and, for post, main's state. */
    const runNode = async (
      step: 'main' | 'post',
      script: string,
      carried: { env: Record<string, string>; path: string[] },
      state: Record<string, string>,
      signalAfterMs: number | undefined,
    ): Promise<StepResult> => {
      const vars: Record<string, string> = {};
      for (const [name, value] of Object.entries(inputs)) vars[inputEnvName(name)] = value;
      for (const [name, value] of Object.entries(state)) vars[`STATE_${name}`] = value;
      const { files, env } = await prepareStep(carried.env, carried.path, vars);
      return runStep(files, {
        step,
        command: [...wrapper, node, script],
        script,
        signalScriptProcess: shared && (options.signalTarget ?? 'node') === 'node',
        env,
        signalAfterMs,
        timeoutMs,
      });
    };

    const main = await runNode('main', mainScript, { env: {}, path: [] }, {}, options.signalAfterMs);
    // What earlier steps set with GITHUB_ENV and GITHUB_PATH, as the runner carries it on.
    const carried = { env: { ...main.env }, path: [...main.path] };
    const workflowSteps: Array<StepResult | undefined> = [];
    for (const [i, step] of (options.steps ?? []).entries()) {
      if ('host' in step) {
        await step.host(workspace);
        workflowSteps.push(undefined);
        continue;
      }
      const { files, env } = await prepareStep({ ...carried.env, ...step.env }, carried.path);
      const scriptFile = join(runnerTemp, `step-${i}-${randomUUID()}.sh`);
      await writeFile(scriptFile, step.run);
      if (shared) await chmod(scriptFile, 0o644);
      const words = (step.shell ?? 'bash -e {0}').split(/\s+/).filter(Boolean);
      const program = findOnPath(words[0]!, env.PATH ?? '');
      if (!program)
        throw new Error(
          `step ${i}: shell ${words[0]} is not on the step's PATH (${env.PATH}); main said:\n${main.stdout}\n${main.stderr}`,
        );
      const ran = await runStep(files, {
        step: 'main',
        command: [...wrapper, program, ...words.slice(1).map((w) => w.replace('{0}', scriptFile))],
        script: scriptFile,
        signalScriptProcess: false,
        env,
        signalAfterMs: step.signalAfterMs,
        timeoutMs: step.timeoutMs ?? timeoutMs,
      });
      Object.assign(carried.env, ran.env);
      carried.path.push(...ran.path);
      workflowSteps.push(ran);
    }
    let post: StepResult | undefined;
    if (postScript) {
      // post-if: always() — runs after success, failure and cancellation alike.
      post = await runNode('post', postScript, carried, main.state, undefined);
    }

    const result: ActionRun = {
      ...reportSteps(main, post),
      unexpectedInputs,
      undeclaredOutputs: Object.keys(main.outputs).filter((k) => !meta.outputs.includes(k)),
      main,
      steps: workflowSteps,
      ...(post ? { post } : {}),
      workspace,
      runnerTemp,
      toolCache,
      dir,
      ...(runBackendId ? { runBackendId } : {}),
      ...(jobBackendId ? { jobBackendId } : {}),
      cleanup,
    };
    if (!options.keepTemp) await cleanup();
    return result;
  } catch (err) {
    await cleanup();
    throw err;
  }
}
