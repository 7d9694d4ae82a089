/**
 * Pure checks and helpers for host and cell paths. No I/O: these are shared by spec
 * validation, the mount plan and the input parsers, and are fuzzed by the unit tests.
 */
import { posix } from 'node:path';
import { UserError, show } from '../util/errors.js';

/** Linux's limits: one name (path component) has at most 255 bytes, a whole path at most 4095 (PATH_MAX with its NUL). */
export const NAME_MAX = 255;
export const PATH_MAX = 4095;

/**
 * An absolute path with no `..` component and no NUL, within Linux's name and path lengths.
 * `.` components and repeated slashes are tolerated (the seed allows them) and removed by
 * `normalizeAbsolute`.
 */
export function checkAbsolutePath(path: string, field: string): void {
  if (typeof path !== 'string' || path.length === 0) throw new UserError(field, 'must be a non-empty absolute path');
  if (path.includes('\0')) throw new UserError(field, `must not contain a NUL byte: ${show(path)}`);
  if (!path.startsWith('/')) throw new UserError(field, `must be an absolute path (starting with /): ${show(path)}`);
  if (path.split('/').includes('..')) throw new UserError(field, `must not contain '..': ${show(path)}`);
  const long = path.split('/').find((part) => Buffer.byteLength(part) > NAME_MAX);
  if (long !== undefined)
    throw new UserError(
      field,
      `has a component of ${Buffer.byteLength(long)} bytes, Linux allows at most ${NAME_MAX} per name: ${show(path)}`,
    );
  if (Buffer.byteLength(path) > PATH_MAX)
    throw new UserError(
      field,
      `is ${Buffer.byteLength(path)} bytes long, Linux allows at most ${PATH_MAX}: ${show(path)}`,
    );
}

/** Like checkAbsolutePath, and also refuses `/` itself. */
export function checkAbsoluteNotRoot(path: string, field: string): void {
  checkAbsolutePath(path, field);
  if (normalizeAbsolute(path) === '/') throw new UserError(field, `must not be /`);
}

/** `/a//b/./c/` -> `/a/b/c`. Only for paths that passed checkAbsolutePath. */
export function normalizeAbsolute(path: string): string {
  const normalized = posix.normalize(path);
  return normalized.length > 1 && normalized.endsWith('/') ? normalized.slice(0, -1) : normalized;
}

/** True when a mount at `mount` covers `target` (equal, or `target` lies below it). */
export function covers(mount: string, target: string): boolean {
  const m = normalizeAbsolute(mount);
  const t = normalizeAbsolute(target);
  if (m === '/' || m === t) return true;
  return t.startsWith(`${m}/`);
}

/** True when host paths `a` and `b` are equal or one contains the other. */
export function overlaps(a: string, b: string): boolean {
  return covers(a, b) || covers(b, a);
}

/** `/a/b/c` relative to `/a` -> `b/c`; `''` when equal. Caller guarantees covers(base, path). */
export function relativeTo(base: string, path: string): string {
  const b = normalizeAbsolute(base);
  const p = normalizeAbsolute(path);
  if (b === p) return '';
  return b === '/' ? p.slice(1) : p.slice(b.length + 1);
}
