/**
 * Every check the seed makes on a spec, as a pure function: it throws a UserError naming the
 * field before anything touches the host. Checks that need the filesystem (runtime prefix,
 * sentinel, symlinks) live in cell/runtime-root.ts and run right after this one.
 */
import { UserError, show } from '../util/errors.js';
import { PATH_MAX, checkAbsoluteNotRoot, checkAbsolutePath, covers, normalizeAbsolute, overlaps } from './paths.js';
import { CLEANUP_POLICIES, NETWORK_POLICIES, type BuildCellSpec, type ResourceLimits } from './types.js';

export function validateSpec(spec: BuildCellSpec): void {
  checkAbsoluteNotRoot(spec.root, 'root');
  checkAbsoluteNotRoot(spec.scratch, 'scratch');
  if (overlaps(spec.root, spec.scratch)) {
    throw new UserError('scratch', `${show(spec.scratch)} must not overlap the root ${show(spec.root)}`);
  }
  checkAbsoluteNotRoot(spec.workspacePath, 'workspacePath');

  const seed = spec.workspaceSeed;
  if (seed.kind === 'snapshot') checkAbsoluteNotRoot(seed.path, 'workspaceSeed.path');
  else if (seed.kind === 'archive') {
    checkAbsoluteNotRoot(seed.path, 'workspaceSeed.path');
    if (!isWorkspaceArchive(seed.path)) {
      throw new UserError(
        'workspaceSeed.path',
        `unsupported archive ${show(seed.path)}: accepted are .tar, .tar.gz and .tgz`,
      );
    }
  } else if (seed.kind !== 'empty') {
    throw new UserError(
      'workspaceSeed.kind',
      `unknown seed ${show((seed as { kind: string }).kind)}: accepted are empty, snapshot, archive`,
    );
  }

  spec.imports.forEach((m, i) => {
    checkAbsoluteNotRoot(m.source, `imports[${i}].source`);
    checkAbsoluteNotRoot(m.destination, `imports[${i}].destination`);
  });
  spec.caches.forEach((m, i) => {
    checkAbsoluteNotRoot(m.source, `caches[${i}].source`);
    checkAbsoluteNotRoot(m.destination, `caches[${i}].destination`);
  });
  spec.exports.forEach((m, i) => {
    checkAbsoluteNotRoot(m.source, `exports[${i}].source`);
    checkAbsoluteNotRoot(m.destination, `exports[${i}].destination`);
  });
  checkTmpfs(spec);
  checkMountDestinations(spec);

  checkAbsolutePath(spec.command.cwd, 'command.cwd');
  checkCellPathLengths(spec);
  checkExecutable(spec.command.executable);
  spec.command.argv.forEach((arg, i) => {
    if (typeof arg !== 'string' || arg.includes('\0'))
      throw new UserError(`command.argv[${i}]`, 'must be a string without NUL bytes');
  });
  checkEnv(spec.env);
  if (!NETWORK_POLICIES.includes(spec.network)) {
    throw new UserError('network', `unknown policy ${show(spec.network)}: accepted are ${NETWORK_POLICIES.join(', ')}`);
  }
  if (!CLEANUP_POLICIES.includes(spec.cleanup)) {
    throw new UserError('cleanup', `unknown policy ${show(spec.cleanup)}: accepted are ${CLEANUP_POLICIES.join(', ')}`);
  }
  checkLimits(spec.limits);
}

export function isWorkspaceArchive(path: string): boolean {
  return /\.(tar|tar\.gz|tgz)$/.test(path);
}

/**
 * Import and cache destinations must not cover one another (as in the seed), nor the
 * workspace: one may lie inside the workspace (Cargo's target/, node_modules/), mounted over
 * it, but not be it or contain it. A tmpfs is held to the same: so the plan can mount each
 * after the workspace and before the imports and caches, with no mount hiding another.
 */
