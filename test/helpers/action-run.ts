/**
 * What runAction (action-harness.ts) returns for a test to inspect: each step's
 * process, file commands and workflow commands, and the action's run merged as
 * a workflow sees it (main's outputs, both steps' env, PATH, summary, errors...).
 */
import type { FileCommandResults, WorkflowCommand } from './runner-commands.js';
import type { SpawnedStep } from './step-process.js';

export interface StepResult extends SpawnedStep, FileCommandResults {
  commands: WorkflowCommand[];
}

export interface ActionRun {
  mainCode: number | null;
  /** null when the post step did not run. */
  postCode: number | null;
  /** Both steps' output, main then post. */
  stdout: string;
  stderr: string;
  /** main's GITHUB_OUTPUT (post-step outputs are not visible to a workflow). */
  outputs: Record<string, string>;
  /** GITHUB_ENV of main then post, merged. */
  env: Record<string, string>;
  /** GITHUB_PATH lines of main then post. */
  path: string[];
  /** GITHUB_STEP_SUMMARY of main then post. */
  summary: string;
  /** main's GITHUB_STATE (what post received as STATE_<name>). */
  state: Record<string, string>;
  commands: WorkflowCommand[];
  errors: string[];
  warnings: string[];
  notices: string[];
  /** ::group:: titles in order. */
  groups: string[];
  debug: string[];
  masks: string[];
  /** Inputs given that action.yml does not declare (the runner warns about them). */
  unexpectedInputs: string[];
  /** Outputs written that action.yml does not declare. */
  undeclaredOutputs: string[];
  main: StepResult;
  /** The `steps` (a host step's entry is undefined). */
  steps: Array<StepResult | undefined>;
  post?: StepResult;
  workspace: string;
  runnerTemp: string;
  toolCache: string;
  /** The harness's temp dir (removed unless keepTemp). */
  dir: string;
  runBackendId?: string;
  jobBackendId?: string;
  /** Remove the harness temp dir (idempotent; already done unless keepTemp). */
  cleanup(): Promise<void>;
}

/** What the action's main and post steps said, merged: the part of ActionRun read from them. */
export type StepsReport = Pick<
  ActionRun,
  | 'mainCode'
  | 'postCode'
  | 'stdout'
  | 'stderr'
  | 'outputs'
  | 'env'
  | 'path'
  | 'summary'
  | 'state'
  | 'commands'
  | 'errors'
  | 'warnings'
  | 'notices'
  | 'groups'
  | 'debug'
  | 'masks'
>;

export function reportSteps(main: StepResult, post: StepResult | undefined): StepsReport {
  const steps = post ? [main, post] : [main];
  const commands = steps.flatMap((s) => s.commands);
  const messages = (c: string): string[] => commands.filter((x) => x.command === c).map((x) => x.message);
  return {
    mainCode: main.code,
    postCode: post ? post.code : null,
    stdout: steps.map((s) => s.stdout).join(''),
    stderr: steps.map((s) => s.stderr).join(''),
    outputs: main.outputs,
    env: Object.assign({}, ...steps.map((s) => s.env)) as Record<string, string>,
    path: steps.flatMap((s) => s.path),
    summary: steps.map((s) => s.summary).join(''),
    state: main.state,
    commands,
    errors: messages('error'),
    warnings: messages('warning'),
    notices: messages('notice'),
    groups: messages('group'),
    debug: messages('debug'),
    masks: messages('add-mask'),
  };
}
