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
 *  - workflow commands (::error::, ::warning::, ::group::, ::add-mask::...)
 *    parsed from both output streams, honouring ::stop-commands::.
 */
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fakeRuntimeToken, runtimeTokenIds } from './results-service.js';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/* ------------------------------------------------------------------------- */
/* action.yml                                                                */
/* ------------------------------------------------------------------------- */

export interface ActionInput {
  description?: string;
  required?: boolean;
  default?: string;
}

export interface ActionMetadata {
  name?: string;
  inputs: Record<string, ActionInput>;
  outputs: string[];
  /** runs.using, runs.main, runs.post, runs.post-if, runs.pre... */
  runs: Record<string, string>;
}

/** A YAML scalar as action.yml writes them: plain, 'single' or "double" quoted. */
function yamlScalar(raw: string): string {
  const s = raw.trim();
  if (s.startsWith("'")) {
    const end = s.lastIndexOf("'");
    return s.slice(1, end > 0 ? end : undefined).replace(/''/g, "'");
  }
  if (s.startsWith('"')) {
    const m = /^"((?:[^"\\]|\\.)*)"/.exec(s);
    if (m) return JSON.parse(`"${m[1]!.replace(/\\'/g, "'")}"`) as string;
  }
  // Plain scalar: a comment starts at " #".
  const hash = s.search(/\s#/);
  return (hash >= 0 ? s.slice(0, hash) : s).trim();
}

/**
 * A tiny reader for action.yml's simple structure (top-level maps, `inputs:` /
 * `outputs:` maps of maps, scalar values incl. quoted, folded plain and | / >
 * block scalars). Not a general YAML parser: anchors, flow collections and the
 * like are not needed by action metadata and are not supported.
 */
