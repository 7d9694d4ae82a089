/**
 * Twirp JSON plumbing for the test results service (results-service.ts): error
 * codes and their HTTP status, a reader for protobuf-JSON request fields, and
 * the JSON body in and out.
 *
 * Wire format notes (from @actions/cache 6 / @actions/artifact 6):
 *  - Requests are POST /twirp/<service>/<method>, Content-Type application/json,
 *    `Authorization: Bearer <ACTIONS_RUNTIME_TOKEN>`, body = protobuf JSON with
 *    the *proto* field names (`useProtoFieldName: true`): restore_keys,
 *    size_bytes, workflow_run_backend_id... int64 fields are JSON strings,
 *    wrappers (StringValue, Int64Value) are bare values, Timestamps RFC 3339.
 *  - Responses are parsed with protobuf-ts `fromJson`, which accepts proto or
 *    lowerCamel names; like the real (Go Twirp) service we answer snake_case
 *    (the clients' `maskSecretUrls` looks for `signed_upload_url`, `signed_url`).
 *  - Errors are Twirp JSON `{code, msg}` with the Twirp HTTP status. The clients
 *    retry 5xx (and any non-JSON body!) 5 times with 3 s+ back-off, so errors
 *    here are 4xx JSON unless the service itself is broken.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export const TWIRP_STATUS = {
  canceled: 408,
  unknown: 500,
  invalid_argument: 400,
  malformed: 400,
  deadline_exceeded: 408,
  not_found: 404,
  bad_route: 404,
  already_exists: 409,
  permission_denied: 403,
  unauthenticated: 401,
  resource_exhausted: 429,
  failed_precondition: 412,
  aborted: 409,
  out_of_range: 400,
  unimplemented: 501,
  internal: 500,
  unavailable: 503,
  dataloss: 500,
} as const;
export type TwirpCode = keyof typeof TWIRP_STATUS;

export class TwirpError extends Error {
  constructor(
    readonly code: TwirpCode,
    msg: string,
  ) {
    super(msg);
    this.name = 'TwirpError';
  }
}

export type Json = Record<string, unknown>;

/** A protobuf-JSON request body: proto names first, lowerCamel accepted too (as protojson does). */
export class Fields {
  constructor(private readonly body: Json) {}

  private raw(name: string): unknown {
    if (name in this.body) return this.body[name];
    const camel = name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
    return this.body[camel];
  }

  string(name: string, required = false): string | undefined {
    const v = this.raw(name);
    if (v === undefined || v === null || v === '') {
      if (required) throw new TwirpError('invalid_argument', `${name} is required`);
      return undefined;
    }
    if (typeof v !== 'string')
      throw new TwirpError('malformed', `${name}: expected a string, got ${JSON.stringify(v)}`);
    return v;
  }

  strings(name: string): string[] {
    const v = this.raw(name);
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) {
      throw new TwirpError('malformed', `${name}: expected an array of strings, got ${JSON.stringify(v)}`);
    }
    return v;
  }

  /** int64: protobuf JSON writes it as a decimal string; numbers are accepted too. */
  int64(name: string, required = false): number | undefined {
    const v = this.raw(name);
    if (v === undefined || v === null) {
      if (required) throw new TwirpError('invalid_argument', `${name} is required`);
      return undefined;
    }
    if (typeof v === 'string' && /^-?\d+$/.test(v)) return Number(v);
    if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
    throw new TwirpError('malformed', `${name}: expected an int64, got ${JSON.stringify(v)}`);
  }

  int32(name: string): number | undefined {
    const v = this.raw(name);
    if (v === undefined || v === null) return undefined;
    const n = typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isInteger(n) || Math.abs(n) > 2 ** 31) {
      throw new TwirpError('malformed', `${name}: expected an int32, got ${JSON.stringify(v)}`);
    }
    return n;
  }

  timestamp(name: string): Date | undefined {
    const v = this.raw(name);
    if (v === undefined || v === null) return undefined;
    const d =
      typeof v === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(v)
        ? new Date(v)
        : undefined;
    if (!d || Number.isNaN(d.getTime()))
      throw new TwirpError('malformed', `${name}: expected an RFC 3339 timestamp, got ${JSON.stringify(v)}`);
    return d;
  }
}

const MAX_BODY_BYTES = 4 * 1024 * 1024;

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new TwirpError('malformed', 'request body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
