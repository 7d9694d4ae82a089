/**
 * install-push: whether this job may push the install step's derived image to install-registry.
 * auto pushes only where the workflow can write there: registry credentials are given, and the
 * run is not for a pull request from a fork (its code must never write an image that the base
 * repository's own runs would then pull). true and false do as they say. A push that the
 * registry refuses is a warning either way (install/registry.ts).
 */
import { readFileSync } from 'node:fs';
import type { ActionInputs } from './inputs.js';

/** The pull_request events, whose payload names the head repository. */
const PULL_REQUEST_EVENTS = new Set([
  'pull_request',
  'pull_request_target',
  'pull_request_review',
  'pull_request_review_comment',
]);

/** Whether the run is for a pull request whose head is another repository (a fork): from the event payload. */
export function isForkPullRequest(env: NodeJS.ProcessEnv): boolean {
  if (!PULL_REQUEST_EVENTS.has(env.GITHUB_EVENT_NAME ?? '')) return false;
  let event: { pull_request?: { head?: { repo?: { full_name?: string; fork?: boolean } | null } } };
  try {
    event = JSON.parse(readFileSync(env.GITHUB_EVENT_PATH ?? '', 'utf8')) as typeof event;
  } catch {
    return true; // a pull request whose head cannot be told: not trusted to push
  }
  const head = event.pull_request?.head?.repo;
  // A deleted fork has no repo: not this repository either.
  return !head || head.fork === true || head.full_name !== env.GITHUB_REPOSITORY;
}

/** Whether to push, and why (for the log). Pure but for the event file. */
export function decideInstallPush(inputs: ActionInputs, env: NodeJS.ProcessEnv): { push: boolean; why: string } {
  const mode = inputs.install?.registry?.push;
  if (!mode) return { push: false, why: 'no install-registry' };
  if (mode !== 'auto') return { push: mode === 'true', why: `install-push is ${mode}` };
  if (isForkPullRequest(env))
    return { push: false, why: 'install-push auto: this run is for a pull request from a fork' };
  if (!inputs.registry.username || !inputs.registry.password)
    return { push: false, why: 'install-push auto: no registry credentials (registry-username, registry-password)' };
  return { push: true, why: 'install-push auto: registry credentials given, not a pull request from a fork' };
}
