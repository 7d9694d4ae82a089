/**
 * What the size cap (./cap.ts) reports, and its line for the log: apart from the cap itself,
 * so the front ends and the engine's types load none of the store's upkeep to print it.
 */
import type { PrunedImage } from './prune.js';

export interface CapReport {
  maxBytes: number;
  /** All images together, before and after. */
  before: number;
  after: number;
  removed: PrunedImage[];
  /** Chosen but kept (in use). */
  kept: Array<{ entry: string; why: string }>;
  ms: number;
}

/** One line for the log: what the cap did (the front ends print it; a warning is theirs to say). */
export function describeCap(cap: Partial<CapReport> & { maxBytes: number }): string {
  const mb = (bytes: number) => `${Math.round(bytes / 1e6)} MB`;
  if (cap.after === undefined) return `store cap ${mb(cap.maxBytes)}: not applied`;
  const removed = cap.removed ?? [];
  const names = removed.map(
    (i) =>
      `${i.references[0] ?? (i.installKeys[0] ? `install ${i.installKeys[0].slice(0, 12)}` : i.digest.slice(0, 19))} (${i.arch}, ${mb(i.bytes)})`,
  );
  const kept = cap.kept?.length ? `; ${cap.kept.length} in use kept` : '';
  return `store cap ${mb(cap.maxBytes)}: images ${mb(cap.before ?? 0)} -> ${mb(cap.after)}${removed.length ? `, removed ${names.join(', ')}` : ''}${kept} (${cap.ms} ms)`;
}
