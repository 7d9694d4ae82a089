/**
 * Parsing of textual values shared by the CLI's flags and the action's inputs: enums, sizes,
 * counts and path mappings. Pure; each error names the flag or input it came from.
 */
import { resolve } from 'node:path';
import { UserError, show } from '../util/errors.js';
import { checkAbsoluteNotRoot } from './paths.js';
import type { TmpfsMount } from './types.js';

export function oneOf<T extends string>(value: string, accepted: readonly T[], field: string): T {
  const normalized = value.trim().toLowerCase();
  const found = accepted.find((a) => a === normalized);
  if (!found) throw new UserError(field, `unknown value ${show(value)}: accepted are ${accepted.join(', ')}`);
  return found;
}

export function bool(value: string, field: string): boolean {
  const normalized = value.trim().toLowerCase();
  if (normalized === 'true') return true;
  if (normalized === 'false') return false;
  throw new UserError(field, `must be true or false, got ${show(value)}`);
}

export function optionalInt(value: string | undefined, field: string, what: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(Number(value)) || Number(value) < 1) {
    throw new UserError(field, `must be ${what}, got ${show(value)}`);
  }
  return Number(value);
}

const UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** `512M`, `2G`, `1048576` (bytes); K/M/G/T are binary units, case-insensitive, optional trailing B/iB. */
export function optionalSize(value: string | undefined, field: string, minimum = 1024 * 1024): number | undefined {
  if (value === undefined) return undefined;
  const match = /^(\d+)\s*([kmgt]?)(i?b)?$/i.exec(value.trim());
  const bytes = match ? Number(match[1]) * UNITS[match[2]!.toLowerCase()]! : NaN;
  if (!match || !Number.isSafeInteger(bytes) || bytes < minimum) {
    const least = minimum === 1024 * 1024 ? 'of at least 1M ' : '';
    throw new UserError(field, `must be a size ${least}such as 512M or 2G (units K, M, G, T), got ${show(value)}`);
  }
  return bytes;
}

const DURATION_UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** `30m`, `12h`, `7d`, `2w`, `1d12h` (s, m, h, d, w): milliseconds. */
export function optionalDuration(value: string | undefined, field: string): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim().toLowerCase();
  const parts = [...text.matchAll(/(\d+)([smhdw])/g)];
  if (!text || parts.map((p) => p[0]).join('') !== text)
    throw new UserError(
      field,
      `must be a duration such as 30m, 12h, 7d or 2w (units s, m, h, d, w), got ${show(value)}`,
    );
  return parts.reduce((ms, p) => ms + Number(p[1]) * DURATION_UNITS[p[2]!]!, 0);
}

/** `HOST:CELL`: the cell path is the part after the last `:` that starts an absolute path. */
export function hostToCell(value: string, field: string, cwd: string): { source: string; destination: string } {
  const at = value.lastIndexOf(':/');
  if (at <= 0)
    throw new UserError(field, `must be HOST:CELL with an absolute cell path (e.g. ./src:/src), got ${show(value)}`);
  return { source: resolve(cwd, value.slice(0, at)), destination: value.slice(at + 1) };
}

/** `CELL:HOST`: split at the first `:`; the host path may be relative to the working directory. */
export function cellToHost(value: string, field: string, cwd: string): { source: string; destination: string } {
  const at = value.indexOf(':');
  if (at <= 0 || at === value.length - 1)
    throw new UserError(field, `must be CELL:HOST (e.g. /workspace/out:./out), got ${show(value)}`);
  const source = value.slice(0, at);
  if (!source.startsWith('/')) throw new UserError(field, `the cell path must be absolute, got ${show(source)}`);
  return { source, destination: resolve(cwd, value.slice(at + 1)) };
}

const TMPFS_SYNTAX = 'accepted are CELLPATH or CELLPATH:size=SIZE (e.g. /tmp, /build:size=2G)';

/**
 * `CELLPATH[:size=SIZE]` (as docker's --tmpfs, with size as the one option): options follow the
 * last `:`, and hold no `/`, so a cell path with a `:` of its own stays whole.
 */
export function tmpfsMount(value: string, field: string): TmpfsMount {
  const at = value.lastIndexOf(':');
  const options = at > 0 && !value.slice(at + 1).includes('/') ? value.slice(at + 1) : undefined;
  const destination = options === undefined ? value : value.slice(0, at);
  if (!destination.startsWith('/'))
    throw new UserError(field, `must be an absolute path inside the cell, got ${show(value)}: ${TMPFS_SYNTAX}`);
  checkAbsoluteNotRoot(destination, field);
  if (options === undefined) return { destination };
  let sizeBytes: number | undefined;
  for (const option of options.split(',')) {
    const size = /^size=(.*)$/.exec(option);
    if (!size) throw new UserError(field, `unknown option ${show(option)} in ${show(value)}: ${TMPFS_SYNTAX}`);
    if (sizeBytes !== undefined) throw new UserError(field, `size is given twice in ${show(value)}`);
    sizeBytes = optionalSize(size[1], field);
  }
  return { destination, sizeBytes };
}
