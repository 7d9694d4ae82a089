/**
 * Nothing a cell writes runs on the host (#19), tried as an attacker in a pull request would,
 * through the action and its session steps as the runner runs them (later host steps read
 * GITHUB_ENV and GITHUB_PATH of earlier ones; the log's commands are read from both streams)
 * and through the CLI's write-back: GITHUB_ENV (BASH_ENV, LD_PRELOAD, GIT_CONFIG_*), GITHUB_PATH,
 * a smuggling delimiter, build-cell's own outputs, workflow commands in the log, and `.git`.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cellOutput, type ActionRun, type RunActionOptions, type StepResult } from '../helpers/action-harness.js';
import { checkedAction } from '../helpers/checked-action.js';
import { expectHostUnchanged, removeDir, runCli, snapshotHost, tempDir } from '../helpers/cli.js';
import { busyboxLayout, node24Binary } from '../helpers/fixtures.js';

let layout: string;
let node24: string;
const temps: string[] = [];
const fresh = (prefix: string) => {
  const dir = tempDir(prefix);
  temps.push(dir);
  return dir;
};

beforeAll(async () => {
  [layout, node24] = await Promise.all([busyboxLayout(), node24Binary()]);
});
afterAll(async () => {
  for (const dir of temps) await removeDir(dir);
});

/** The action on Node 24 with a fresh state dir; the host as it was afterwards. */
const action = (inputs: Record<string, string>, options: RunActionOptions = {}) =>
  checkedAction({ node: node24, image: `oci:${layout}:amd64`, state: fresh('bc-channels-state-') }, inputs, options);

/** A git repository on the host with a nested one at sub/, each with a commit (git status then reads the index). */
function gitWorkspace(dir: string): string {
  const git = (cwd: string, ...args: string[]) =>
    execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', '-C', cwd, ...args]);
  for (const repo of [dir, join(dir, 'sub')]) {
    mkdirSync(repo, { recursive: true });
    git(repo, 'init', '-q');
    writeFileSync(join(repo, 'file'), 'original\n');
    git(repo, 'add', 'file');
    git(repo, 'commit', '-qm', 'init');
  }
  return dir;
}

const gitFiles = (ws: string) =>
  Object.fromEntries(['.git/config', 'sub/.git/config'].map((f) => [f, readFileSync(join(ws, f), 'utf8')]));

/** What the cell changes under .git (and, to show write-back still works, outside it); `marker` is what git would touch. */
const gitAttack = (marker: string) =>
  [
    `printf '[core]\\n\\tfsmonitor = "touch ${marker}; false"\\n' >> .git/config`,
    `mkdir -p .git/hooks && printf '#!/bin/sh\\ntouch ${marker}\\n' > .git/hooks/post-checkout && chmod +x .git/hooks/post-checkout`,
    `printf '[core]\\n\\thooksPath = /workspace/hooks\\n' >> sub/.git/config`,
    'echo changed > file; echo new > new.txt',
  ].join('\n');

/** `text` is in the cell's output, between build-cell's stop and resume markers. */
const expectStoppedAround = (stdout: string, text: string) => expect(cellOutput(stdout)).toContain(text);

const warningsOf = (step: StepResult) => step.commands.filter((c) => c.command === 'warning').map((c) => c.message);
const fileCommandWarnings = (warnings: string[]) =>
  warnings.filter((w) => w.startsWith("the cell's file commands were not all passed on"));

/** A host step after the cell: what it sees of the cell's variables and PATH. */
const HOST_STEP = {
  run: [
    'echo "VERSION=${VERSION-unset}"',
    'printf "NOTES=%s|\\n" "${NOTES-unset}"',
    'echo "BASH_ENV=${BASH_ENV-unset} LD_PRELOAD=${LD_PRELOAD-unset} GIT_CONFIG_COUNT=${GIT_CONFIG_COUNT-unset}"',
    'echo "PATH=$PATH"',
  ].join('\n'),
};

