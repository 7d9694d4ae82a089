/**
 * A real, throw-away OCI registry for integration tests: Debian's
 * `docker-registry` (distribution 2.8) on 127.0.0.1 with filesystem storage in
 * a temporary directory. No mocks: pushes and pulls go through skopeo to this
 * process over HTTP.
 *
 * Needs: docker-registry and skopeo (apt), and for startRegistryWithAuth a
 * bcrypt generator: `htpasswd` from apache2-utils, or python3's crypt module
 * (Debian bookworm's python3 3.11 has it, backed by libxcrypt).
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface Registry {
  /** "127.0.0.1:PORT", usable as docker://HOST/repo:tag */
  host: string;
  /** PID of the docker-registry process. */
  pid: number;
  /** SIGTERM, SIGKILL after 3 s, wait for exit, remove the temp dirs. Idempotent. */
  stop(): Promise<void>;
}

export interface Credentials {
  username: string;
  password: string;
}

export interface AuthRegistry extends Registry {
  credentials: Credentials;
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
          const e = new Error(
            `${cmd} ${args.join(' ')} failed: ${err.message}\n${String(stderr).trim()}`,
          ) as Error & { code?: unknown; stderr?: string };
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
  if (!username || /[:\s]/.test(username)) throw new Error(`invalid htpasswd user name: ${q(username)}`);
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
  throw new Error(
    'no bcrypt generator for the registry htpasswd file: install apache2-utils (htpasswd)',
  );
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
    headers.authorization =
      'Basic ' + Buffer.from(`${auth.username}:${auth.password}`).toString('base64');
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

async function launch(auth?: Credentials): Promise<Registry> {
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
          (err as { registryExitedEarly?: boolean }).registryExitedEarly &&
          /address already in use/i.test(msg);
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
      reject(
        err.code === 'ENOENT'
          ? new Error(`${registryBinary()} not found: apt-get install docker-registry`)
          : err,
      ),
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
      const pid = child.pid;
      if (pid !== undefined && child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          // already gone
        }
        const graceful = await Promise.race([exited.then(() => true), sleep(STOP_GRACE_MS).then(() => false)]);
        if (!graceful) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // already gone
          }
          await exited;
        }
      }
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

/** Start an anonymous (no auth) registry on 127.0.0.1 and wait until GET /v2/ is 200. */
export async function startRegistry(): Promise<Registry> {
  return launch();
}

/**
 * Start a registry that requires HTTP basic auth (htpasswd, bcrypt). Ready
 * means GET /v2/ with these credentials is 200; without them it is 401.
 */
export async function startRegistryWithAuth(username: string, password: string): Promise<AuthRegistry> {
  const credentials = { username, password };
  const reg = await launch(credentials);
  return { ...reg, credentials };
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

/** How a faulty proxy answers GETs of large blobs (image layers); everything else passes through. */
export type BlobFault = 'none' | 'cut' | 'truncate' | 'stall';

export interface FaultyProxy {
  /** "127.0.0.1:PORT", usable in place of the registry's host. */
  host: string;
  /**
   * From now on: none, pass through; cut, send the headers (full Content-Length) and part of the
   * body, then drop the connection; truncate, a complete response that holds only part of the
   * blob (a wrong digest); stall, send part of the body and then nothing until stop().
   */
  setFault(fault: BlobFault): void;
  /** Requests seen, as "METHOD PATH FAULT". */
  requests(): string[];
  /** Resolves once a faulty blob response has sent its partial body (for stall: the download hangs now). */
  faulted(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * An HTTP proxy on 127.0.0.1 in front of a registry, with faults on demand for blob GETs of at
 * least `minBytes` (default 64 KiB: layers, not manifests or configs); `sendBytes` (default
 * half the blob) are sent of a faulty answer. In-process: stop() closes every connection.
 */
export async function startFaultyProxy(upstream: string, options: { minBytes?: number; sendBytes?: number } = {}): Promise<FaultyProxy> {
  const { request: httpRequest, createServer: createHttpServer } = await import('node:http');
  const minBytes = options.minBytes ?? 64 * 1024;
  let fault: BlobFault = 'none';
  const seen: string[] = [];
  const sockets = new Set<import('node:net').Socket>();
  let signalFaulted: () => void = () => undefined;
  let faultedOnce = new Promise<void>((resolve) => (signalFaulted = resolve));
  const server = createHttpServer((req, res) => {
    const forward = httpRequest({ host: upstream.split(':')[0], port: Number(upstream.split(':')[1]), method: req.method, path: req.url, headers: { ...req.headers, host: upstream } }, (up) => {
      const chunks: Buffer[] = [];
      up.on('data', (c: Buffer) => chunks.push(c));
      up.on('end', () => {
        const body = Buffer.concat(chunks);
        const isBlob = req.method === 'GET' && /\/blobs\/sha256:[a-f0-9]{64}$/.test(req.url ?? '') && up.statusCode === 200 && body.length >= minBytes;
        const applied = isBlob ? fault : 'none';
        seen.push(`${req.method} ${req.url} ${applied}`);
        const headers = { ...up.headers };
        delete headers['transfer-encoding'];
        const part = body.subarray(0, options.sendBytes ?? Math.floor(body.length / 2));
        if (applied === 'none') {
          res.writeHead(up.statusCode ?? 502, { ...headers, 'content-length': String(body.length) });
          res.end(body);
        } else if (applied === 'truncate') {
          res.writeHead(200, { ...headers, 'content-length': String(part.length) });
          res.end(part);
          signalFaulted();
        } else {
          res.writeHead(200, { ...headers, 'content-length': String(body.length) });
          res.write(part, () => {
            if (applied === 'cut') res.socket?.destroy();
            signalFaulted();
          });
        }
      });
      up.on('error', () => res.destroy());
    });
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  let stopping: Promise<void> | undefined;
  return {
    host: `127.0.0.1:${port}`,
    setFault: (next) => {
      fault = next;
      faultedOnce = new Promise<void>((resolve) => (signalFaulted = resolve));
    },
    requests: () => [...seen],
    faulted: () => faultedOnce,
    stop: () =>
      (stopping ??= new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      })),
  };
}
