/**
 * The one way build-cell runs a helper program (skopeo, umoci, mount, ...): arguments as an
 * array (never a shell string), output captured, and failures reported with the command line
 * and the tail of its stderr so that a user can reproduce them.
 */
import type { SpawnOptions } from 'node:child_process';
import { lazyChildProcess } from './builtins.js';
import { CellSetupError } from './errors.js';
import { which } from './which.js';

export interface ExecOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Bytes written to the child's stdin (e.g. a password), never placed in argv. */
  input?: string;
  /** Do not throw on a non-zero exit; the caller inspects `code`. */
  allowFailure?: boolean;
  /** Words to replace by *** in error messages and debug logs. */
  secrets?: string[];
  /** Kill the program if this process dies (setpriv --pdeathsig), so no orphan keeps writing the store. */
  dieWithParent?: boolean;
}

export interface ExecResult {
  code: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export class ExecError extends CellSetupError {
  override name = 'ExecError';
  constructor(
    readonly command: string,
    readonly result: ExecResult,
    what: string,
  ) {
    const status = result.signal ? `was killed by ${result.signal}` : `exited with ${result.code}`;
    const tail = tailLines(result.stderr || result.stdout, 8);
    super(`${what}: \`${command}\` ${status}${tail ? `: ${tail}` : ''}`);
  }
}

const debugEnabled = () => process.env.BUILD_CELL_DEBUG === '1' || process.env.RUNNER_DEBUG === '1';

export function tailLines(text: string, lines: number): string {
  return text.trim().split('\n').slice(-lines).join('\n').trim();
}

export function commandLine(file: string, args: readonly string[], secrets: string[] = []): string {
  // Redact each word before quoting it: quoting could split a secret that holds a quote.
  const quoted = [file, ...args]
    .map((word) => redact(word, secrets))
    .map((word) => (word === '***' || /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`));
  return quoted.join(' ');
}

export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) if (secret) out = out.split(secret).join('***');
  return out;
}

/** Run `file args`, capture its output, and throw an ExecError naming `what` on failure. */
export function exec(
  file: string,
  args: readonly string[],
  what: string,
  options: ExecOptions = {},
): Promise<ExecResult> {
  const line = commandLine(file, args, options.secrets);
  const setpriv = options.dieWithParent ? which('setpriv') : undefined;
  if (setpriv) [file, args] = [setpriv, ['--pdeathsig', 'KILL', '--', file, ...args]];
  if (debugEnabled()) process.stderr.write(`build-cell: debug: ${line}\n`);
  const spawnOptions: SpawnOptions = {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['pipe', 'pipe', 'pipe'],
  };
  return new Promise((resolve, reject) => {
    const child = lazyChildProcess().spawn(file, [...args], spawnOptions);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr!.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', (error) => reject(new CellSetupError(`${what}: cannot run \`${line}\`: ${error.message}`)));
    child.on('close', (code, signal) => {
      const result: ExecResult = {
        code: code ?? 128,
        signal,
        stdout: Buffer.concat(out).toString(),
        stderr: redact(Buffer.concat(err).toString(), options.secrets ?? []),
      };
      const shown: ExecResult = { ...result, stdout: redact(result.stdout, options.secrets ?? []) };
      if ((code !== 0 || signal) && !options.allowFailure) reject(new ExecError(line, shown, what));
      else resolve(result);
    });

    child.stdin!.on('error', () => undefined);
    child.stdin!.end(options.input ?? '');
  });
}
