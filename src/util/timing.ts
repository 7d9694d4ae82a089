/** Milliseconds from an arbitrary origin (process.hrtime: the performance global loads perf_hooks). */
export function now(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/**
 * Phase timings: `timed(phase, fn)` adds fn's wall time (ms) to `timings[phase]`; `since(phase,
 * start)` adds the time since `start` (a now()), for a phase that is a stretch of code.
 */
export function phaseTimer<K extends string>(): {
  timings: Partial<Record<K, number>>;
  timed: <T>(phase: K, fn: () => Promise<T>) => Promise<T>;
  since: (phase: K, start: number) => void;
} {
  const timings: Partial<Record<K, number>> = {};
  const since = (phase: K, start: number): void => {
    // 0.1 ms resolution: a warm run's phases are a few ms each.
    timings[phase] = Math.round(((timings[phase] ?? 0) + now() - start) * 10) / 10;
  };
  const timed = async <T>(phase: K, fn: () => Promise<T>): Promise<T> => {
    const start = now();
    try {
      return await fn();
    } finally {
      since(phase, start);
    }
  };
  return { timings, timed, since };
}