function checkMountDestinations(spec: BuildCellSpec): void {
  const destinations = [
    ...spec.imports.map((m, i) => ({ field: `imports[${i}].destination`, path: m.destination })),
    ...spec.caches.map((m, i) => ({ field: `caches[${i}].destination`, path: m.destination })),
    ...tmpfsDestinations(spec),
  ];
  for (let i = 0; i < destinations.length; i++) {
    const left = destinations[i]!;
    if (covers(left.path, spec.workspacePath)) {
      throw new UserError(
        left.field,
        `${show(left.path)} conflicts with the workspace path ${show(spec.workspacePath)}: a destination may lie inside the workspace, not be it or contain it`,
      );
    }
    for (let j = i + 1; j < destinations.length; j++) {
      const right = destinations[j]!;
      if (overlaps(left.path, right.path)) {
        throw new UserError(
          right.field,
          `${show(right.path)} conflicts with ${left.field} ${show(left.path)}: mount destinations must not cover one another`,
        );
      }
    }
  }
  // The cell's own helper directory and the kernel filesystems are not user mount points.
  for (const d of destinations) {
    for (const reserved of RESERVED_CELL_PATHS) {
      if (covers(d.path, reserved) || covers(reserved, d.path)) {
        throw new UserError(d.field, `${show(d.path)} would cover ${reserved}, which build-cell mounts itself`);
      }
    }
  }
  for (const reserved of RESERVED_CELL_PATHS) {
    if (covers(spec.workspacePath, reserved) || covers(reserved, spec.workspacePath)) {
      throw new UserError(
        'workspacePath',
        `${show(spec.workspacePath)} would cover ${reserved}, which build-cell mounts itself`,
      );
    }
  }
}

function tmpfsDestinations(spec: BuildCellSpec): Array<{ field: string; path: string }> {
  return (spec.tmpfs ?? []).map((m, i) => ({ field: `tmpfs[${i}].destination`, path: m.destination }));
}

/**
 * A tmpfs is mounted after the workspace (it may lie inside it, not contain it; see
 * checkMountDestinations) and starts empty: nothing below it exists before the command, so the
 * working directory may be the tmpfs itself, not a directory below it.
 */
function checkTmpfs(spec: BuildCellSpec): void {
  if (spec.tmpfs !== undefined && !Array.isArray(spec.tmpfs))
    throw new UserError('tmpfs', 'must be a list of {destination, sizeBytes?}');
  for (const [i, m] of (spec.tmpfs ?? []).entries()) {
    checkAbsoluteNotRoot(m.destination, `tmpfs[${i}].destination`);
    if (m.sizeBytes !== undefined && (!Number.isSafeInteger(m.sizeBytes) || m.sizeBytes < 1024 * 1024))
      throw new UserError(
        `tmpfs[${i}].sizeBytes`,
        `must be a whole number of at least 1048576, got ${show(m.sizeBytes)}`,
      );
    if (
      covers(m.destination, spec.command.cwd) &&
      normalizeAbsolute(m.destination) !== normalizeAbsolute(spec.command.cwd)
    )
      throw new UserError(
        'command.cwd',
        `${show(spec.command.cwd)} lies below the tmpfs ${show(m.destination)}, which starts empty: the working directory may be the tmpfs itself, or outside it`,
      );
  }
}

/**
 * Room the engine needs beyond the state dir's own paths (spec.root, spec.scratch) for the cell
 * paths it creates and mounts: the image's store name (`<arch>-<64 hex>`, where the request is
 * checked with a shorter placeholder), the overlay dirs of the scratch, a `/proc/PID/root` prefix.
 */
const ENGINE_PATH_ROOM = 128;

/**
 * Cell paths are created and mounted below the state dir (in the image's rootfs, in the
 * scratch): with it they must fit Linux's PATH_MAX, or the run would fail half-way with
 * ENAMETOOLONG.
 */
function checkCellPathLengths(spec: BuildCellSpec): void {
  const prefix = Math.max(Buffer.byteLength(spec.root), Buffer.byteLength(spec.scratch)) + ENGINE_PATH_ROOM;
  const max = PATH_MAX - prefix;
  const cellPaths = [
    { field: 'workspacePath', path: spec.workspacePath },
    ...spec.imports.map((m, i) => ({ field: `imports[${i}].destination`, path: m.destination })),
    ...spec.caches.map((m, i) => ({ field: `caches[${i}].destination`, path: m.destination })),
    ...tmpfsDestinations(spec),
    ...spec.exports.map((m, i) => ({ field: `exports[${i}].source`, path: m.source })),
    { field: 'command.cwd', path: spec.command.cwd },
  ];
  for (const { field, path } of cellPaths) {
    const length = Buffer.byteLength(path);
    if (length > max) {
      throw new UserError(
        field,
        `is ${length} bytes long: a cell path may have at most ${Math.max(max, 0)} bytes with this state dir (Linux's PATH_MAX of 4096 bytes also holds the state dir's own path): ${show(path)}`,
      );
    }
  }
}

/** Cell paths build-cell mounts itself. */
export const RESERVED_CELL_PATHS = ['/proc', '/dev', '/.build-cell'];

