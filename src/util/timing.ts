/** Phase timings: `timed(phase, fn)` adds fn's wall time (ms) to `timings[phase]`. */
export function phaseTimer<K extends string>(): { timings: Partial<Record<K, number>>; timed: <T>(phase: K, fn: () => Promise<T>) => Promise<T> } {
  const timings: Partial<Record<K, number>> = {};
  const timed = async <T>(phase: K, fn: () => Promise<T>): Promise<T> => {
    const start = performance.now();
    try {
      return await fn();
    } finally {
      timings[phase] = Math.round((timings[phase] ?? 0) + performance.now() - start);
    }
  };
  return { timings, timed };
}
