/**
 * A faulty HTTP proxy in front of a test registry: large blob GETs cut, truncated or stalled
 * on demand, to test how pulls survive a bad network.
 */
import { listenLocal } from './local-server.js';
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
export async function startFaultyProxy(
  upstream: string,
  options: { minBytes?: number; sendBytes?: number } = {},
): Promise<FaultyProxy> {
  const { request: httpRequest, createServer: createHttpServer } = await import('node:http');
  const minBytes = options.minBytes ?? 64 * 1024;
  let fault: BlobFault = 'none';
  const seen: string[] = [];
  let signalFaulted: () => void = () => undefined;
  let faultedOnce = new Promise<void>((resolve) => (signalFaulted = resolve));
  const server = createHttpServer((req, res) => {
    const forward = httpRequest(
      {
        host: upstream.split(':')[0],
        port: Number(upstream.split(':')[1]),
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: upstream },
      },
      (up) => {
        const chunks: Buffer[] = [];
        up.on('data', (c: Buffer) => chunks.push(c));
        up.on('end', () => {
          const body = Buffer.concat(chunks);
          const isBlob =
            req.method === 'GET' &&
            /\/blobs\/sha256:[a-f0-9]{64}$/.test(req.url ?? '') &&
            up.statusCode === 200 &&
            body.length >= minBytes;
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
      },
    );
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  const local = await listenLocal(server);
  return {
    host: local.host,
    setFault: (next) => {
      fault = next;
      faultedOnce = new Promise<void>((resolve) => (signalFaulted = resolve));
    },
    requests: () => [...seen],
    faulted: () => faultedOnce,
    stop: local.stop,
  };
}
