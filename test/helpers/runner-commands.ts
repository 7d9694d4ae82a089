/**
 * What a step tells the runner, read with the runner's rules, for the action
 * harness (action-harness.ts): the file commands (GITHUB_OUTPUT, GITHUB_ENV,
 * GITHUB_PATH, GITHUB_STEP_SUMMARY, GITHUB_STATE: fresh files per step, read
 * afterwards) and the workflow commands in its output (::error:: ...).
 */
import { randomUUID } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

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
      if (!name || !delimiter)
        throw new Error(`Invalid format '${line}'. Name must not be empty and delimiter must not be empty`);
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

export interface FileCommandPaths {
  GITHUB_OUTPUT: string;
  GITHUB_ENV: string;
  GITHUB_PATH: string;
  GITHUB_STEP_SUMMARY: string;
  GITHUB_STATE: string;
}

/** Fresh, empty file-command files for one step, named like the runner's. */
export async function createFileCommands(dir: string, shared: boolean): Promise<FileCommandPaths> {
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

const SUMMARY_LIMIT = 128 * 1024;

/** What a step wrote to its file commands. */
export interface FileCommandResults {
  outputs: Record<string, string>;
  env: Record<string, string>;
  path: string[];
  summary: string;
  state: Record<string, string>;
  /** Problems the runner would report processing the file commands (they fail the step). */
  fileCommandErrors: string[];
}

export async function readFileCommands(paths: FileCommandPaths): Promise<FileCommandResults> {
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
    errors.push(
      `$GITHUB_STEP_SUMMARY supports content up a size of ${SUMMARY_LIMIT / 1024}k got ${Math.floor(Buffer.byteLength(summary) / 1024)}k`,
    );
  }
  return { outputs, env, path, summary, state, fileCommandErrors: errors };
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
  'error',
  'warning',
  'notice',
  'debug',
  'group',
  'endgroup',
  'add-mask',
  'add-matcher',
  'remove-matcher',
  'echo',
  'stop-commands',
  'save-state',
  'set-output',
  'set-env',
  'add-path',
]);

/** The runner reads output with .NET's StreamReader.ReadLine: LF, CR LF or a lone CR ends a line. */
const LINE_BREAK = /\r\n|\r|\n/;

/** A parsed command line: `::cmd k=v,k2=v2::data` (V2) or `##[cmd k=v;k2=v2]data` (V1, still read by the runner). */
function parseCommandLine(rawLine: string): Omit<WorkflowCommand, 'step' | 'stream'> | undefined {
  const line = rawLine.trimStart();
  let info: string;
  let data: string;
  let separator: string;
  let unescape: (s: string) => string;
  if (line.startsWith('::')) {
    const end = line.indexOf('::', 2);
    if (end < 0) return undefined;
    [info, data, separator, unescape] = [line.slice(2, end), unescapeData(line.slice(end + 2)), ',', unescapeProperty];
  } else if (line.startsWith('##[')) {
    const end = line.indexOf(']', 3);
    if (end < 0) return undefined;
    [info, data, separator, unescape] = [line.slice(3, end), unescapeV1(line.slice(end + 1)), ';', unescapeV1];
  } else return undefined;
  const space = info.indexOf(' ');
  const command = (space < 0 ? info : info.slice(0, space)).toLowerCase();
  const properties: Record<string, string> = {};
  if (space >= 0) {
    for (const prop of info.slice(space + 1).split(separator)) {
      const eq = prop.indexOf('=');
      if (eq > 0) properties[prop.slice(0, eq).trim()] = unescape(prop.slice(eq + 1));
    }
  }
  return { command, properties, message: data };
}

const unescapeV1 = (s: string): string =>
  s.replace(/%3B/g, ';').replace(/%0D/g, '\r').replace(/%0A/g, '\n').replace(/%5D/g, ']').replace(/%25/g, '%');

/**
 * The runner's ActionCommandManager over a step's lines, in the order it reads them: command
 * names without regard to case; `stop-commands` stops everything (both streams: one state
 * per step) until a line whose command is the token, matched without regard to case.
 */
class CommandReader {
  readonly commands: WorkflowCommand[] = [];
  private stopToken: string | undefined;

  constructor(private readonly step: 'main' | 'post') {}

  line(text: string, stream: 'stdout' | 'stderr'): void {
    const parsed = parseCommandLine(text);
    if (!parsed) return;
    if (this.stopToken !== undefined) {
      if (parsed.command === this.stopToken.toLowerCase()) this.stopToken = undefined;
      return;
    }
    if (!KNOWN_COMMANDS.has(parsed.command)) return;
    if (parsed.command === 'stop-commands') {
      this.stopToken = parsed.message;
      return;
    }
    this.commands.push({ ...parsed, step: this.step, stream });
  }
}

/** `::cmd key=v,k2=v2::message` lines of one stream, as the runner's ActionCommand.TryParseV2 reads them. */
export function parseWorkflowCommands(
  text: string,
  step: 'main' | 'post' = 'main',
  stream: 'stdout' | 'stderr' = 'stdout',
): WorkflowCommand[] {
  const reader = new CommandReader(step);
  for (const line of text.split(LINE_BREAK)) reader.line(line, stream);
  return reader.commands;
}

/**
 * A step's commands from both its streams, read line by line in the order the output arrived
 * (as the runner reads them: one stop-commands state for both streams).
 */
export function parseStepCommands(
  chunks: Array<{ stream: 'stdout' | 'stderr'; text: string }>,
  step: 'main' | 'post',
): WorkflowCommand[] {
  const reader = new CommandReader(step);
  const pending = { stdout: '', stderr: '' };
  for (const { stream, text } of chunks) {
    const lines = (pending[stream] + text).split(LINE_BREAK);
    pending[stream] = lines.pop()!;
    for (const line of lines) reader.line(line, stream);
  }
  for (const stream of ['stderr', 'stdout'] as const) if (pending[stream]) reader.line(pending[stream], stream);
  return reader.commands;
}

/**
 * What the deprecated `::set-output` and `::save-state` commands set (the runner still honours
 * them), overridden by the step's file commands, which the runner reads after the step.
 */
export function commandValues(
  commands: WorkflowCommand[],
  command: 'set-output' | 'save-state',
): Record<string, string> {
  const values: Record<string, string> = {};
  for (const c of commands) if (c.command === command && c.properties.name) values[c.properties.name] = c.message;
  return values;
}

/**
 * What a cell printed in a step's stdout: the text between build-cell's `::stop-commands::TOKEN`
 * line and the `::TOKEN::` line that resumes commands (throws unless there is exactly one such window).
 */
export function cellOutput(stdout: string): string {
  const windows = [...stdout.matchAll(/^::stop-commands::(build-cell-[0-9a-f]{32})\n([^]*?)^::\1::\n/gm)];
  if (windows.length !== 1) throw new Error(`expected one stop-commands window in the step's output:\n${stdout}`);
  return windows[0]![2]!;
}
