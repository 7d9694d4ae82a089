// Rows 11: sessions, a session step (as the runner runs it) and session exec vs a warm run.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { measureGroup } from '../lib/harness.mjs';
import { once } from '../lib/util.mjs';

export const rows = [11];

export async function addRows(ctx) {
  const { tmp: TMP, BC, IMG, STATE, bcRun } = ctx;
  const sessions = join(STATE, 'sessions');
  once([
    ...BC,
    'session',
    'start',
    '--name',
    'bench',
    '--image',
    IMG.amd64,
    '--tls-verify',
    'false',
    '--state-dir',
    STATE,
  ]);
  const script = join(TMP, 'step.sh');
  writeFileSync(script, '/bin/true\n');
  const [step, exec, warm] = measureGroup(
    [
      {
        key: '11.session.step',
        args: [...BC, 'session', 'step', '--sessions', sessions, '--session', 'bench', script],
        runs: 30,
        warmup: 3,
        rewarm: 1,
      },
      {
        key: '11.session.exec',
        args: [...BC, 'session', 'exec', '--name', 'bench', '--state-dir', STATE, '--', '/bin/true'],
        runs: 30,
        warmup: 3,
        rewarm: 1,
      },
      { key: '11.run.warm', args: bcRun([], ['/bin/true']), runs: 30, warmup: 3, rewarm: 1 },
    ],
    { rounds: 3 },
  );
  once([...BC, 'session', 'end', '--name', 'bench', '--state-dir', STATE]);
  ctx.rows.push(
    {
      id: '11a',
      what: 'a session step as the runner runs it (`build-cell {0}`: script file, env filter, file commands) vs a warm `build-cell run -- /bin/true`',
      bc: step.median,
      ref: warm.median,
      ratio: step.median / warm.median,
      runs: `${step.runs} / ${warm.runs}`,
      notes: `target ≤ 1.2×: ${step.median / warm.median <= 1.2 ? 'met' : 'missed'}`,
    },
    {
      id: '11b',
      what: '`build-cell session exec -- /bin/true` vs a warm `build-cell run -- /bin/true`',
      bc: exec.median,
      ref: warm.median,
      ratio: exec.median / warm.median,
      runs: `${exec.runs} / ${warm.runs}`,
    },
  );
}
