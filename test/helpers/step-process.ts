/**
 * One step's process for the action harness (action-harness.ts), run like the
 * runner runs it: output collected from both streams, cancellation signals to
 * one PID with the runner's escalation (SIGINT → 7.5 s → SIGTERM → 2.5 s →
 * SIGKILL), a per-step time limit, and the streams drained after exit.
 */
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';

const SIGINT_TIMEOUT_MS = 7_500;
const SIGTERM_TIMEOUT_MS = 2_500;
const STREAM_DRAIN_MS = 5_000;

/** ppid → child PIDs, from /proc. */
function processChildren(): Map<number, number[]> {
  const map = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // pid (comm) state ppid ...: comm may contain spaces and parentheses.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = map.get(ppid) ?? [];
      list.push(Number(name));
      map.set(ppid, list);
    } catch {
      /* exited meanwhile */
    }
  }
  return map;
}

/**
 * The process in `root`'s tree (root included) running `node <script>`: argv[1] is the
 * script (a wrapper such as runuser has the script further along its own argv).
 */
export function findScriptProcess(root: number, script: string): number | undefined {
  const children = processChildren();
  const queue = [root];
  while (queue.length) {
    const pid = queue.shift()!;
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (argv[1] === script) return pid;
    } catch {
      /* exited */
    }
    queue.push(...(children.get(pid) ?? []));
  }
  return undefined;
}

export interface SpawnStepOptions {
  step: 'main' | 'post';
  command: string[];
  script: string;
  /** Signal the process running `script` rather than the spawned (wrapper) PID. */
  signalScriptProcess: boolean;
  cwd: string;
  env: Record<string, string>;
  signalAfterMs?: number;
  signal: 'SIGINT' | 'SIGTERM';
  escalate: boolean;
  timeoutMs: number;
}

/** How a step's process ran. */
export interface SpawnedStep {
  step: 'main' | 'post';
  script: string;
  pid: number | undefined;
  /** Exit code, or null when killed by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /**
   * Both streams' chunks in the order they arrived (the runner reads commands from both, in that
   * order), with when each arrived (ms since the step started, for the bench's phase times).
   */
  output: Array<{ stream: 'stdout' | 'stderr'; text: string; atMs: number }>;
  durationMs: number;
  timedOut: boolean;
  /** Signals the harness sent: which, ms since the step started, to which PID. */
  signalsSent: { signal: NodeJS.Signals; atMs: number; pid: number }[];
  /** The environment the step ran with. */
  processEnv: Record<string, string>;
}

/** Chunks as text, each stream decoded on its own (a UTF-8 sequence may span two chunks of one stream). */
function decodeChunks(
  chunks: Array<{ stream: 'stdout' | 'stderr'; chunk: Buffer; atMs: number }>,
): Array<{ stream: 'stdout' | 'stderr'; text: string; atMs: number }> {
  const decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };
  return chunks.map(({ stream, chunk, atMs }) => ({ stream, text: decoders[stream].write(chunk), atMs }));
}

export function spawnStep(o: SpawnStepOptions): Promise<SpawnedStep> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(o.command[0]!, o.command.slice(1), {
      cwd: o.cwd,
      env: o.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    const output: Array<{ stream: 'stdout' | 'stderr'; chunk: Buffer; atMs: number }> = [];
    child.stdout.on('data', (d: Buffer) => {
      stdout.push(d);
      output.push({ stream: 'stdout', chunk: d, atMs: Date.now() - started });
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr.push(d);
      output.push({ stream: 'stderr', chunk: d, atMs: Date.now() - started });
    });
    const signalsSent: { signal: NodeJS.Signals; atMs: number; pid: number }[] = [];
    const timers: NodeJS.Timeout[] = [];
    let exited = false;
    let timedOut = false;
    const send = (signal: NodeJS.Signals): void => {
      if (exited || child.pid === undefined) return;
      // One PID, as the runner does (kill(pid, sig), not the process group).
      const pid = (o.signalScriptProcess && findScriptProcess(child.pid, o.script)) || child.pid;
      try {
        process.kill(pid, signal);
        signalsSent.push({ signal, atMs: Date.now() - started, pid });
      } catch {
        /* gone */
      }
    };
    if (o.signalAfterMs !== undefined) {
      timers.push(
        setTimeout(() => {
          send(o.signal);
          if (!o.escalate) return;
          if (o.signal === 'SIGINT') {
            timers.push(
              setTimeout(() => {
                send('SIGTERM');
                timers.push(setTimeout(() => send('SIGKILL'), SIGTERM_TIMEOUT_MS));
              }, SIGINT_TIMEOUT_MS),
            );
          } else {
            timers.push(setTimeout(() => send('SIGKILL'), SIGTERM_TIMEOUT_MS));
          }
        }, o.signalAfterMs),
      );
    }
    timers.push(
      setTimeout(() => {
        timedOut = true;
        send('SIGKILL');
      }, o.timeoutMs),
    );
    let settled = false;
    const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (settled) return;
      settled = true;
      for (const t of timers) clearTimeout(t);
      resolve({
        step: o.step,
        script: o.script,
        pid: child.pid,
        code,
        signal,
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
        output: decodeChunks(output),
        durationMs: Date.now() - started,
        timedOut,
        signalsSent,
        processEnv: o.env,
      });
    };
    child.once('error', (err) => {
      for (const t of timers) clearTimeout(t);
      if (!settled) {
        settled = true;
        reject(new Error(`cannot run ${o.command.join(' ')}: ${err.message}`));
      }
    });
    child.once('exit', (code, signal) => {
      exited = true;
      // Like the runner: wait for the output streams to close, at most 5 s after exit
      // (a leftover background process may hold them open).
      const drain = setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
        finish(code, signal);
      }, STREAM_DRAIN_MS);
      child.once('close', () => {
        clearTimeout(drain);
        finish(code, signal);
      });
    });
  });
}
