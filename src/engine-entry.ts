/**
 * The one way into the engine for every caller (the CLI's run, prepare and demo, the action,
 * session steps): in this process (root, rootless), or through sudo (the hidden internal-run
 * command, as root), with one signal handling. Across sudo the request (it holds secrets: env
 * values, a registry password) goes over a Unix socket in an owner-only directory, served once,
 * so it never touches a disk; the outcome comes back as a result file beside it.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Server } from 'node:net';
import { runUnderSudo } from './privilege/sudo.js';
import { resolveArch } from './emulation/arch.js';
import { runBuildCell, type CellRequest, type CellRunResult } from './engine.js';
import { UserError, errorMessage } from './util/errors.js';

/** A request offered on a socket until the engine has taken it, in an owner-only `dir` that `close` removes. */
export interface OfferedRequest {
  dir: string;
  address: string;
  close(): Promise<void>;
}

export async function offerEngineRequest(request: CellRequest): Promise<OfferedRequest> {
  const { createServer } = await import('node:net');
  // In the temp dir, not the caller's work dir: a socket's path is limited to 107 bytes.
  const private_ = await mkdtemp(join(tmpdir(), 'bc-request-'));
  const address = join(private_, 'engine.sock');
  const text = JSON.stringify({ ...request, image: { ...request.image, arch: request.image.arch.name } });
  const server: Server = createServer((socket) => {
    server.close(); // served once
    socket.on('error', () => undefined);
    socket.end(text);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(address, resolve);
  });
  return {
    dir: private_,
    address,
    close: async () => {
      server.close();
      await rm(private_, { recursive: true, force: true });
    },
  };
}

export async function readEngineRequest(address: string): Promise<CellRequest> {
  const { connect } = await import('node:net');
  const text = await new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    connect(address)
      .on('data', (chunk: Buffer) => chunks.push(chunk))
      .on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
      .on('error', (error) =>
        reject(new UserError('request', `cannot read the engine request at ${address}: ${error.message}`)),
      );
  });
  let data: (CellRequest & { image: { arch: string } }) | undefined;
  try {
    data = JSON.parse(text) as CellRequest & { image: { arch: string } };
  } catch {
    data = undefined;
  }
  if (!data?.image || typeof data.image.arch !== 'string' || !data.spec)
    throw new UserError('request', `${address} did not serve an engine request`);
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
 */
export async function runInMode(
  request: CellRequest,
  mode: 'root' | 'sudo' | 'rootless',
  cli: string,
): Promise<EngineOutcome> {
  if (mode !== 'sudo') return runToOutcome(request);
  const offered = await offerEngineRequest(request);
  const resultFile = join(offered.dir, 'result.json');
  try {
    const code = await runUnderSudo(['internal-run', offered.address, resultFile], {}, cli);
    const text = await readFile(resultFile, 'utf8').catch(() => undefined);
    if (!text) return { ok: false, error: `the engine (through sudo) exited with ${code} and reported nothing` };
    return JSON.parse(text) as EngineOutcome;
  } finally {
    await offered.close().catch(() => undefined);
  }
}
