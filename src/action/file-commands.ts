/**
 * GITHUB_OUTPUT, GITHUB_ENV, GITHUB_PATH and GITHUB_STEP_SUMMARY inside the cell point at
 * files of a staged directory; after the run their content is appended to the real files,
 * so a script in the cell sets step outputs exactly as a script in a `run:` step does.
 * Synchronous: a handful of tiny files, on every session step's path.
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
import { FILE_COMMANDS } from './cell-request.js';

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

/** Append what the cell wrote to the runner's own files; returns the variables forwarded. */
export async function forwardFileCommands(dir: string, env: NodeJS.ProcessEnv): Promise<string[]> {
  const forwarded: string[] = [];
  for (const [name, file] of Object.entries(FILE_COMMANDS)) {
    const content = readOwnFile(join(dir, file));
    const target = env[name];
    if (!content || !target) continue;
    appendFileSync(target, content.endsWith('\n') ? content : `${content}\n`);
    forwarded.push(name);
  }
  return forwarded;
}
