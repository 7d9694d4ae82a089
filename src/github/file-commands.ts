/**
 * GITHUB_OUTPUT, GITHUB_ENV, GITHUB_PATH and GITHUB_STEP_SUMMARY inside the cell point at
 * files of a staged directory; after the run build-cell passes on to the runner's own files
 * what the workflow author allows, never a line as the cell wrote it: key-value files are
 * parsed (key-value-file.ts) and each allowed entry written again with build-cell's own
 * delimiter; GITHUB_ENV names pass env-policy.ts; GITHUB_PATH entries only with forward-path;
 * build-cell's own output names are never the cell's. The step summary is markdown data and
 * passes as it is. What is dropped is named in one warning per step. Synchronous: a handful
 * of tiny files, on every session step's path.
 */
import {
  appendFileSync,
  closeSync,
  constants,
  fstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { envVerdict } from './env-policy.js';
import {
  formatKeyValueFile,
  parseKeyValueFile,
  parsePathFile,
  SAFE_NAME,
  type KeyValueEntry,
} from './key-value-file.js';

/** Where the cell sees its file-command files (as container actions do). */
export const FILE_COMMANDS_CELL_DIR = '/github/file_commands';
export const FILE_COMMANDS = {
  GITHUB_OUTPUT: 'output',
  GITHUB_ENV: 'env',
  GITHUB_PATH: 'path',
  GITHUB_STEP_SUMMARY: 'step_summary',
} as const;

/** What the workflow author lets the cell's file commands do to later steps. */
export interface ForwardRules {
  /** `forward-env`: the GITHUB_ENV names and globs passed on (see env-policy.ts). */
  env: readonly string[];
  /** `forward-path`: whether GITHUB_PATH entries are passed on. */
  path: boolean;
  /** Output names that are build-cell's own (compared without case, as the runner's expressions read them). */
  reservedOutputs?: readonly string[];
}

export interface ForwardReport {
  /** The file commands something was passed on for. */
  forwarded: string[];
  /** One sentence naming everything dropped and how to allow it; undefined when nothing was. */
  warning?: string;
}

export async function prepareFileCommands(dir: string): Promise<void> {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const file of Object.values(FILE_COMMANDS)) writeFileSync(join(dir, file), '');
}

/**
 * A file the cell wrote, read without following a symlink (the cell may have replaced it by
 * one to a host file: it is then not read at all), and only if it is a regular file.
 */
function readOwnFile(path: string): string {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return '';
  }
  try {
    return fstatSync(fd).isFile() ? readFileSync(fd, 'utf8') : '';
  } finally {
    closeSync(fd);
  }
}

/** What was dropped, by reason, for the warning. */
class Dropped {
  readonly notListed = new Set<string>();
  readonly hostCode = new Map<string, string>();
  readonly reserved = new Set<string>();
  readonly badNames = new Set<string>();
  readonly paths: string[] = [];
  readonly malformed: string[] = [];

  warning(): string | undefined {
    const parts = [
      this.notListed.size &&
        `GITHUB_ENV ${list([...this.notListed])}: not in forward-env (list them in the forward-env input to pass them on)`,
      this.hostCode.size &&
        `GITHUB_ENV ${list([...this.hostCode].map(([name, why]) => `${name} (${why})`))}: refused, they hand the later steps on the host code to run (only forward-env naming each one exactly, not a glob, allows them)`,
      this.badNames.size &&
        `names that are not letters, digits, '_' and '-' ${list([...this.badNames].map((n) => JSON.stringify(n)))}: never passed on`,
      this.reserved.size &&
        `GITHUB_OUTPUT ${list([...this.reserved])}: build-cell's own outputs, which keep build-cell's values`,
      this.paths.length &&
        `GITHUB_PATH ${list(this.paths)}: not added to later steps' PATH (set forward-path: true to add them)`,
      ...this.malformed,
    ].filter((part): part is string => !!part);
    return parts.length ? `the cell's file commands were not all passed on: ${parts.join('; ')}` : undefined;
  }
}

/** A readable list of cell-chosen strings: each cut short, at most 20. */
function list(items: string[]): string {
  const shown = items.slice(0, 20).map((item) => (item.length > 80 ? `${item.slice(0, 77)}...` : item));
  return shown.join(', ') + (items.length > shown.length ? ` and ${items.length - shown.length} more` : '');
}

/** The entries of one key-value file that `keep` accepts; a malformed file is noted, what came before it kept. */
function readEntries(text: string, file: string, dropped: Dropped, keep: (entry: KeyValueEntry) => boolean) {
  const parsed = parseKeyValueFile(text);
  if (parsed.error) dropped.malformed.push(`${file} is malformed at ${parsed.error}: the rest of it was dropped`);
  return parsed.entries
    .filter((entry) => {
      if (SAFE_NAME.test(entry.name)) return keep(entry);
      dropped.badNames.add(entry.name);
      return false;
    })
    .map((entry): [string, string] => [entry.name, entry.value]);
}

/** What one file command passes on: the text to append to the runner's file ('' for nothing). */
function filtered(name: keyof typeof FILE_COMMANDS, text: string, rules: ForwardRules, dropped: Dropped): string {
  switch (name) {
    case 'GITHUB_STEP_SUMMARY':
      return text.endsWith('\n') ? text : `${text}\n`;
    case 'GITHUB_PATH': {
      const entries = parsePathFile(text);
      if (rules.path) return entries.map((entry) => `${entry}\n`).join('');
      dropped.paths.push(...entries);
      return '';
    }
    case 'GITHUB_OUTPUT': {
      const reserved = new Set(rules.reservedOutputs?.map((n) => n.toLowerCase()));
      const entries = readEntries(text, name, dropped, ({ name: output }) => {
        if (!reserved.has(output.toLowerCase())) return true;
        dropped.reserved.add(output);
        return false;
      });
      return formatKeyValueFile(entries);
    }
    case 'GITHUB_ENV': {
      const entries = readEntries(text, name, dropped, ({ name: variable }) => {
        const verdict = envVerdict(variable, rules.env);
        if (verdict.allowed) return true;
        if (verdict.reason === 'host-code') dropped.hostCode.set(variable, verdict.why);
        else dropped.notListed.add(variable);
        return false;
      });
      return formatKeyValueFile(entries);
    }
  }
}

/** Pass on what the cell wrote, as `rules` allow, to the runner's files named in `env`. */
export async function forwardFileCommands(
  dir: string,
  env: NodeJS.ProcessEnv,
  rules: ForwardRules,
): Promise<ForwardReport> {
  const forwarded: string[] = [];
  const dropped = new Dropped();
  for (const [name, file] of Object.entries(FILE_COMMANDS) as Array<[keyof typeof FILE_COMMANDS, string]>) {
    const content = readOwnFile(join(dir, file));
    const target = env[name];
    if (!content || !target) continue;
    const text = filtered(name, content, rules, dropped);
    if (!text) continue;
    appendFileSync(target, text);
    forwarded.push(name);
  }
  return { forwarded, warning: dropped.warning() };
}
