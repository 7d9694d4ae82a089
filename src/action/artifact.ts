/**
 * Upload the exported files as one artifact. @actions/artifact is loaded only when a job
 * uploads one: it is a third of the action's bundle, and every step's start paid for parsing it.
 */
import { lstat, readdir } from 'node:fs/promises';
import { dirname, join, sep } from 'node:path';

/** Every regular file under `paths` (directories expanded, symlinks skipped). */
export async function listFiles(paths: string[]): Promise<string[]> {
  const out: string[] = [];
  const walk = async (path: string) => {
    const info = await lstat(path).catch(() => undefined);
    if (!info) return;
    if (info.isDirectory()) for (const name of (await readdir(path)).sort()) await walk(join(path, name));
    else if (info.isFile()) out.push(path);
  };
  for (const path of paths) await walk(path);
  return out;
}

/** The deepest directory containing every path. */
export function commonRoot(paths: string[], fallback: string): string {
  if (!paths.length) return fallback;
  let root = dirname(paths[0]!);
  for (const p of paths)
    while (root !== sep && !(p === root || p.startsWith(root.endsWith(sep) ? root : root + sep))) root = dirname(root);
  return root;
}

export async function uploadExports(
  name: string,
  destinations: string[],
  workspace: string,
): Promise<number | undefined> {
  const files = await listFiles(destinations);
  if (!files.length) return undefined;
  const inWorkspace = files.every((f) => f.startsWith(workspace.endsWith(sep) ? workspace : workspace + sep));
  const root = inWorkspace ? workspace : commonRoot(files, workspace);
  const { DefaultArtifactClient } = await import('@actions/artifact');
  const response = await new DefaultArtifactClient().uploadArtifact(name, files, root);
  return response.id;
}
