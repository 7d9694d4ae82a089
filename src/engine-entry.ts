/**
 * A whole engine request as a file, for the one place it must cross a process boundary: the
 * action (runner user) asking the engine (root, through sudo) to run a cell. The file holds
 * secrets (env values, a registry password): it is created owner-only in an owner-only
 * directory and deleted by the engine as soon as it has read it.
 */
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { runUnderSudo } from './privilege/sudo.js';
import { resolveArch } from './emulation/arch.js';
import { runBuildCell, type CellRequest, type CellRunResult } from './engine.js';
import { UserError, errorMessage } from './util/errors.js';

export async function writeEngineRequest(dir: string, request: CellRequest): Promise<string> {
  const private_ = await mkdtemp(join(dir, 'request-'));
  await chmod(private_, 0o700);
  const file = join(private_, 'request.json');
  await writeFile(file, JSON.stringify({ ...request, image: { ...request.image, arch: request.image.arch.name } }), {
    mode: 0o600,
  });
  return file;
}

export async function readEngineRequest(file: string): Promise<CellRequest> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } finally {
    await rm(join(file, '..'), { recursive: true, force: true });
  }
  const data = JSON.parse(text) as CellRequest & { image: { arch: string } };
  if (!data?.image || typeof data.image.arch !== 'string' || !data.spec)
    throw new UserError('request', `${file} is not an engine request`);
  return { ...data, image: { ...data.image, arch: resolveArch(data.image.arch) } };
}

export type EngineOutcome =
  | { ok: true; result: CellRunResult }
  /** cancelled: a signal stopped the cell (which one, when this process received it). */
  | { ok: false; error: string; cancelled?: boolean; signal?: NodeJS.Signals };

/**
 * Run a request to an outcome that is never thrown; SIGINT, SIGTERM and SIGHUP (a cancelled
 * job) stop the cell and clean up. The one signal handling of every caller: the CLI's run, the
 * action (as root), session steps and internal-run (through sudo).
 */
export async function runToOutcome(request: CellRequest): Promise<EngineOutcome> {
  const controller = new AbortController();
  let received: NodeJS.Signals | undefined;
  const abort = (signal: NodeJS.Signals) => {
    received ??= signal;
    controller.abort();
  };
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const signal of signals) process.on(signal, abort);
  try {
    return { ok: true, result: await runBuildCell(request, controller.signal) };
  } catch (error) {
    const cancelled = controller.signal.aborted;
    return { ok: false, error: errorMessage(error), cancelled, ...(received ? { signal: received } : {}) };
  } finally {
    for (const signal of signals) process.off(signal, abort);
  }
}

/**
 * Run a request in this process (root or rootless) or through sudo (`cli` is the CLI to run
 * as root: its hidden internal-run command); the outcome is always returned, never thrown.
 * `work` is an owner-only place for the request and result files.
 */
export async function runInMode(
  request: CellRequest,
  mode: 'root' | 'sudo' | 'rootless',
  work: string,
  cli: string,
): Promise<EngineOutcome> {
  if (mode !== 'sudo') return runToOutcome(request);
  await mkdir(work, { recursive: true });
  const requestFile = await writeEngineRequest(work, request);
  const resultFile = join(dirname(requestFile), '..', `result-${process.pid}.json`);
  try {
    const code = await runUnderSudo(['internal-run', requestFile, resultFile], {}, cli);
    const text = await readFile(resultFile, 'utf8').catch(() => undefined);
    if (!text) return { ok: false, error: `the engine (through sudo) exited with ${code} and reported nothing` };
    return JSON.parse(text) as EngineOutcome;
  } finally {
    await rm(dirname(requestFile), { recursive: true, force: true }).catch(() => undefined);
    await rm(resultFile, { force: true }).catch(() => undefined);
  }
}
