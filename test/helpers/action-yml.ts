/**
 * action.yml as the runner reads it for the action harness (action-harness.ts):
 * the metadata (inputs with defaults, outputs, runs.*) and the inputs a step
 * gets from it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

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

/** Inputs as a step gets them: action.yml defaults, then the given values (stringified). */
export function resolveInputs(
  meta: ActionMetadata,
  given: Record<string, string | number | boolean> = {},
): { inputs: Record<string, string>; unexpectedInputs: string[] } {
  const inputs: Record<string, string> = {};
  for (const [name, input] of Object.entries(meta.inputs)) {
    if (input.default !== undefined) inputs[name] = input.default;
  }
  const unexpectedInputs: string[] = [];
  for (const [name, value] of Object.entries(given)) {
    if (!(name in meta.inputs)) unexpectedInputs.push(name);
    inputs[name] = String(value);
  }
  return { inputs, unexpectedInputs };
}
