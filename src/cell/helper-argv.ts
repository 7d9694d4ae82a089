/**
 * The inner helper's argv: a plan's setup operations, then its exec step, as the arguments
 * helper.sh reads (one `case` per operation there).
 */
import type { CellPlan } from './plan.js';

/** The helper's argv: each operation and its arguments, then `exec`. */
export function helperArgv(plan: CellPlan): string[] {
  const argv: string[] = [];
  for (const op of plan.ops) {
    switch (op.op) {
      case 'ns-check':
        argv.push(op.op, String(op.fd));
        break;
      case 'root-check':
        argv.push(op.op, op.prefix, op.root);
        break;
      case 'wait-go':
      case 'loopback':
      case 'wait-map':
        argv.push(op.op);
        break;
      case 'enter-userns':
        argv.push(op.op, op.proc, op.unshare, op.shell);
        break;
      case 'mounts':
        argv.push(op.op, op.file);
        break;
      case 'overlay':
        argv.push(op.op, op.lower, op.upper, op.work, op.target, op.options);
        break;
      case 'overlay-ro':
        argv.push(op.op, op.lowers.join(':'), op.target, op.options);
        break;
      case 'image':
        argv.push(op.op, op.file, op.target, op.options);
        break;
      case 'flatten-owners':
        argv.push(op.op, op.dir, op.list);
        break;
      case 'tmpfs':
        argv.push(op.op, op.target, op.options);
        break;
      case 'bind':
      case 'bind-ro':
        argv.push(op.op, op.source, op.target);
        break;
      case 'proc':
      case 'devpts':
      case 'binfmt-mount':
        argv.push(op.op, op.target);
        break;
      case 'binfmt-register':
        argv.push(op.op, op.dir, op.name, op.rule, op.scope);
        break;
      case 'cgroup':
        argv.push(op.op, op.dir);
        break;
      case 'hostname':
        argv.push(op.op, op.name);
        break;
    }
  }
  const e = plan.exec;
  const limit = (n: number | undefined) => (n === undefined ? '-' : String(n));
  argv.push(
    'exec',
    e.cwd,
    limit(e.cpuTimeSeconds),
    limit(e.memoryBytes),
    limit(e.maxProcesses),
    e.root,
    e.tools.env,
    e.tools.prlimit,
    e.tools.unshare,
    e.executable,
    ...e.argv,
  );
  return argv;
}