function checkExecutable(executable: string): void {
  if (typeof executable !== 'string' || executable.length === 0) {
    throw new UserError(
      'command.executable',
      'must be an absolute cell path or a bare command name, got an empty value',
    );
  }
  if (executable.includes('\0')) throw new UserError('command.executable', 'must not contain a NUL byte');
  if (executable.startsWith('/')) {
    checkAbsoluteNotRoot(executable, 'command.executable');
    return;
  }
  if (executable.includes('/')) {
    throw new UserError(
      'command.executable',
      `must be an absolute cell path or a bare command name (no '/'): ${show(executable)}`,
    );
  }
  if (executable === '.' || executable === '..') {
    throw new UserError(
      'command.executable',
      `must be an absolute cell path or a bare command name: ${show(executable)}`,
    );
  }
}

/** Linux's MAX_ARG_STRLEN (32 pages of 4 KiB) less the NUL: the longest single NAME=VALUE entry a program can be given. */
export const MAX_ENV_ENTRY = 128 * 1024 - 1;
/**
 * The most environment accepted in all. Linux limits a program's arguments and environment
 * together (ARG_MAX: a quarter of the stack limit, usually 2 MiB), and the command's own
 * arguments and build-cell's helpers need their share.
 */
export const MAX_ENV_TOTAL = 1024 * 1024;

export function checkEnv(env: ReadonlyArray<readonly [string, string]>, field = 'env'): void {
  let total = 0;
  for (const [key, value] of env) {
    if (typeof key !== 'string' || key.length === 0) throw new UserError(field, 'keys must not be empty');
    if (key.includes('=')) throw new UserError(field, `key ${show(key)} must not contain '='`);
    if (key.includes('\0')) throw new UserError(field, `key ${show(key)} must not contain a NUL byte`);
    // A name with a newline (or another control character) would be a different name to every
    // tool that reads an environment line by line.
    if (/[\x01-\x1f\x7f]/.test(key))
      throw new UserError(field, `key ${show(key)} must not contain a newline or another control character`);
    if (typeof value !== 'string') throw new UserError(`${field}.${key}`, 'value must be a string');
    if (value.includes('\0')) throw new UserError(`${field}.${key}`, 'value must not contain a NUL byte');
    const entry = Buffer.byteLength(key) + 1 + Buffer.byteLength(value);
    if (entry > MAX_ENV_ENTRY) {
      throw new UserError(
        `${field}.${key}`,
        `is ${entry} bytes as NAME=VALUE: Linux gives a program at most ${MAX_ENV_ENTRY} bytes per environment entry (MAX_ARG_STRLEN)`,
      );
    }
    total += entry + 1;
  }
  if (total > MAX_ENV_TOTAL) {
    throw new UserError(
      field,
      `holds ${total} bytes in all: at most ${MAX_ENV_TOTAL} are accepted (Linux limits a program's arguments and environment together, usually to 2 MiB)`,
    );
  }
}

function checkLimits(limits: ResourceLimits): void {
  const check = (value: number | undefined, field: string, min: number) => {
    if (value === undefined) return;
    if (!Number.isSafeInteger(value) || value < min) {
      throw new UserError(field, `must be a whole number of at least ${min}, got ${show(value)}`);
    }
  };
  check(limits.cpuTimeSeconds, 'limits.cpuTimeSeconds', 1);
  check(limits.memoryBytes, 'limits.memoryBytes', 1024 * 1024);
  check(limits.maxProcesses, 'limits.maxProcesses', 1);
}

/** A copy of the spec with every path normalized (`/a//b/.` -> `/a/b`). Call after validateSpec. */
export function normalizeSpec(spec: BuildCellSpec): BuildCellSpec {
  const seed =
    spec.workspaceSeed.kind === 'empty'
      ? spec.workspaceSeed
      : { ...spec.workspaceSeed, path: normalizeAbsolute(spec.workspaceSeed.path) };
  const pair = <T extends { source: string; destination: string }>(m: T): T => ({
    ...m,
    source: normalizeAbsolute(m.source),
    destination: normalizeAbsolute(m.destination),
  });
  return {
    ...spec,
    root: normalizeAbsolute(spec.root),
    scratch: normalizeAbsolute(spec.scratch),
    workspacePath: normalizeAbsolute(spec.workspacePath),
    workspaceSeed: seed,
    imports: spec.imports.map(pair),
    caches: spec.caches.map(pair),
    exports: spec.exports.map(pair),
    ...(spec.tmpfs ? { tmpfs: spec.tmpfs.map((m) => ({ ...m, destination: normalizeAbsolute(m.destination) })) } : {}),
    command: { ...spec.command, cwd: normalizeAbsolute(spec.command.cwd) },
  };
}
