/**
 * Mount batching: each run of consecutive mount operations becomes one `mount --all --fstab`
 * operation, and the fstab text the stage writes for it.
 */
import { join } from 'node:path';
import type { FstabEntry, SetupOp } from './plan.js';
import type { ScratchLayout } from './scratch-layout.js';

/** fstab escapes whitespace and backslashes in every field as octal. */
function fstabField(value: string): string {
  return value.replace(/[\\ \t\n]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
}

export function fstabText(entries: FstabEntry[]): string {
  return entries
    .map((e) => `${fstabField(e.source)} ${fstabField(e.target)} ${e.type} ${fstabField(e.options)} 0 0\n`)
    .join('');
}

function fstabEntry(op: SetupOp, privileged: boolean): FstabEntry | undefined {
  switch (op.op) {
    // Without root, proc and devpts keep the helper's fallbacks (a masked /proc refuses a fresh one).
    case 'proc':
      return privileged
        ? { source: 'proc', target: op.target, type: 'proc', options: 'nosuid,nodev,noexec' }
        : undefined;
    case 'devpts':
      return privileged
        ? { source: 'devpts', target: op.target, type: 'devpts', options: 'newinstance,ptmxmode=0666,mode=0620' }
        : undefined;
    case 'bind':
      return { source: op.source, target: op.target, type: 'none', options: 'bind' };
    case 'bind-ro':
      return { source: op.source, target: op.target, type: 'none', options: 'bind,ro' };
    case 'tmpfs':
      return { source: 'tmpfs', target: op.target, type: 'tmpfs', options: op.options };
    case 'overlay':
      return {
        source: 'overlay',
        target: op.target,
        type: 'overlay',
        options: `lowerdir=${op.lower},upperdir=${op.upper},workdir=${op.work},${op.options}`,
      };
    case 'image':
      return { source: op.file, target: op.target, type: 'erofs', options: op.options };
    case 'overlay-ro':
      return {
        source: 'overlay',
        target: op.target,
        type: 'overlay',
        options: `lowerdir=${op.lowers.join(':')},${op.options}`,
      };
    default:
      return undefined;
  }
}

/**
 * Replace each run of consecutive mounts by one `mounts` op: one mount(8) process for the
 * run instead of one per mount (each costs a fork, an exec and a mountinfo parse). For root
 * that is every mount of the cell: the root overlay, proc, /dev, devpts and the inputs. Without
 * root, proc and devpts stay separate ops, since the helper has fallbacks for them in a user
 * namespace. Pure; the files are written by the stage.
 */
export function batchMounts(ops: SetupOp[], layout: ScratchLayout, options: { rootless: boolean }): SetupOp[] {
  const out: SetupOp[] = [];
  let run: Array<{ op: SetupOp; entry: FstabEntry }> = [];
  const flush = () => {
    if (run.length > 1)
      out.push({
        op: 'mounts',
        file: join(layout.scratch, `mounts-${out.length}.fstab`),
        entries: run.map((r) => r.entry),
      });
    else if (run.length === 1) out.push(run[0]!.op);
    run = [];
  };
  for (const op of ops) {
    const entry = fstabEntry(op, !options.rootless);
    if (entry) {
      run.push({ op, entry });
      continue;
    }
    flush();
    out.push(op);
  }
  flush();
  return out;
}
