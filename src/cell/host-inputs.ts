/**
 * The checks of a cell's host inputs (workspace, imports, caches), read-only, before anything
 * is written: they exist, are of the kind their use needs, and lie outside the state dir.
 */
// Synchronous metadata calls on the warm path: cheaper than thread-pool round trips for a few stats.
import { lstatSync, realpathSync } from 'node:fs';
import { overlaps } from '../cellspec/paths.js';
import type { BuildCellSpec, CellSpecInput } from '../cellspec/types.js';
import { UserError, show } from '../util/errors.js';

/**
 * The host inputs must exist: checked (read-only) before anything is written. Returns whether
 * each import is a directory or a file (its mount target must match).
 */
export async function checkHostInputs(spec: BuildCellSpec): Promise<Array<'dir' | 'file'>> {
  const seed = spec.workspaceSeed;
  if (seed.kind !== 'empty') {
    const info = lstatSync(seed.path, { throwIfNoEntry: false });
    if (!info) throw new UserError('workspace', `${show(seed.path)} does not exist`);
    if (seed.kind === 'snapshot' && !info.isDirectory())
      throw new UserError('workspace', `${show(seed.path)} is neither a directory nor a .tar/.tar.gz/.tgz archive`);
    if (seed.kind === 'archive' && !info.isFile())
      throw new UserError('workspace', `archive ${show(seed.path)} is not a file`);
  }
  const importKinds: Array<'dir' | 'file'> = [];
  for (const [i, m] of spec.imports.entries()) {
    const info = lstatSync(m.source, { throwIfNoEntry: false });
    if (!info) throw new UserError(`imports[${i}].source`, `${show(m.source)} does not exist`);
    importKinds.push(info.isDirectory() ? 'dir' : 'file');
  }
  for (const [i, m] of spec.caches.entries()) {
    const info = lstatSync(m.source, { throwIfNoEntry: false });
    if (info && !info.isDirectory()) throw new UserError(`caches[${i}].source`, `${show(m.source)} is not a directory`);
  }
  return importKinds;
}

/** Host inputs become overlay lower layers: none may contain, or lie inside, the state dir. */
export async function checkOutsideStateDir(spec: CellSpecInput, prefix: string): Promise<void> {
  const inputs = [
    ...(spec.workspaceSeed.kind === 'snapshot' ? [{ field: 'workspace', path: spec.workspaceSeed.path }] : []),
    ...spec.imports.map((m, i) => ({ field: `imports[${i}].source`, path: m.source })),
    ...spec.caches.map((m, i) => ({ field: `caches[${i}].source`, path: m.source })),
  ];
  for (const input of inputs) {
    let real = input.path;
    try {
      real = realpathSync(input.path);
    } catch {
      // a missing path is reported by checkHostInputs
    }
    if (overlaps(real, prefix))
      throw new UserError(
        input.field,
        `${show(input.path)} must not contain or lie inside the state dir ${show(prefix)}`,
      );
  }
}
