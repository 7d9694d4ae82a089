/**
 * Azurite (the Azure Storage emulator, a devDependency) as the blob store behind
 * the results service: its blob service run from node_modules on 127.0.0.1 with
 * an OS-assigned port and a temporary --location, stopped by PID.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { stopChild } from './processes.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Azurite's blob-only entry point (the `azurite-blob` bin). */
export const AZURITE_BLOB_MAIN = join(REPO_ROOT, 'node_modules', 'azurite', 'dist', 'src', 'blob', 'main.js');

/** Azurite's well-known development account (documented, not a secret). */
export const AZURITE_ACCOUNT = 'devstoreaccount1';
export const AZURITE_ACCOUNT_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

const READY_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 3_000;
const OUTPUT_TAIL_BYTES = 16 * 1024;

/* ------------------------------------------------------------------------- */
/* processes                                                                 */
/* ------------------------------------------------------------------------- */

function exitPromise(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
}

/* ------------------------------------------------------------------------- */
/* Azurite                                                                   */
/* ------------------------------------------------------------------------- */

export interface Azurite {
  /** e.g. http://127.0.0.1:PORT/devstoreaccount1 (path-style account URL) */
  blobEndpoint: string;
  pid: number;
  /** Azurite's --location (removed by stop()). */
  location: string;
  /** SIGTERM, SIGKILL after 3 s, wait for exit, remove the location. Idempotent. */
  stop(): Promise<void>;
}

export interface StartAzuriteOptions {
  /** Write Azurite's debug log here (--debug), for diagnosing protocol problems. */
  debugLog?: string;
}

/**
 * Start Azurite's blob service on 127.0.0.1 with an OS-assigned port (--blobPort 0;
 * Azurite prints the address it bound), telemetry off, in a temporary location.
 */
export async function startAzurite(options: StartAzuriteOptions = {}): Promise<Azurite> {
  const location = await mkdtemp(join(tmpdir(), 'build-cell-azurite-'));
  const args = [
    AZURITE_BLOB_MAIN,
    '--blobHost',
    '127.0.0.1',
    '--blobPort',
    '0',
    '--location',
    location,
    '--silent',
    '--skipApiVersionCheck',
    '--loose',
    '--disableTelemetry',
  ];
  if (options.debugLog) args.push('--debug', options.debugLog);
  const env = { ...process.env };
  delete env.AZURITE_ACCOUNTS; // would replace the well-known dev account
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  const exited = exitPromise(child);
  let output = '';
  const onData = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-OUTPUT_TAIL_BYTES);
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const spawnError = new Promise<never>((_, reject) => child.once('error', reject));

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      await stopChild(child, exited, STOP_GRACE_MS);
      await rm(location, { recursive: true, force: true });
    })());

  try {
    const origin = await Promise.race([
      spawnError,
      (async () => {
        const deadline = Date.now() + READY_TIMEOUT_MS;
        while (Date.now() < deadline) {
          const m = /successfully listens on (http:\/\/\S+)/.exec(output);
          if (m) return m[1]!.replace(/\/+$/, '');
          if (child.exitCode !== null || child.signalCode !== null) {
            throw new Error(
              `azurite exited during startup (code ${child.exitCode}, signal ${child.signalCode})\n${output}`,
            );
          }
          await sleep(50);
        }
        throw new Error(`azurite did not start within ${READY_TIMEOUT_MS / 1000} s\n${output}`);
      })(),
    ]);
    const blobEndpoint = `${origin}/${AZURITE_ACCOUNT}`;
    // Wait until it answers HTTP (any status: an unauthenticated list is a 403).
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      try {
        const res = await fetch(`${blobEndpoint}?comp=list`, { signal: AbortSignal.timeout(2_000) });
        await res.arrayBuffer();
        break;
      } catch (err) {
        if (Date.now() > deadline)
          throw new Error(`azurite at ${blobEndpoint} does not answer: ${(err as Error).message}\n${output}`, {
            cause: err,
          });
        await sleep(100);
      }
    }
    return { blobEndpoint, pid: child.pid!, location, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
