/**
 * docker-registry as a child process on 127.0.0.1: its config, a free port, the start (retried
 * when another process took the port) until GET /v2/ answers 200, and the stop by PID.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { htpasswdLine, type Credentials } from './registry-tools.js';
import { stopChild } from './processes.js';

export interface Registry {
  /** "127.0.0.1:PORT", usable as docker://HOST/repo:tag */
  host: string;
  /** PID of the docker-registry process. */
  pid: number;
  /** SIGTERM, SIGKILL after 3 s, wait for exit, remove the temp dirs. Idempotent. */
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 20_000;
const STOP_GRACE_MS = 3_000;
const OUTPUT_TAIL_BYTES = 16 * 1024;
const START_ATTEMPTS = 3;

function registryBinary(): string {
  const fromEnv = process.env.DOCKER_REGISTRY_BIN;
  if (fromEnv) return fromEnv;
  return existsSync('/usr/bin/docker-registry') ? '/usr/bin/docker-registry' : 'docker-registry';
}

/** A port that was free a moment ago (bind port 0, read it, close). */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close((err) => (err ? reject(err) : port ? resolve(port) : reject(new Error('no port'))));
    });
  });
}

/** YAML double-quoted scalars are JSON strings, so JSON.stringify quotes safely. */
const q = (s: string): string => JSON.stringify(s);

function registryConfig(addr: string, storageDir: string, htpasswdFile?: string): string {
  const lines = [
    'version: 0.1',
    'log:',
    '  level: info',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${q(storageDir)}`,
    '  delete:',
    '    enabled: true',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: ${q(addr)}`,
    // A fixed secret silences the "No HTTP secret provided" warning.
    '  secret: build-cell-test-only',
  ];
  if (htpasswdFile) {
    lines.push('auth:', '  htpasswd:', '    realm: build-cell-test', `    path: ${q(htpasswdFile)}`);
  }
  return lines.join('\n') + '\n';
}

async function waitReady(
  host: string,
  child: ChildProcess,
  exited: Promise<unknown>,
  tail: () => string,
  auth?: Credentials,
): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  const headers: Record<string, string> = {};
  if (auth) {
    headers.authorization = 'Basic ' + Buffer.from(`${auth.username}:${auth.password}`).toString('base64');
  }
  let exitedEarly = false;
  void exited.then(() => (exitedEarly = true));
  let lastProblem = 'no answer yet';
  while (Date.now() < deadline) {
    if (exitedEarly) {
      throw Object.assign(
        new Error(
          `docker-registry exited during startup (code ${child.exitCode}, signal ${child.signalCode})\n${tail()}`,
        ),
        { registryExitedEarly: true },
      );
    }
    try {
      const res = await fetch(`http://${host}/v2/`, { headers, signal: AbortSignal.timeout(1_000) });
      await res.arrayBuffer();
      if (res.status === 200) return;
      lastProblem = `GET /v2/ answered ${res.status}`;
    } catch (err) {
      lastProblem = (err as Error).message;
    }
    await sleep(100);
  }
  throw new Error(
    `docker-registry at ${host} not ready after ${READY_TIMEOUT_MS / 1000} s (${lastProblem})\n${tail()}`,
  );
}

/** Start docker-registry (with htpasswd auth when `auth` is given) and wait until it is ready. */
export async function launch(auth?: Credentials): Promise<Registry> {
  const dir = await mkdtemp(join(tmpdir(), 'build-cell-registry-'));
  try {
    let htpasswdFile: string | undefined;
    if (auth) {
      htpasswdFile = join(dir, 'htpasswd');
      await writeFile(htpasswdFile, (await htpasswdLine(auth.username, auth.password)) + '\n', {
        mode: 0o600,
      });
    }
    // Binding port 0 then closing leaves a tiny race with other processes; if
    // the registry then fails to bind, try again with a fresh port.
    let lastErr: unknown;
    for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
      try {
        return await startOnce(dir, htpasswdFile, auth);
      } catch (err) {
        lastErr = err;
        const msg = String((err as Error).message);
        const retryable =
          (err as { registryExitedEarly?: boolean }).registryExitedEarly && /address already in use/i.test(msg);
        if (!retryable) break;
      }
    }
    throw lastErr;
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

async function startOnce(dir: string, htpasswdFile: string | undefined, auth?: Credentials): Promise<Registry> {
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const storage = join(dir, `storage-${port}`);
  const config = join(dir, `config-${port}.yml`);
  await writeFile(config, registryConfig(host, storage, htpasswdFile));

  const child = spawn(registryBinary(), ['serve', config], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const collect = (chunk: Buffer) => {
    output += chunk.toString();
    if (output.length > OUTPUT_TAIL_BYTES) output = output.slice(-OUTPUT_TAIL_BYTES);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const tail = () => (output.trim() ? `registry output (tail):\n${output.trim()}` : 'registry printed nothing');

  const spawnError = new Promise<never>((_, reject) =>
    child.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'ENOENT' ? new Error(`${registryBinary()} not found: apt-get install docker-registry`) : err),
    ),
  );
  spawnError.catch(() => {}); // observed below; avoid an unhandled rejection
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // Never leave a registry behind if the test process dies without stop().
  const killOnExit = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      await stopChild(child, exited, STOP_GRACE_MS);
      process.removeListener('exit', killOnExit);
      await rm(dir, { recursive: true, force: true });
    })());

  try {
    await Promise.race([spawnError, waitReady(host, child, exited, tail, auth)]);
  } catch (err) {
    // Do not remove `dir` here: launch() retries in it and cleans up at the end.
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
    process.removeListener('exit', killOnExit);
    throw err;
  }
  if (child.pid === undefined) throw new Error('docker-registry has no pid');
  return { host, pid: child.pid, stop };
}