export function parseActionYml(text: string): ActionMetadata {
  const meta: ActionMetadata = { inputs: {}, outputs: [], runs: {} };
  const lines = text.split(/\r?\n/);
  let section = '';
  let item: string | undefined;
  let i = 0;
  const indentOf = (l: string): number => /^ */.exec(l)![0].length;
  const isBlank = (l: string): boolean => /^\s*(#.*)?$/.test(l);

  /** The value starting at `rest` on line i; may consume continuation lines. */
  const readValue = (rest: string, indent: number): string => {
    const r = rest.trim();
    const block = /^([|>])([+-]?)\s*(#.*)?$/.exec(r);
    if (block) {
      const body: string[] = [];
      let blockIndent = -1;
      while (i + 1 < lines.length && (lines[i + 1]!.trim() === '' || indentOf(lines[i + 1]!) > indent)) {
        i++;
        const l = lines[i]!;
        if (l.trim() === '') {
          body.push('');
          continue;
        }
        if (blockIndent < 0) blockIndent = indentOf(l);
        body.push(l.slice(blockIndent));
      }
      while (body.length && body[body.length - 1] === '') body.pop();
      const joined = block[1] === '|' ? body.join('\n') : body.join(' ').replace(/ ?\n ?/g, '\n');
      return block[2] === '-' ? joined : joined + '\n';
    }
    let value = r;
    // Folded plain / quoted continuation lines (more indented, not a key).
    while (
      i + 1 < lines.length &&
      !isBlank(lines[i + 1]!) &&
      indentOf(lines[i + 1]!) > indent &&
      !/^\s*[\w.-]+:(\s|$)/.test(lines[i + 1]!)
    ) {
      i++;
      value += ' ' + lines[i]!.trim();
    }
    return yamlScalar(value);
  };

  for (; i < lines.length; i++) {
    const line = lines[i]!;
    if (isBlank(line)) continue;
    const indent = indentOf(line);
    const m = /^\s*([^:#][^:]*?):(?:\s+(.*)|\s*)$/.exec(line);
    if (!m) continue;
    const key = m[1]!.trim().replace(/^['"]|['"]$/g, '');
    const rest = m[2] ?? '';
    if (indent === 0) {
      section = key;
      item = undefined;
      if (key === 'name' && rest) meta.name = readValue(rest, indent);
      continue;
    }
    if (section === 'inputs' || section === 'outputs') {
      if (indent === 2) {
        item = key;
        if (section === 'inputs') meta.inputs[key] = {};
        else meta.outputs.push(key);
      } else if (item && section === 'inputs' && indent === 4) {
        const input = meta.inputs[item]!;
        const value = readValue(rest, indent);
        if (key === 'default') input.default = value;
        else if (key === 'required') input.required = /^(true|yes|on)$/i.test(value);
        else if (key === 'description') input.description = value;
      } else if (indent >= 4 && rest) {
        readValue(rest, indent);
      }
    } else if (section === 'runs' && indent === 2) {
      meta.runs[key] = readValue(rest, indent);
    } else if (rest) {
      readValue(rest, indent);
    }
  }
  return meta;
}

export function readActionYml(actionDir = REPO_ROOT): ActionMetadata {
  for (const name of ['action.yml', 'action.yaml']) {
    const p = join(actionDir, name);
    if (existsSync(p)) return parseActionYml(readFileSync(p, 'utf8'));
  }
  throw new Error(`no action.yml in ${actionDir}`);
}

/** The env var the runner sets for an input: INPUT_ + name, spaces → '_', upper-cased (hyphens kept). */
export const inputEnvName = (name: string): string => `INPUT_${name.replace(/ /g, '_').toUpperCase()}`;

/* ------------------------------------------------------------------------- */
/* file commands                                                             */
/* ------------------------------------------------------------------------- */

/**
 * Parse a GITHUB_OUTPUT / GITHUB_ENV / GITHUB_STATE file with the runner's rules
 * (Runner.Worker FileCommandManager): lines split on LF; `NAME=VALUE` when '='
 * comes before any '<<'; else `NAME<<DELIMITER`, the value being the lines up to
 * a line equal to DELIMITER. Throws on the runner's errors.
 */
export function parseKeyValueFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line === '') continue;
    const eq = line.indexOf('=');
    const heredoc = line.indexOf('<<');
    if (eq >= 0 && (heredoc < 0 || eq < heredoc)) {
      const name = line.slice(0, eq);
      if (!name) throw new Error(`Invalid format '${line}'. Name must not be empty`);
      out[name] = line.slice(eq + 1);
    } else if (heredoc >= 0) {
      const name = line.slice(0, heredoc);
      const delimiter = line.slice(heredoc + 2);
      if (!name || !delimiter) throw new Error(`Invalid format '${line}'. Name must not be empty and delimiter must not be empty`);
      const value: string[] = [];
      for (;;) {
        i++;
        if (i >= lines.length) throw new Error(`Invalid value. Matching delimiter not found '${delimiter}'`);
        if (lines[i] === delimiter) break;
        value.push(lines[i]!);
      }
      out[name] = value.join('\n');
    } else {
      throw new Error(`Invalid format '${line}'`);
    }
  }
  return out;
}

/** GITHUB_PATH: one directory per non-empty line, in file order. */
export const parsePathFile = (text: string): string[] => text.split('\n').filter((l) => l !== '');

/** PATH after the runner prepends GITHUB_PATH entries (the last one added comes first). */
export function prependPath(entries: string[], path: string | undefined): string {
  const prepend: string[] = [];
  for (const e of entries) {
    const at = prepend.indexOf(e);
    if (at >= 0) prepend.splice(at, 1);
    prepend.push(e);
  }
  return [...prepend.reverse(), ...(path ? [path] : [])].join(':');
}

/* ------------------------------------------------------------------------- */
/* workflow commands                                                         */
/* ------------------------------------------------------------------------- */

export interface WorkflowCommand {
  command: string;
  properties: Record<string, string>;
  message: string;
  step: 'main' | 'post';
  stream: 'stdout' | 'stderr';
}

const unescapeData = (s: string): string => s.replace(/%0D/g, '\r').replace(/%0A/g, '\n').replace(/%25/g, '%');
const unescapeProperty = (s: string): string =>
  s.replace(/%0D/g, '\r').replace(/%0A/g, '\n').replace(/%3A/g, ':').replace(/%2C/g, ',').replace(/%25/g, '%');

const KNOWN_COMMANDS = new Set([
  'error', 'warning', 'notice', 'debug', 'group', 'endgroup', 'add-mask', 'add-matcher',
  'remove-matcher', 'echo', 'stop-commands', 'save-state', 'set-output', 'set-env', 'add-path',
]);

/** `::cmd key=v,k2=v2::message` lines, as the runner's ActionCommand.TryParseV2 reads them. */
export function parseWorkflowCommands(
  text: string,
  step: 'main' | 'post' = 'main',
  stream: 'stdout' | 'stderr' = 'stdout',
): WorkflowCommand[] {
  const out: WorkflowCommand[] = [];
  let stopToken: string | undefined;
  for (const rawLine of text.split('\n')) {
    const line = rawLine.replace(/\r$/, '').trimStart();
    if (!line.startsWith('::')) continue;
    const end = line.indexOf('::', 2);
    if (end < 0) continue;
    const info = line.slice(2, end);
    const space = info.indexOf(' ');
    const command = space < 0 ? info : info.slice(0, space);
    if (stopToken !== undefined) {
      if (command === stopToken && space < 0) stopToken = undefined;
      continue;
    }
    if (!KNOWN_COMMANDS.has(command)) continue;
    const properties: Record<string, string> = {};
    if (space >= 0) {
      for (const prop of info.slice(space + 1).split(',')) {
        const eq = prop.indexOf('=');
        if (eq > 0) properties[prop.slice(0, eq).trim()] = unescapeProperty(prop.slice(eq + 1));
      }
    }
    const message = unescapeData(line.slice(end + 2));
    if (command === 'stop-commands') {
      stopToken = message;
      continue;
    }
    out.push({ command, properties, message, step, stream });
  }
  return out;
}

/* ------------------------------------------------------------------------- */
/* runAction                                                                 */
/* ------------------------------------------------------------------------- */

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

export interface StepResult {
  step: 'main' | 'post';
  script: string;
  pid: number | undefined;
  /** Exit code, or null when killed by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  durationMs: number;
  timedOut: boolean;
  /** Signals the harness sent: which, ms since the step started, to which PID. */
  signalsSent: { signal: NodeJS.Signals; atMs: number; pid: number }[];
  outputs: Record<string, string>;
  env: Record<string, string>;
  path: string[];
  summary: string;
  state: Record<string, string>;
  commands: WorkflowCommand[];
  /** Problems the runner would report processing the file commands (they fail the step). */
  fileCommandErrors: string[];
  /** The environment the step ran with. */
  processEnv: Record<string, string>;
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

// Per-job runner variables from an enclosing CI job (GITHUB_OUTPUT, GITHUB_TOKEN...), and
// vitest's / npm's own markers, must not leak into the step.
const STRIP_PREFIXES = ['GITHUB_', 'RUNNER_', 'ACTIONS_', 'INPUT_', 'STATE_', 'VITEST', 'npm_'];
const SIGINT_TIMEOUT_MS = 7_500;
const SIGTERM_TIMEOUT_MS = 2_500;
const STREAM_DRAIN_MS = 5_000;
const SUMMARY_LIMIT = 128 * 1024;

/** The test process's env without anything a runner would set per job, or vitest's markers. */
function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || STRIP_PREFIXES.some((p) => k.startsWith(p))) continue;
    if ((k === 'NODE_ENV' && v === 'test') || (k === 'TEST' && v === 'true')) continue;
    env[k] = v;
  }
  return env;
}

interface FileCommandPaths {
  GITHUB_OUTPUT: string;
  GITHUB_ENV: string;
  GITHUB_PATH: string;
  GITHUB_STEP_SUMMARY: string;
  GITHUB_STATE: string;
}

/** Fresh, empty file-command files for one step, named like the runner's. */
async function createFileCommands(dir: string, shared: boolean): Promise<FileCommandPaths> {
  await mkdir(dir, { recursive: true, mode: shared ? 0o777 : 0o755 });
  if (shared) await chmod(dir, 0o777);
  const suffix = randomUUID();
  const paths: FileCommandPaths = {
    GITHUB_OUTPUT: join(dir, `set_output_${suffix}`),
    GITHUB_ENV: join(dir, `set_env_${suffix}`),
    GITHUB_PATH: join(dir, `add_path_${suffix}`),
    GITHUB_STEP_SUMMARY: join(dir, `step_summary_${suffix}`),
    GITHUB_STATE: join(dir, `save_state_${suffix}`),
  };
  for (const p of Object.values(paths)) {
    await writeFile(p, '');
    if (shared) await chmod(p, 0o666);
  }
  return paths;
}

async function readFileCommands(paths: FileCommandPaths): Promise<
  Pick<StepResult, 'outputs' | 'env' | 'path' | 'summary' | 'state' | 'fileCommandErrors'>
> {
  const errors: string[] = [];
  const read = async (p: string): Promise<string> => readFile(p, 'utf8').catch(() => '');
  const kv = async (name: keyof FileCommandPaths): Promise<Record<string, string>> => {
    try {
      return parseKeyValueFile(await read(paths[name]));
    } catch (err) {
      errors.push(`Unable to process file command '${name}' successfully: ${(err as Error).message}`);
      return {};
    }
  };
  const outputs = await kv('GITHUB_OUTPUT');
  const env = await kv('GITHUB_ENV');
  const state = await kv('GITHUB_STATE');
  const path = parsePathFile(await read(paths.GITHUB_PATH));
  const summary = await read(paths.GITHUB_STEP_SUMMARY);
  if (Buffer.byteLength(summary) > SUMMARY_LIMIT) {
    errors.push(`$GITHUB_STEP_SUMMARY supports content up a size of ${SUMMARY_LIMIT / 1024}k got ${Math.floor(Buffer.byteLength(summary) / 1024)}k`);
  }
  return { outputs, env, path, summary, state, fileCommandErrors: errors };
}

/** ppid → child PIDs, from /proc. */
function processChildren(): Map<number, number[]> {
  const map = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // pid (comm) state ppid ...: comm may contain spaces and parentheses.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = map.get(ppid) ?? [];
      list.push(Number(name));
      map.set(ppid, list);
    } catch {
      /* exited meanwhile */
    }
  }
  return map;
}

