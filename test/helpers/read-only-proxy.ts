/**
 * A read-only user for a test registry: docker-registry's htpasswd auth knows no permissions,
 * so an HTTP proxy in front of it plays the registry's access control. Requests that carry
 * the reader's basic credentials are forwarded with the writer's when they read (GET, HEAD)
 * and refused with the registry's 403 DENIED error when they write; everything else passes.
 */
import { createServer, request as httpRequest } from 'node:http';
import { listenLocal } from './local-server.js';
import type { Credentials } from './registry-tools.js';

export interface ReadOnlyProxy {
  /** "127.0.0.1:PORT", usable in place of the registry's host. */
  host: string;
  /** The refused writes, as "METHOD PATH". */
  refused(): string[];
  stop(): Promise<void>;
}

const basic = (c: Credentials) => `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;

export async function startReadOnlyProxy(
  upstream: string,
  reader: Credentials,
  writer: Credentials,
): Promise<ReadOnlyProxy> {
  const refused: string[] = [];
  const server = createServer((req, res) => {
    const headers = { ...req.headers, host: upstream };
    if (req.headers.authorization === basic(reader)) {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        refused.push(`${req.method} ${req.url}`);
        req.resume();
        const body = JSON.stringify({
          errors: [{ code: 'DENIED', message: 'requested access to the resource is denied', detail: null }],
        });
        res.writeHead(403, { 'content-type': 'application/json', 'content-length': String(body.length) });
        res.end(body);
        return;
      }
      headers.authorization = basic(writer);
    }
    const [hostname, port] = upstream.split(':');
    const forward = httpRequest(
      { host: hostname, port: Number(port), method: req.method, path: req.url, headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  const local = await listenLocal(server);
  return { host: local.host, refused: () => [...refused], stop: local.stop };
}
