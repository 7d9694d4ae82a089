/**
 * Work that runs beside a log group without writing into it: what `fn` (and everything it
 * starts: @actions/cache's lines, a tar's output) writes to stdout and stderr is held until
 * `release()`, which prints it where the caller is (in a group of its own) and lets the rest
 * through. The runner's log reads as if the phases ran one after another, though the image's
 * cache entry downloads while the tools resolve. Whose write it is follows the async context
 * (AsyncLocalStorage), so the foreground's writes meanwhile pass straight through.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

interface Held {
  chunks: Array<{ stream: NodeJS.WriteStream; chunk: string | Uint8Array }>;
  released: boolean;
}

const context = new AsyncLocalStorage<Held>();
let hooked = false;

/** Route each stream's writes through the held context, once per process. */
function hookStreams(): void {
  if (hooked) return;
  hooked = true;
  for (const stream of [process.stdout, process.stderr]) {
    const write = stream.write.bind(stream) as (...args: unknown[]) => boolean;
    stream.write = (chunk: string | Uint8Array, ...rest: unknown[]) => {
      const held = context.getStore();
      if (!held || held.released) return write(chunk, ...rest);
      held.chunks.push({ stream, chunk });
      const done = rest.find((arg): arg is () => void => typeof arg === 'function');
      if (done) queueMicrotask(done);
      return true;
    };
  }
}

export interface HeldWork<T> {
  /** The work itself (its output still held until release()). */
  done: Promise<T>;
  /** Print what was held, let later writes through, and wait for the work. */
  release(): Promise<T>;
}

/** Start `fn` now, its output held until release(). */
export function holdLog<T>(fn: () => Promise<T>): HeldWork<T> {
  hookStreams();
  const held: Held = { chunks: [], released: false };
  const work = context.run(held, fn);
  // Awaited in release(); until then a rejection is not unhandled.
  work.catch(() => undefined);
  return {
    done: work,
    release: () => {
      held.released = true;
      for (const { stream, chunk } of held.chunks.splice(0)) stream.write(chunk);
      return work;
    },
  };
}