/**
 * The process in `root`'s tree (root included) running `node <script>`: argv[1] is the
 * script (a wrapper such as runuser has the script further along its own argv).
 */
export function findScriptProcess(root: number, script: string): number | undefined {
  const children = processChildren();
  const queue = [root];
  while (queue.length) {
    const pid = queue.shift()!;
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (argv[1] === script) return pid;
    } catch {
      /* exited */
    }
    queue.push(...(children.get(pid) ?? []));
  }
  return undefined;
}

interface SpawnStepOptions {
  step: 'main' | 'post';
  command: string[];
  script: string;
  /** Signal the process running `script` rather than the spawned (wrapper) PID. */
  signalScriptProcess: boolean;
  cwd: string;
  env: Record<string, string>;
  signalAfterMs?: number;
  signal: 'SIGINT' | 'SIGTERM';
  escalate: boolean;
  timeoutMs: number;
}

function spawnStep(o: SpawnStepOptions): Promise<Omit<StepResult, 'outputs' | 'env' | 'path' | 'summary' | 'state' | 'fileCommandErrors' | 'commands'>> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(o.command[0]!, o.command.slice(1), { cwd: o.cwd, env: o.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout!.on('data', (d: Buffer) => stdout.push(d));
    child.stderr!.on('data', (d: Buffer) => stderr.push(d));
    const signalsSent: { signal: NodeJS.Signals; atMs: number; pid: number }[] = [];
    const timers: NodeJS.Timeout[] = [];
    let exited = false;
    let timedOut = false;
    const send = (signal: NodeJS.Signals): void => {
      if (exited || child.pid === undefined) return;
      // One PID, as the runner does (kill(pid, sig), not the process group).
      const pid = (o.signalScriptProcess && findScriptProcess(child.pid, o.script)) || child.pid;
      try {
        process.kill(pid, signal);
        signalsSent.push({ signal, atMs: Date.now() - started, pid });
      } catch {
        /* gone */
      }
    };
    if (o.signalAfterMs !== undefined) {
      timers.push(
        setTimeout(() => {
          send(o.signal);
          if (!o.escalate) return;
          if (o.signal === 'SIGINT') {
            timers.push(
              setTimeout(() => {
                send('SIGTERM');
                timers.push(setTimeout(() => send('SIGKILL'), SIGTERM_TIMEOUT_MS));
              }, SIGINT_TIMEOUT_MS),
            );
          } else {
            timers.push(setTimeout(() => send('SIGKILL'), SIGTERM_TIMEOUT_MS));
          }
        }, o.signalAfterMs),
      );
    }
    timers.push(
      setTimeout(() => {
        timedOut = true;
        send('SIGKILL');
      }, o.timeoutMs),
    );
    let settled = false;
    const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (settled) return;
      settled = true;
      for (const t of timers) clearTimeout(t);
      resolve({
        step: o.step,
        script: o.script,
        pid: child.pid,
        code,
        signal,
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
        durationMs: Date.now() - started,
        timedOut,
        signalsSent,
        processEnv: o.env,
      });
    };
    child.once('error', (err) => {
      for (const t of timers) clearTimeout(t);
      if (!settled) {
        settled = true;
        reject(new Error(`cannot run ${o.command.join(' ')}: ${err.message}`));
      }
    });
    child.once('exit', (code, signal) => {
      exited = true;
      // Like the runner: wait for the output streams to close, at most 5 s after exit
      // (a leftover background process may hold them open).
      const drain = setTimeout(() => {
        child.stdout!.destroy();
        child.stderr!.destroy();
        finish(code, signal);
      }, STREAM_DRAIN_MS);
      child.once('close', () => {
        clearTimeout(drain);
        finish(code, signal);
      });
    });
  });
}

