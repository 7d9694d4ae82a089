/**
 * The one place where a failure must not fail the build (Actions cache, job summary,
 * file-command forwarding): it becomes a warning that says what was being done.
 */
import * as core from '@actions/core';
import { errorMessage } from '../util/errors.js';

export async function bestEffort<T>(what: string, fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch (error) {
    core.warning(`${what} failed (the build goes on): ${errorMessage(error)}`);
    return undefined;
  }
}
