/**
 * GITHUB_OUTPUT, GITHUB_ENV, GITHUB_PATH and GITHUB_STEP_SUMMARY inside the cell point at
 * files of a staged directory; after the run their content is appended to the real files,
 * so a script in the cell sets step outputs exactly as a script in a `run:` step does.
 */
import { appendFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FILE_COMMANDS } from './cell-request.js';

export async function prepareFileCommands(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  for (const file of Object.values(FILE_COMMANDS)) await writeFile(join(dir, file), '');
}

/** Append what the cell wrote to the runner's own files; returns the variables forwarded. */
export async function forwardFileCommands(dir: string, env: NodeJS.ProcessEnv): Promise<string[]> {
  const forwarded: string[] = [];
  for (const [name, file] of Object.entries(FILE_COMMANDS)) {
    const content = await readFile(join(dir, file), 'utf8').catch(() => '');
    const target = env[name];
    if (!content || !target) continue;
    await appendFile(target, content.endsWith('\n') ? content : `${content}\n`);
    forwarded.push(name);
  }
  return forwarded;
}
