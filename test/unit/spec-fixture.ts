/** Shared, pure fixtures for the unit tests (not a test file itself). */
import type { BuildCellSpec } from '../../src/cellspec/types.js';
import { UserError } from '../../src/util/errors.js';
import { expect } from 'vitest';

/** A spec that passes validateSpec; tests mutate a fresh copy. */
export function baseSpec(overrides: Partial<BuildCellSpec> = {}): BuildCellSpec {
  return {
    root: '/var/lib/build-cell/images/rootfs/amd64-abc',
    scratch: '/var/lib/build-cell/cells/c1',
    workspacePath: '/workspace',
    workspaceSeed: { kind: 'empty' },
    imports: [{ source: '/host/src', destination: '/src' }],
    caches: [{ source: '/host/cache', destination: '/root/.cache' }],
    exports: [{ source: '/workspace/out', destination: '/host/out' }],
    command: { cwd: '/workspace', executable: '/bin/sh', argv: ['-c', 'true'] },
    env: [
      ['PATH', '/usr/bin:/bin'],
      ['HOME', '/root'],
    ],
    network: 'disabled',
    limits: {},
    cleanup: 'always',
    ...overrides,
  };
}

/** Run `fn`, expect a UserError for `field`, and return its message for further checks. */
export function expectUserError(fn: () => unknown, field: string, ...fragments: string[]): string {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  expect(caught, `expected a UserError on ${field}`).toBeInstanceOf(UserError);
  const error = caught as UserError;
  expect(error.field).toBe(field);
  expect(error.message.startsWith(`${field}: `)).toBe(true);
  for (const fragment of fragments) expect(error.message).toContain(fragment);
  return error.message;
}
