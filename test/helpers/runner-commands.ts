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