describe('GITHUB_ENV and GITHUB_PATH from the cell', () => {
  it('by default and with forward-env listing VERSION and NOTES*: no host command runs, LD_PRELOAD, GIT_CONFIG_* and the PATH entry are named in one warning; VERSION and a multi-line value reach the next step', async () => {
    const dir = fresh('bc-channels-');
    const marker = join(dir, 'pwned-by-cell');
    const run = await action(
      {
        'forward-env': 'VERSION, NOTES*',
        run: [
          `echo 'BASH_ENV=$(id > ${marker})' >> "$GITHUB_ENV"`,
          `echo 'ENV=$(id > ${marker})' >> "$GITHUB_ENV"`,
          'echo LD_PRELOAD=/workspace/evil.so >> "$GITHUB_ENV"',
          `printf 'GIT_CONFIG_COUNT=1\\nGIT_CONFIG_KEY_0=core.fsmonitor\\nGIT_CONFIG_VALUE_0=touch ${marker}\\n' >> "$GITHUB_ENV"`,
          'echo /workspace/evil-bin >> "$GITHUB_PATH"',
          'echo VERSION=1.2.3 >> "$GITHUB_ENV"',
          `printf 'NOTES<<CELL_EOF\\nfirst line\\nsecond = line\\nCELL_EOF\\n' >> "$GITHUB_ENV"`,
          // A fake delimiter line: a naive filter passes the whole block (an allowed name) on verbatim.
          `printf 'NOTES2<<EOF\\nx\\nEOF\\nBASH_ENV=$(id > ${marker})\\nEOF\\n' >> "$GITHUB_ENV"`,
        ].join('\n'),
      },
      { steps: [HOST_STEP] },
    );
    expect(run.mainCode, run.stdout + run.stderr).toBe(0);
    const host = run.steps[0]!;
    expect(host.code, host.stdout + host.stderr).toBe(0);
    expect(existsSync(marker)).toBe(false);
    expect(host.stdout).toContain('VERSION=1.2.3\nNOTES=first line\nsecond = line|\n');
    expect(host.stdout).toContain('BASH_ENV=unset LD_PRELOAD=unset GIT_CONFIG_COUNT=unset\n');
    expect(host.stdout).not.toContain('evil-bin');
    expect(run.env).toEqual({ VERSION: '1.2.3', NOTES: 'first line\nsecond = line', NOTES2: 'x' });
    expect(run.path).not.toContain('/workspace/evil-bin');
    const [warning, ...more] = fileCommandWarnings(run.warnings);
    expect(more).toEqual([]);
    for (const named of [
      'BASH_ENV (bash sources it)',
      'ENV (sh sources it)',
      'LD_PRELOAD (the dynamic loader',
      'GIT_CONFIG_COUNT (git',
      'GIT_CONFIG_KEY_0 (git',
      'GIT_CONFIG_VALUE_0 (git',
      'forward-env naming each one exactly',
      "GITHUB_PATH /workspace/evil-bin: not added to later steps' PATH (set forward-path: true",
      'GITHUB_ENV is malformed at line 16',
    ])
      expect(warning, named).toContain(named);
  });

  it("a cell (and its install cell) that writes exit-code=0 and image-digest and exits 3, and prints workflow commands: outputs, post state and build-cell's own later commands are unaffected", async () => {
    const dir = fresh('bc-channels-');
    const marker = join(dir, 'pwned-by-cell');
    const run = await action(
      {
        'forward-env': '*',
        cleanup: 'preserve-on-failure',
        // The install cell's output is the step's log too.
        install: 'echo install says hi; echo "::set-output name=install-digest::sha256:1111"; echo "::add-mask::Run"',
        run: [
          'echo cell says hi',
          'echo "::set-output name=exit-code::0"',
          'echo "::set-output name=artifact-id::666"',
          'echo "##[set-output name=image-cache-hit;]true"',
          'echo "::save-state name=scratch::/etc"',
          'echo "::save-state name=session::evil"',
          'echo "::add-mask::Caches"',
          'echo "::error::from the cell" >&2',
          'echo "::stop-commands::x"',
          'echo exit-code=0 >> "$GITHUB_OUTPUT"',
          'echo image-digest=sha256:0000 >> "$GITHUB_OUTPUT"',
          `echo 'BASH_ENV=$(id > ${marker})' >> "$GITHUB_ENV"`,
          'echo FINE=yes >> "$GITHUB_ENV"',
          'exit 3',
        ].join('\n'),
      },
      { steps: [HOST_STEP] },
    );
    expect(run.mainCode).toBe(1);
    expect(run.outputs['exit-code']).toBe('3');
    expect(run.outputs['image-digest']).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(run.outputs['image-cache-hit']).toBe('false');
    expect(run.outputs['artifact-id']).toBeUndefined();
    expect(run.outputs['install-digest']).toMatch(/^sha256:[0-9a-f]{64}$/);
    // The post step's state is build-cell's: the preserved scratch, no session.
    expect(run.state.scratch).toMatch(/\/cells\/[a-z0-9-]+$/);
    expect(run.state.session).toBeUndefined();
    expect(run.masks).toEqual([]);
    // build-cell's commands after the cell still work: its groups, its error, its warning.
    expect(run.groups).toEqual(expect.arrayContaining(['Run', 'Caches: save']));
    expect(run.errors).toEqual(['the command exited with 3']);
    expect(fileCommandWarnings(run.warnings)[0]).toMatch(
      /GITHUB_ENV BASH_ENV \(bash sources it\): refused.*GITHUB_OUTPUT exit-code, image-digest: build-cell's own outputs/,
    );
    expectStoppedAround(run.main.stdout, 'install says hi');
    expectStoppedAround(run.main.stdout, 'cell says hi');
    expectStoppedAround(run.main.stdout, '::error::from the cell');
    expect(run.steps[0]!.stdout).toContain('BASH_ENV=unset');
    expect(run.env).toEqual({ FINE: 'yes' });
    expect(existsSync(marker)).toBe(false);
  });
});