/** `command -v NAME` on `path` (the runner resolves a custom shell's program so). */
function findOnPath(name: string, path: string): string | undefined {
  if (name.includes('/')) return existsSync(name) ? name : undefined;
  for (const dir of path.split(':')) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

const randomDigits = (n: number): string =>
  Array.from(randomBytes(n), (b, i) => String(i === 0 ? (b % 9) + 1 : b % 10)).join('');

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
    const workspace = options.workspace ? resolvePath(options.workspace) : await mkShared(join(dir, 'work', 'repo', 'repo'));
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

    // Inputs: action.yml defaults, then the given values.
    const inputs: Record<string, string> = {};
    for (const [name, input] of Object.entries(meta.inputs)) {
      if (input.default !== undefined) inputs[name] = input.default;
    }
    const unexpectedInputs: string[] = [];
    for (const [name, value] of Object.entries(options.inputs ?? {})) {
      if (!(name in meta.inputs)) unexpectedInputs.push(name);
      inputs[name] = String(value);
    }

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

    const refName = ref.replace(/^refs\/(heads|tags)\//, '');
    const context: Record<string, string> = {
      CI: 'true',
      GITHUB_ACTIONS: 'true',
      GITHUB_ACTION: options.action ?? 'build-cell',
      GITHUB_ACTION_PATH: actionDir,
      GITHUB_ACTION_REPOSITORY: 'metalor/build-cell',
      GITHUB_ACTION_REF: 'v1',
      GITHUB_ACTOR: 'octocat',
      GITHUB_ACTOR_ID: '583231',
      GITHUB_TRIGGERING_ACTOR: 'octocat',
      GITHUB_API_URL: 'https://api.github.com',
      GITHUB_GRAPHQL_URL: 'https://api.github.com/graphql',
      GITHUB_SERVER_URL: 'https://github.com',
      GITHUB_EVENT_NAME: options.eventName ?? 'push',
      GITHUB_EVENT_PATH: eventPath,
      GITHUB_JOB: options.job ?? 'build',
      GITHUB_REF: ref,
      GITHUB_REF_NAME: refName,
      GITHUB_REF_TYPE: ref.startsWith('refs/tags/') ? 'tag' : 'branch',
      GITHUB_REF_PROTECTED: 'false',
      GITHUB_REPOSITORY: repository,
      GITHUB_REPOSITORY_OWNER: repository.split('/')[0]!,
      GITHUB_REPOSITORY_ID: '123456789',
      GITHUB_REPOSITORY_OWNER_ID: '987654',
      GITHUB_RETENTION_DAYS: '90',
      GITHUB_RUN_ID: options.runId ?? randomDigits(10),
      GITHUB_RUN_NUMBER: '1',
      GITHUB_RUN_ATTEMPT: String(options.runAttempt ?? 1),
      GITHUB_SHA: sha,
      GITHUB_WORKFLOW: 'CI',
      GITHUB_WORKFLOW_REF: `${repository}/.github/workflows/ci.yml@${ref}`,
      GITHUB_WORKFLOW_SHA: sha,
      GITHUB_WORKSPACE: workspace,
      RUNNER_ARCH: 'X64',
      RUNNER_OS: 'Linux',
      RUNNER_NAME: 'GitHub Actions 1',
      RUNNER_ENVIRONMENT: 'github-hosted',
      RUNNER_TEMP: runnerTemp,
      RUNNER_TOOL_CACHE: toolCache,
      RUNNER_WORKSPACE: dirname(workspace),
    };
    if (options.debug) {
      context.RUNNER_DEBUG = '1';
      context.ACTIONS_STEP_DEBUG = 'true';
    }
    if (options.results && token) {
      context.ACTIONS_RESULTS_URL = options.results.url;
      context.ACTIONS_RUNTIME_TOKEN = token;
      // Without it @actions/cache uses the legacy v1 service at ACTIONS_CACHE_URL.
      context.ACTIONS_CACHE_SERVICE_V2 = 'True';
    }

    const node = options.node ?? process.execPath;
    const timeoutMs = options.timeoutMs ?? 15 * 60_000;

    const runOne = async (
      step: 'main' | 'post',
      script: string,
      extra: { env: Record<string, string>; path: string[]; state: Record<string, string> },
      signalAfterMs: number | undefined,
    ): Promise<StepResult> => {
      const files = await createFileCommands(fileCommandDir, shared);
      const env: Record<string, string> = { ...baseEnv(), ...context, ...extra.env };
      if (extra.path.length) env.PATH = prependPath(extra.path, env.PATH);
      for (const [name, value] of Object.entries(inputs)) env[inputEnvName(name)] = value;
      for (const [name, value] of Object.entries(extra.state)) env[`STATE_${name}`] = value;
      Object.assign(env, files);
      for (const [k, v] of Object.entries(options.env ?? {})) {
        if (v === undefined) delete env[k];
        else env[k] = v;
      }
      const ran = await spawnStep({
        step,
        command: [...(options.wrapper ?? []), node, script],
        script,
        signalScriptProcess: shared && (options.signalTarget ?? 'node') === 'node',
        cwd: workspace,
        env,
        ...(signalAfterMs !== undefined ? { signalAfterMs } : {}),
        signal: options.signal ?? 'SIGINT',
        escalate: options.escalate ?? true,
        timeoutMs,
      });
      const parsed = await readFileCommands(files);
      const commands = [
        ...parseWorkflowCommands(ran.stdout, step, 'stdout'),
        ...parseWorkflowCommands(ran.stderr, step, 'stderr'),
      ];
      return { ...ran, ...parsed, commands };
    };

    const main = await runOne('main', mainScript, { env: {}, path: [], state: {} }, options.signalAfterMs);
    // What earlier steps set with GITHUB_ENV and GITHUB_PATH, as the runner carries it on.
    const carried = { env: { ...main.env }, path: [...main.path] };
    const workflowSteps: Array<StepResult | undefined> = [];
    for (const [i, step] of (options.steps ?? []).entries()) {
      if ('host' in step) {
        await step.host(workspace);
        workflowSteps.push(undefined);
        continue;
      }
      const files = await createFileCommands(fileCommandDir, shared);
      const env: Record<string, string> = { ...baseEnv(), ...context, ...carried.env, ...step.env, ...files };
      if (carried.path.length) env.PATH = prependPath(carried.path, env.PATH);
      for (const [k, v] of Object.entries(options.env ?? {})) {
        if (v === undefined) delete env[k];
        else env[k] = v;
      }
      const scriptFile = join(runnerTemp, `step-${i}-${randomUUID()}.sh`);
      await writeFile(scriptFile, step.run);
      if (shared) await chmod(scriptFile, 0o644);
      const words = (step.shell ?? 'bash -e {0}').split(/\s+/).filter(Boolean);
      const program = findOnPath(words[0]!, env.PATH ?? '');
      if (!program) throw new Error(`step ${i}: shell ${words[0]} is not on the step's PATH (${env.PATH}); main said:\n${main.stdout}\n${main.stderr}`);
      const ran = await spawnStep({
        step: 'main', command: [...(options.wrapper ?? []), program, ...words.slice(1).map((w) => w.replace('{0}', scriptFile))], script: scriptFile,
        signalScriptProcess: false, cwd: workspace, env, signal: options.signal ?? 'SIGINT', escalate: options.escalate ?? true,
        timeoutMs: step.timeoutMs ?? timeoutMs, ...(step.signalAfterMs !== undefined ? { signalAfterMs: step.signalAfterMs } : {}),
      });
      const parsed = await readFileCommands(files);
      const commands = [...parseWorkflowCommands(ran.stdout, 'main', 'stdout'), ...parseWorkflowCommands(ran.stderr, 'main', 'stderr')];
      Object.assign(carried.env, parsed.env);
      carried.path.push(...parsed.path);
      workflowSteps.push({ ...ran, ...parsed, commands });
    }
    let post: StepResult | undefined;
    if (postScript) {
      // post-if: always() — runs after success, failure and cancellation alike.
      post = await runOne('post', postScript, { env: carried.env, path: carried.path, state: main.state }, undefined);
    }

    const steps = post ? [main, post] : [main];
    const commands = steps.flatMap((s) => s.commands);
    const messages = (c: string): string[] => commands.filter((x) => x.command === c).map((x) => x.message);
    const result: ActionRun = {
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
