/**
 * One run of the bundled action with the host after-check (mounts, binfmt, cgroups, processes of
 * the state dir as they were): the image given, no image cache, the state dir given, unless the
 * inputs say otherwise.
 */
import { runAction, type ActionRun, type RunActionOptions } from './action-harness.js';
import { expectHostUnchanged, snapshotHost } from './cli.js';

export interface CheckedActionBase {
  /** The Node that runs the action (`using: node24`: node24Binary()). */
  node: string;
  /** The `image` input. */
  image: string;
  /** The `state-dir` input. */
  state: string;
}

export async function checkedAction(
  base: CheckedActionBase,
  inputs: Record<string, string>,
  options: RunActionOptions = {},
): Promise<ActionRun> {
  const before = snapshotHost();
  const run = await runAction({
    node: base.node,
    ...options,
    inputs: { image: base.image, 'image-cache': 'false', 'state-dir': base.state, ...inputs },
  });
  expectHostUnchanged(before, base.state);
  return run;
}
