/**
 * The programs the registry helpers run besides docker-registry: a bcrypt generator for the
 * htpasswd file (htpasswd, else python3's crypt), and skopeo to push OCI layouts.
 */
import { execFile } from 'node:child_process';

export interface Credentials {
  username: string;
  password: string;
}

function run(
  cmd: string,
  args: string[],
  opts: { input?: string; timeoutMs?: number } = {},
): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      args,
      { timeout: opts.timeoutMs ?? 120_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) {
          const e = new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${String(stderr).trim()}`) as Error & {
            code?: unknown;
            stderr?: string;
          };
          e.code = (err as NodeJS.ErrnoException).code;
          e.stderr = String(stderr);
          reject(e);
        } else {
          resolve({ stdout: String(stdout), stderr: String(stderr) });
        }
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/**
 * One `user:bcrypt-hash` htpasswd line. distribution only accepts bcrypt.
 * Cost 5 (htpasswd -B's default) keeps each authenticated request cheap.
 */
export async function htpasswdLine(username: string, password: string): Promise<string> {
  if (!username || /[:\s]/.test(username)) throw new Error(`invalid htpasswd user name: ${JSON.stringify(username)}`);
  try {
    const { stdout } = await run('htpasswd', ['-Bbn', '-C', '5', username, password]);
    const line = stdout.split('\n')[0]?.trim();
    if (line?.startsWith(`${username}:$2`)) return line;
  } catch (err) {
    if ((err as { code?: unknown }).code !== 'ENOENT') throw err;
  }
  // Fallback: glibc's libxcrypt implements bcrypt ($2b$) behind crypt(3).
  const py = [
    'import sys, warnings',
    'warnings.simplefilter("ignore")',
    'import crypt',
    'if crypt.METHOD_BLOWFISH not in crypt.methods: sys.exit(3)',
    'print(crypt.crypt(sys.stdin.read(), crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=32)))',
  ].join('\n');
  try {
    const { stdout } = await run('python3', ['-c', py], { input: password });
    const hash = stdout.trim();
    if (hash.startsWith('$2')) return `${username}:${hash}`;
  } catch {
    // fall through to the explanatory error
  }
  throw new Error('no bcrypt generator for the registry htpasswd file: install apache2-utils (htpasswd)');
}

/**
 * Push tag `tag` of the OCI layout at `layoutDir` to HOST/REPO:REPOTAG.
 * `--all` keeps an image index whole (every platform's manifest is pushed).
 */
export async function pushLayout(
  layoutDir: string,
  tag: string,
  host: string,
  repo: string,
  repoTag: string,
  credentials?: Credentials,
): Promise<void> {
  const args = [
    // The signature policy is irrelevant for a local test registry and may be
    // missing on a bare machine.
    '--insecure-policy',
    'copy',
    '--all',
    '--dest-tls-verify=false',
    ...(credentials ? ['--dest-creds', `${credentials.username}:${credentials.password}`] : []),
    `oci:${layoutDir}:${tag}`,
    `docker://${host}/${repo}:${repoTag}`,
  ];
  await run('skopeo', args, { timeoutMs: 300_000 });
}
