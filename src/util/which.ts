/** Find programs on PATH (like `command -v`), so that tests and users can put their own first. */
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { CellSetupError } from './errors.js';

export function which(name: string, path: string = process.env.PATH ?? ''): string | undefined {
  if (name.includes('/')) return isExecutable(name) ? name : undefined;
  for (const dir of [...path.split(delimiter), '/usr/sbin', '/usr/bin', '/sbin', '/bin']) {
    if (!dir) continue;
    const candidate = join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/** Like which(), but a missing program is an error that says which package provides it. */
export function requireTool(name: string, hint: string): string {
  const found = which(name);
  if (!found) throw new CellSetupError(`${name} was not found on PATH: ${hint}`);
  return found;
}

export const TOOL_HINTS: Record<string, string> = {
  skopeo: 'install skopeo (Debian/Ubuntu: apt-get install skopeo)',
  umoci: 'install umoci (Debian/Ubuntu: apt-get install umoci)',
  unshare: 'install util-linux',
  setpriv: 'install util-linux (setpriv)',
  prlimit: 'install util-linux (prlimit)',
  setarch: 'install util-linux (setarch)',
  mount: 'install mount (util-linux)',
};

export function tool(name: keyof typeof TOOL_HINTS): string {
  return requireTool(name, TOOL_HINTS[name]!);
}
