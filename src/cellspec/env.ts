/** Building the cell's environment: defaults, then the image's config Env, then the user's. Pure. */

export const DEFAULT_ENV: ReadonlyArray<[string, string]> = [
  ['PATH', '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
  ['HOME', '/root'],
];

/** Later layers win; a name keeps the position where it first appeared. */
export function mergeEnv(...layers: ReadonlyArray<ReadonlyArray<readonly [string, string]>>): Array<[string, string]> {
  const merged = new Map<string, string>();
  for (const layer of layers) for (const [name, value] of layer) merged.set(name, value);
  return [...merged];
}

/** `NAME=VALUE` strings (an image config's Env) as pairs; entries without `=` are skipped. */
export function parseEnvStrings(entries: readonly string[]): Array<[string, string]> {
  return entries.flatMap((entry): Array<[string, string]> => {
    const eq = entry.indexOf('=');
    return eq > 0 ? [[entry.slice(0, eq), entry.slice(eq + 1)]] : [];
  });
}
