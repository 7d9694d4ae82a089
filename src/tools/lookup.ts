/**
 * Finding a tool that is already there, on PATH or in the tool cache, and trusting it only
 * once `NAME --version` has run.
 */
import * as tc from '@actions/tool-cache';
import { join, resolve as resolvePath } from 'node:path';
import { errorMessage } from '../util/errors.js';
import { exec, tailLines } from '../util/exec.js';

/** What a lookup needs of resolve.ts's context. */
export interface LookupContext {
  log: (msg: string) => void;
  onPath: (name: string) => string | undefined;
  /** The tool cache's arch key (Node's names, as tool-cache uses by default). */
  toolArch: string;
}

export interface Found {
  path: string;
  /** Set when the directory is not (known to be) on PATH. */
  dir?: string;
}

/**
 * How a tool shows that it runs: `--version` exits 0, for most; mkfs.erofs 1.5 prints its
 * version and exits 1 there, and is checked with `--help`.
 */
function checkArgs(name: string): string[] {
  return name === 'mkfs.erofs' ? ['--help'] : ['--version'];
}

/** `path --version` (or what checkArgs says for the tool `name`) exits 0; otherwise a short reason. */
export async function runs(path: string, name: string): Promise<{ ok: true } | { ok: false; reason: string }> {
  const args = checkArgs(name);
  try {
    const result = await exec(path, args, `running ${path}`, { allowFailure: true });
    if (result.code === 0 && !result.signal) return { ok: true };
    const tail = tailLines(result.stderr || result.stdout, 2);
    return {
      ok: false,
      reason: `\`${path} ${args.join(' ')}\` ${result.signal ? `was killed by ${result.signal}` : `exited with ${result.code}`}${tail ? `: ${tail}` : ''}`,
    };
  } catch (error) {
    return { ok: false, reason: errorMessage(error) };
  }
}

export async function fromPath(name: string, ctx: LookupContext): Promise<Found | undefined> {
  const found = ctx.onPath(name);
  if (!found) return undefined;
  const path = resolvePath(found);
  const check = await runs(path, name);
  if (check.ok) {
    ctx.log(`${name}: using ${path} (from PATH)`);
    return { path };
  }
  ctx.log(`${name}: ${path} is on PATH but does not run (${check.reason}); looking further`);
  return undefined;
}

export async function fromToolCache(
  name: string,
  versionSpec: string,
  ctx: LookupContext,
  what: string,
): Promise<Found | undefined> {
  const dir = tc.find(name, versionSpec, ctx.toolArch);
  if (!dir) return undefined;
  const path = join(dir, name);
  const check = await runs(path, name);
  if (check.ok) {
    ctx.log(`${name}: using ${path} (from the tool cache, ${what})`);
    return { path, dir };
  }
  ctx.log(`${name}: the tool cache entry ${path} does not run (${check.reason}); not using it`);
  return undefined;
}
