/**
 * @actions/tool-cache's environment, in place only while resolve.ts uses it (withToolCacheEnv).
 *
 * tool-cache 4 reads RUNNER_TOOL_CACHE (find, cacheFile) and RUNNER_TEMP (downloadTool without
 * a destination) from process.env at call time, not at import. Outside Actions (the CLI) they
 * are set to defaults only while a call of resolve.ts runs, and removed again afterwards.
 * Its core.debug() lines ("::debug::...", written to stdout) are workflow commands: outside
 * Actions they would pollute the CLI's stdout, so they are dropped there (or sent to stderr
 * with BUILD_CELL_DEBUG=1).
 */
import { homedir, tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';

/** Where the CLI keeps its tool cache when RUNNER_TOOL_CACHE is not set. */
export function defaultToolCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_CACHE_HOME && isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : join(homedir(), '.cache');
  return join(xdg, 'build-cell', 'tools');
}

let scopes = 0;
let leaveScope: (() => void) | undefined;

/** Run `fn` with tool-cache's environment in place; nested calls share one scope. */
export async function withToolCacheEnv<T>(fn: () => Promise<T>): Promise<T> {
  if (scopes++ === 0) leaveScope = enterScope();
  try {
    return await fn();
  } finally {
    if (--scopes === 0) {
      leaveScope?.();
      leaveScope = undefined;
    }
  }
}

function enterScope(): () => void {
  const added: string[] = [];
  if (!process.env.RUNNER_TOOL_CACHE) {
    process.env.RUNNER_TOOL_CACHE = defaultToolCacheDir();
    added.push('RUNNER_TOOL_CACHE');
  }
  if (!process.env.RUNNER_TEMP) {
    process.env.RUNNER_TEMP = tmpdir();
    added.push('RUNNER_TEMP');
  }
  const restoreStdout = process.env.GITHUB_ACTIONS === 'true' ? undefined : dropCoreDebug();
  return () => {
    for (const name of added) delete process.env[name];
    restoreStdout?.();
  };
}

function dropCoreDebug(): () => void {
  const stdout = process.stdout;
  // eslint-disable-next-line @typescript-eslint/unbound-method -- put back on stdout later; called with stdout as `this`
  const original = stdout.write;
  const debug = process.env.BUILD_CELL_DEBUG === '1';
  let active = true;
  const filtered = function (this: unknown, chunk: unknown, ...rest: unknown[]): boolean {
    if (active && typeof chunk === 'string' && chunk.startsWith('::debug::')) {
      if (debug) process.stderr.write(`build-cell: debug: tool-cache: ${chunk.slice('::debug::'.length)}`);
      const callback = rest.find((r): r is () => void => typeof r === 'function');
      callback?.();
      return true;
    }
    return (original as (...args: unknown[]) => boolean).apply(this, [chunk, ...rest]);
  } as typeof stdout.write;
  stdout.write = filtered;
  return () => {
    // If someone wrapped stdout.write after us, ours stays in their chain but passes all through.
    active = false;
    if (stdout.write === filtered) stdout.write = original;
  };
}
