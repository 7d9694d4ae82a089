/**
 * The runner's key-value file format (GITHUB_ENV, GITHUB_OUTPUT), read and written. The
 * reading follows Runner.Worker's FileCommandManager: lines split on LF only (a CR stays in
 * the line); empty lines skipped; `NAME=VALUE` when '=' comes before any '<<'; otherwise
 * `NAME<<DELIMITER`, whose value is the lines up to one that equals DELIMITER exactly.
 * Writing never copies a line it read: every entry is written again as a heredoc with a fresh
 * random delimiter of build-cell's own, and only under a name that reads back as itself.
 * Pure, apart from the random delimiter.
 */
import { randomHex } from '../util/random.js';

export interface KeyValueEntry {
  name: string;
  value: string;
  /** 1-based line of the entry's first line, for warnings. */
  line: number;
}

export interface ParsedKeyValueFile {
  entries: KeyValueEntry[];
  /** Why the file stopped being readable, with its line; entries after it are not read (the runner fails there). */
  error?: string;
}

/**
 * Names build-cell writes: letters, digits, '_' and '-', not starting with a digit or '-'
 * (GitHub's rule for output names). Nothing else reads back unchanged: a name with '=' or
 * '<<' in it, or ending in '<', turns into another name and delimiter when written again.
 */
export const SAFE_NAME = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** Read a key-value file with the runner's rules; an error ends the reading (as it ends the runner's). */
export function parseKeyValueFile(text: string): ParsedKeyValueFile {
  // The runner reads the file as .NET's File.ReadAllText does, which drops a UTF-8 byte order mark.
  const lines = text.replace(/^\uFEFF/, '').split('\n');
  // A final LF ends the last line; it does not start another one.
  if (lines[lines.length - 1] === '') lines.pop();
  const entries: KeyValueEntry[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line === '') continue;
    const eq = line.indexOf('=');
    const heredoc = line.indexOf('<<');
    if (eq >= 0 && (heredoc < 0 || eq < heredoc)) {
      const name = line.slice(0, eq);
      if (!name) return { entries, error: `line ${i + 1}: no name before '='` };
      entries.push({ name, value: line.slice(eq + 1), line: i + 1 });
    } else if (heredoc >= 0) {
      const name = line.slice(0, heredoc);
      const delimiter = line.slice(heredoc + 2);
      if (!name || !delimiter) return { entries, error: `line ${i + 1}: NAME<<DELIMITER needs both` };
      const end = lines.indexOf(delimiter, i + 1);
      if (end < 0)
        return { entries, error: `line ${i + 1}: no line closes the value of ${cut(name)} (<<${cut(delimiter)})` };
      entries.push({ name, value: lines.slice(i + 1, end).join('\n'), line: i + 1 });
      i = end;
    } else {
      return { entries, error: `line ${i + 1}: neither NAME=VALUE nor NAME<<DELIMITER` };
    }
  }
  return { entries };
}

/** A name or delimiter the cell chose, short enough for a warning. */
const cut = (text: string) => (text.length > 40 ? `${text.slice(0, 37)}...` : text);

/**
 * Entries as the runner reads them back, each a heredoc with a delimiter of its own that its
 * value cannot hold (a fresh one is drawn if it does). Throws on a name outside SAFE_NAME:
 * callers filter names first, so that is a bug, never the cell's doing.
 */
export function formatKeyValueFile(entries: Array<[string, string]>, random = () => randomHex(16)): string {
  let text = '';
  for (const [name, value] of entries) {
    if (!SAFE_NAME.test(name))
      throw new Error(`build-cell: refusing to write the file-command name ${JSON.stringify(name)}`);
    let delimiter = `build-cell_${random()}`;
    while (value.includes(delimiter) || name.includes(delimiter)) delimiter = `build-cell_${random()}`;
    text += `${name}<<${delimiter}\n${value}\n${delimiter}\n`;
  }
  return text;
}

/** GITHUB_PATH: one directory per non-empty line (the runner reads it with .NET's ReadAllLines: LF, CR LF or CR). */
export function parsePathFile(text: string): string[] {
  return text
    .replace(/^\uFEFF/, '')
    .split(/\r\n|\r|\n/)
    .filter((line) => line !== '');
}
