/**
 * Directory trees for the overlay-upper tests (syncChanges, applyUpper): real files in temp
 * dirs, the cell's view emulated by a plain directory of names, whiteouts made with mknod
 * (root only), and, where this process may, upper and view made by a real overlay mount.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { lstat, mkdir, readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const isRoot = process.getuid?.() === 0;

/** A directory tree: a string is a file's content, an object a directory. */
export type Tree = { [name: string]: string | Tree };

export async function write(dir: string, tree: Tree): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [name, value] of Object.entries(tree)) {
    if (typeof value === 'string') await writeFile(join(dir, name), value);
    else await write(join(dir, name), value);
  }
}

/** The cell's view: only names matter (a non-directory is an empty file). */
export async function view(dir: string, tree: Tree): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [name, value] of Object.entries(tree)) {
    if (typeof value === 'string') await writeFile(join(dir, name), '');
    else await view(join(dir, name), value);
  }
}

export const whiteout = (path: string) => execFileSync('mknod', [path, 'c', '0', '0']);
export const mkfifo = (path: string) => execFileSync('mkfifo', [path]);

/** A comparable listing: path -> 'dir MODE' | 'file MODE CONTENT' | 'link TARGET' | 'other'. */
export async function listing(dir: string, prefix = ''): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of (await readdir(dir)).sort()) {
    const path = join(dir, name);
    const rel = `${prefix}${name}`;
    const info = await lstat(path);
    if (info.isSymbolicLink()) out[rel] = `link ${await readlink(path)}`;
    else if (info.isDirectory()) {
      out[rel] = `dir ${(info.mode & 0o7777).toString(8)}`;
      Object.assign(out, await listing(path, `${rel}/`));
    } else if (info.isFile()) out[rel] = `file ${(info.mode & 0o7777).toString(8)} ${await readFile(path, 'utf8')}`;
    else out[rel] = 'other';
  }
  return out;
}

export const exists = (path: string) =>
  lstat(path).then(
    () => true,
    () => false,
  );

/** Whether this process may mount an overlay in a private mount namespace. */
export function canMountOverlay(): boolean {
  if (!isRoot) return false;
  const probe = spawnSync('unshare', [
    '-m',
    'sh',
    '-c',
    // A bc- prefix: the integration tests' /tmp after-check, running meanwhile, ignores it.
    'd=$(mktemp -d "${TMPDIR:-/tmp}/bc-overlay-probe.XXXXXX") && mkdir $d/l $d/u $d/w $d/m && mount -t overlay overlay -o lowerdir=$d/l,upperdir=$d/u,workdir=$d/w $d/m; r=$?; umount $d/m 2>/dev/null; rm -rf $d; exit $r',
  ]);
  return probe.status === 0;
}

/**
 * Layer `host` under an overlay in a private mount namespace, run `script` in the merged dir,
 * snapshot the merged view (the cell's view) and unmount; all under `base`. Returns the upper
 * and the view.
 */
export function runOverlay(base: string, host: string, script: string, options = ''): { upper: string; view: string } {
  const upper = join(base, 'upper');
  const work = join(base, 'work');
  const merged = join(base, 'merged');
  const view = join(base, 'view');
  const result = spawnSync(
    'unshare',
    [
      '-m',
      'sh',
      '-euc',
      `
    mkdir -p "$1" "$2" "$3" "$4"
    mount --make-rprivate /
    mount -t overlay overlay -o "lowerdir=$5,upperdir=$1,workdir=$2$6" "$3"
    (cd "$3" && eval "$7")
    cp -a "$3/." "$4/"
    umount "$3"
  `,
      'sh',
      upper,
      work,
      merged,
      view,
      host,
      options,
      script,
    ],
    { encoding: 'utf8' },
  );
  if (result.status !== 0) throw new Error(`overlay script failed: ${result.stderr}`);
  return { upper, view };
}