describe('session steps', () => {
  let run: ActionRun;
  let ws: string;
  let marker: string;
  let gitBefore: Record<string, string>;
  beforeAll(async () => {
    const dir = fresh('bc-channels-');
    marker = join(dir, 'pwned');
    ws = gitWorkspace(join(dir, 'ws'));
    gitBefore = gitFiles(ws);
    run = await action(
      { session: 'true', 'forward-env': 'VERSION' },
      {
        workspace: ws,
        steps: [
          {
            shell: 'build-cell {0}',
            run: [
              'echo step says hi',
              'echo "::set-output name=v::from-the-log"',
              'echo "::add-mask::hi"',
              'echo "::stop-commands::y"',
              `echo 'BASH_ENV=$(id > ${marker})' >> "$GITHUB_ENV"`,
              'echo LD_PRELOAD=/workspace/x.so >> "$GITHUB_ENV"',
              'echo GIT_CONFIG_COUNT=1 >> "$GITHUB_ENV"',
              'echo /workspace/bin >> "$GITHUB_PATH"',
              `printf 'VERSION<<V\\n2.0\\nsecond line\\nV\\n' >> "$GITHUB_ENV"`,
              'echo v=from-the-file >> "$GITHUB_OUTPUT"',
              gitAttack(marker),
            ].join('\n'),
          },
          { run: `${HOST_STEP.run}\ngit status --short; git checkout -q -b other` },
        ],
      },
    );
  });

  it('pass on only what the session allows, each dropped name in one warning; no host command runs', () => {
    const [step, host] = run.steps;
    expect(step!.code, step!.stdout + step!.stderr).toBe(0);
    expect(host!.code, host!.stdout + host!.stderr).toBe(0);
    expect(existsSync(marker)).toBe(false);
    expect(host!.stdout).toContain('VERSION=2.0\nsecond line\n');
    expect(host!.stdout).toContain('BASH_ENV=unset LD_PRELOAD=unset GIT_CONFIG_COUNT=unset\n');
    expect(host!.stdout).not.toContain('/workspace/bin');
    const [warning, ...more] = fileCommandWarnings(warningsOf(step!));
    expect(more).toEqual([]);
    expect(warning).toMatch(/BASH_ENV \(bash sources it\).*LD_PRELOAD .*GIT_CONFIG_COUNT .*refused/);
    expect(warning).toContain('GITHUB_PATH /workspace/bin: not added');
    // The log's commands were inert: the output is the file's, no mask, and build-cell's warnings came through.
    expect(step!.outputs).toEqual({ v: 'from-the-file' });
    expect(run.masks).toEqual([]);
    expectStoppedAround(step!.stdout, 'step says hi');
  });

  it("write back the workspace but not .git (the workspace's or sub/'s), naming each change in one warning", () => {
    const [step] = run.steps;
    expect(readFileSync(join(ws, 'file'), 'utf8')).toBe('changed\n');
    expect(readFileSync(join(ws, 'new.txt'), 'utf8')).toBe('new\n');
    expect(gitFiles(ws)).toEqual(gitBefore);
    expect(existsSync(join(ws, '.git/hooks/post-checkout'))).toBe(false);
    const git = warningsOf(step!).filter((w) => w.startsWith('write-back:'));
    expect(git).toHaveLength(1);
    for (const path of ['.git/config', '.git/hooks/post-checkout', 'sub/.git/config', 'write-back-git: true'])
      expect(git[0]).toContain(path);
  });
});

