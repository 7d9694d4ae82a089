/**
 * The spec's JSON form: the request file written to SCRATCH/build-cell-request.json.
 * Unlike the seed, the request file never holds env values: only their names. The full
 * form (with values) exists only in memory, or in an owner-only file handed across sudo
 * and deleted as soon as it is read.
 */
import { UserError } from '../util/errors.js';
import type { BuildCellSpec } from './types.js';

export const REQUEST_FILE = 'build-cell-request.json';
export const REQUEST_VERSION = 1;

export function specToJson(spec: BuildCellSpec, options: { withEnvValues: boolean }): string {
  const env = options.withEnvValues ? spec.env : spec.env.map(([k]) => [k, null]);
  return `${JSON.stringify({ version: REQUEST_VERSION, ...spec, env }, null, 2)}\n`;
}

export function specFromJson(text: string): BuildCellSpec {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new UserError('request', `is not valid JSON: ${(error as Error).message}`);
  }
  if (!data || typeof data !== 'object') throw new UserError('request', 'must be a JSON object');
  const record = data as Record<string, unknown>;
  if (record.version !== REQUEST_VERSION) throw new UserError('request.version', `must be ${REQUEST_VERSION}`);
  const env = record.env;
  if (
    !Array.isArray(env) ||
    env.some((e) => !Array.isArray(e) || e.length !== 2 || typeof e[0] !== 'string' || typeof e[1] !== 'string')
  ) {
    throw new UserError(
      'request.env',
      'must be a list of [name, value] string pairs (a redacted request cannot be run)',
    );
  }
  const { version: _version, ...spec } = record;
  return spec as unknown as BuildCellSpec;
}
