import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { REQUEST_VERSION, specFromJson, specToJson } from '../../src/cellspec/spec-file.js';
import type { BuildCellSpec } from '../../src/cellspec/types.js';
import { UserError } from '../../src/util/errors.js';
import { baseSpec, expectUserError } from './spec-fixture.js';

/** A secret long and distinctive enough that it cannot appear in the JSON by accident. */
const secret = fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }).map((s) => `S3CR3T-${s}`);
const envName = fc.stringMatching(/^[A-Z_][A-Z0-9_]{0,10}$/);

describe('specToJson without env values', () => {
  it('property: no env value ever appears in the JSON, in raw or escaped form', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(envName, secret), { minLength: 1, maxLength: 5 }), (env) => {
        const spec = baseSpec({ env });
        const json = specToJson(spec, { withEnvValues: false });
        for (const [, value] of env) {
          expect(json.includes(value)).toBe(false);
          expect(json.includes(JSON.stringify(value).slice(1, -1))).toBe(false);
        }
        expect(json.includes('S3CR3T-')).toBe(false);
        const parsed = JSON.parse(json) as { env: unknown[]; version: number };
        expect(parsed.version).toBe(REQUEST_VERSION);
        expect(parsed.env).toEqual(env.map(([k]) => [k, null]));
      }),
      { numRuns: 150 },
    );
  });

  it('ends with a newline and keeps the other fields', () => {
    const spec = baseSpec({ script: 'echo hi\n' });
    const json = specToJson(spec, { withEnvValues: false });
    expect(json.endsWith('}\n')).toBe(true);
    const parsed = JSON.parse(json) as Record<string, unknown>;
    expect(parsed.root).toBe(spec.root);
    expect(parsed.command).toEqual(spec.command);
    expect(parsed.script).toBe('echo hi\n');
  });

  it('cannot be read back as a runnable request', () => {
    const json = specToJson(baseSpec(), { withEnvValues: false });
    expectUserError(() => specFromJson(json), 'request.env', 'redacted request cannot be run');
  });
});

describe('specToJson with env values', () => {
  it('property: round-trips through specFromJson', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(envName, fc.string({ unit: 'binary', maxLength: 30 })), { maxLength: 5 }),
        fc.array(fc.string({ unit: 'binary', maxLength: 20 }), { maxLength: 4 }),
        fc.option(fc.string({ unit: 'binary', maxLength: 40 }), { nil: undefined }),
        (env, argv, script) => {
          const spec: BuildCellSpec = baseSpec({
            env,
            command: { cwd: '/workspace', executable: 'sh', argv },
            limits: { memoryBytes: 1 << 30 },
            ...(script === undefined ? {} : { script }),
          });
          expect(specFromJson(specToJson(spec, { withEnvValues: true }))).toEqual(spec);
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe('specFromJson rejects', () => {
  it('bad JSON', () => {
    expectUserError(() => specFromJson('{not json'), 'request', 'is not valid JSON');
    expectUserError(() => specFromJson(''), 'request', 'is not valid JSON');
  });
  it('non-objects', () => {
    expectUserError(() => specFromJson('null'), 'request', 'must be a JSON object');
    expectUserError(() => specFromJson('42'), 'request', 'must be a JSON object');
    expectUserError(() => specFromJson('"x"'), 'request', 'must be a JSON object');
  });
  it('a missing or wrong version', () => {
    const good = JSON.parse(specToJson(baseSpec(), { withEnvValues: true })) as Record<string, unknown>;
    expectUserError(
      () => specFromJson(JSON.stringify({ ...good, version: 2 })),
      'request.version',
      `must be ${REQUEST_VERSION}`,
    );
    expectUserError(() => specFromJson(JSON.stringify({ ...good, version: '1' })), 'request.version', 'must be 1');
    const { version: _v, ...noVersion } = good;
    expectUserError(() => specFromJson(JSON.stringify(noVersion)), 'request.version', 'must be 1');
  });
  it('malformed env entries', () => {
    const good = JSON.parse(specToJson(baseSpec(), { withEnvValues: true })) as Record<string, unknown>;
    for (const env of [undefined, {}, [['A']], [['A', 'b', 'c']], [['A', 1]], [[1, 'x']], ['A=b']]) {
      expect(() => specFromJson(JSON.stringify({ ...good, env }))).toThrow(UserError);
      expectUserError(
        () => specFromJson(JSON.stringify({ ...good, env })),
        'request.env',
        '[name, value] string pairs',
      );
    }
  });
  it('does not return the version field', () => {
    const spec = specFromJson(specToJson(baseSpec(), { withEnvValues: true }));
    expect('version' in spec).toBe(false);
  });
});