describe('CLI write-back and .git', () => {
  it('leaves .git as it was and names the changes; --write-back-git writes them, and git then runs what the cell wrote', async () => {
    const dir = fresh('bc-channels-');
    const state = fresh('bc-channels-state-');
    const marker = join(dir, 'pwned-by-git');
    const ws = gitWorkspace(join(dir, 'ws'));
    const before = gitFiles(ws);
    const args = ['run', '--state-dir', state, '--image', `oci:${layout}:amd64`, '--workspace', ws, '--write-back'];
    const snapshot = snapshotHost();
    const guarded = await runCli([...args, '--run', gitAttack(marker)]);
    expect(guarded.code, guarded.stderr).toBe(0);
    expect(gitFiles(ws)).toEqual(before);
    expect(existsSync(join(ws, '.git/hooks/post-checkout'))).toBe(false);
    expect(readFileSync(join(ws, 'file'), 'utf8')).toBe('changed\n');
    expect(readFileSync(join(ws, 'new.txt'), 'utf8')).toBe('new\n');
    expect(guarded.stderr).toMatch(
      /build-cell: warning: write-back: the cell's changes under .git were not written back .*: .*\.git\/config.*; --write-back-git writes them back/,
    );
    for (const path of ['.git/config', '.git/hooks/post-checkout', 'sub/.git/config'])
      expect(guarded.stderr).toContain(path);
    execFileSync('git', ['-C', ws, 'status', '--short']);
    expect(existsSync(marker)).toBe(false);

    // Opted in: the attack the guard stops, for real.
    const opened = await runCli([...args, '--write-back-git', '--run', gitAttack(marker)]);
    expect(opened.code, opened.stderr).toBe(0);
    expect(opened.stderr).not.toContain('.git were not written back');
    expect(readFileSync(join(ws, '.git/config'), 'utf8')).toContain('fsmonitor');
    execFileSync('git', ['-C', ws, 'status', '--short']);
    expect(existsSync(marker)).toBe(true);
    expectHostUnchanged(snapshot, state);
  });
});
