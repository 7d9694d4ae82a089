/**
 * The workspace: imports and caches inside it, and --write-back of the cell's changes to the
 * host workspace, with real cells: every change kind, the symlink attacks, ownership (rootless,
 * sudo), fifos, a full disk, and bad input.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { busyboxLayout } from '../helpers/fixtures.js';
import { hostCheckedWork, onSmallDisk, removeDir, runCli, tempDir, expectOk } from '../helpers/cli.js';
import { layoutForUser, sudoAndPlainUsers, uidOf } from '../helpers/users.js';

let layout: string;
let state: string;
let work: string;
const image = () => ['--image', `oci:${layout}:amd64`];
const run = (args: string[]) => runCli(['run', '--state-dir', state, ...image(), ...args]);
/** A tree as path -> 'dir' | 'file CONTENT' | 'link TARGET'. */
function tree(dir: string, prefix = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    const info = lstatSync(path);
    const rel = `${prefix}${name}`;
    if (info.isSymbolicLink()) out[rel] = `link ${readlinkSync(path)}`;
    else if (info.isDirectory()) Object.assign(out, { [rel]: 'dir' }, tree(path, `${rel}/`));
    else out[rel] = `file ${readFileSync(path, 'utf8')}`;
  }
  return out;
}

beforeAll(async () => {
  layout = await busyboxLayout();
  state = tempDir('bc-wb-state-');
});
afterAll(async () => {
  await removeDir(state);
});
hostCheckedWork(
  'wb',
  (dir) => (work = dir),
  () => state,
);

describe('caches and imports inside the workspace', () => {
  it('mounts them over the workspace; a cache persists through its own dir, never through write-back', async () => {
    const ws = join(work, 'proj');
    mkdirSync(join(ws, 'src'), { recursive: true });
    writeFileSync(join(ws, 'src', 'main.c'), 'int main;\n');
    writeFileSync(join(work, 'config.toml'), '[build]\njobs = 2\n');
    const target = join(work, 'target-cache');
    const nm = join(work, 'nm-cache');
    const script = [
      'cat /workspace/.cargo/config.toml',
      'n=$(cat target/count 2>/dev/null || echo 0); echo $((n + 1)) > target/count; echo "count $((n + 1))"',
      'mkdir -p web/node_modules/pkg && echo dep > web/node_modules/pkg/index.js',
      'mkdir -p out && echo built > out/app',
    ].join('\n');
    const args = [
      '--workspace',
      ws,
      '--write-back',
      '--cache',
      `${target}:/workspace/target`,
      '--cache',
      `${nm}:/workspace/web/node_modules`,
      '--import',
      `${join(work, 'config.toml')}:/workspace/.cargo/config.toml`,
      '--export',
      `/workspace/target/count:${join(work, 'count')}`,
      '--run',
      script,
    ];
    const first = await run(args);
    expectOk(first, 'first');
    expect(first.stdout).toBe('[build]\njobs = 2\ncount 1\n');
    const second = await run(args);
    expect(second.stdout).toContain('count 2');
    expect(readFileSync(join(target, 'count'), 'utf8')).toBe('2\n');
    expect(readFileSync(join(nm, 'pkg', 'index.js'), 'utf8')).toBe('dep\n');
    expect(readFileSync(join(work, 'count'), 'utf8')).toBe('2\n');
    // Written back: the build's output. Not the caches' contents, not the import, not the mount
    // points build-cell made for them (web/ was made for web/node_modules, and holds nothing else).
    expect(tree(ws)).toEqual({ src: 'dir', 'src/main.c': 'file int main;\n', out: 'dir', 'out/app': 'file built\n' });
  });

  it('refuses a destination that is the workspace or contains it, and ones that cover one another', async () => {
    for (const [args, field] of [
      [
        ['--cache', `${work}/c:/workspace`],
        /caches\[0\]\.destination: "\/workspace" conflicts with the workspace path/,
      ],
      [
        ['--import', `${work}:/w`, '--workspace-path', '/w/ws'],
        /imports\[0\]\.destination: "\/w" conflicts with the workspace path/,
      ],
      [
        ['--cache', `${work}/a:/workspace/t`, '--cache', `${work}/b:/workspace/t/d`],
        /caches\[1\]\.destination.*must not cover one another/,
      ],
    ] as const) {
      const refused = await run([...args, '--', 'true']);
      expect(refused.code).toBe(125);
      expect(refused.stderr).toMatch(field);
    }
  });
});

describe('--write-back', () => {
  function project(): string {
    const ws = join(work, 'ws');
    mkdirSync(join(ws, 'dir', 'sub'), { recursive: true });
    mkdirSync(join(ws, 'gone-dir'));
    writeFileSync(join(ws, 'gone-dir', 'x'), 'x');
    writeFileSync(join(ws, 'changed'), 'old');
    writeFileSync(join(ws, 'deleted'), 'd');
    writeFileSync(join(ws, 'kept'), 'k');
    writeFileSync(join(ws, 'file-then-dir'), 'f');
    mkdirSync(join(ws, 'dir-then-file'));
    symlinkSync('kept', join(ws, 'link-then-dir'));
    return ws;
  }

  it('applies every kind of change, also after a failing command, and only the changes', async () => {
    const ws = project();
    const script = [
      'echo new > changed',
      'rm deleted',
      'rm -r gone-dir',
      'echo n > dir/sub/new',
      'mkdir -p newdir/deep && echo d > newdir/deep/f',
      'ln -s ../kept dir/rel-link',
      'ln -s /etc/passwd abs-link',
      'rm file-then-dir && mkdir file-then-dir && echo in > file-then-dir/x',
      'rm -r dir-then-file && echo now-a-file > dir-then-file',
      'rm link-then-dir && mkdir link-then-dir && echo real > link-then-dir/y',
      'exit 3',
    ].join('\n');
    const result = await run([
      '--workspace',
      ws,
      '--write-back',
      '--result-file',
      join(work, 'r.json'),
      '--run',
      script,
    ]);
    expect(result.code, result.stderr).toBe(3);
    expect(tree(ws)).toEqual({
      'abs-link': 'link /etc/passwd',
      changed: 'file new\n',
      dir: 'dir',
      'dir/rel-link': 'link ../kept',
      'dir/sub': 'dir',
      'dir/sub/new': 'file n\n',
      'dir-then-file': 'file now-a-file\n',
      'file-then-dir': 'dir',
      'file-then-dir/x': 'file in\n',
      kept: 'file k',
      'link-then-dir': 'dir',
      'link-then-dir/y': 'file real\n',
      newdir: 'dir',
      'newdir/deep': 'dir',
      'newdir/deep/f': 'file d\n',
    });
    const record = JSON.parse(readFileSync(join(work, 'r.json'), 'utf8'));
    expect(record.writeBack.deleted).toBeGreaterThanOrEqual(2);
    expect(record.writeBack.written).toBeGreaterThanOrEqual(8);
    expect(record.writeBack.skipped).toEqual([]);
    // Without --write-back the host workspace is never touched.
    const before = tree(ws);
    expectOk(await run(['--workspace', ws, '--run', 'echo x > changed; rm kept']), 'no write-back');
    expect(tree(ws)).toEqual(before);
  });

  it('never writes outside the workspace: a dir replaced by a link to /etc, ln -> /root then ln/x, a host link replaced by a dir', async () => {
    const ws = project();
    const outside = join(work, 'outside');
    mkdirSync(outside);
    writeFileSync(join(outside, 'precious'), 'p');
    symlinkSync(outside, join(ws, 'host-link'));
    const script = [
      'rm -r dir && ln -s /etc dir',
      'ln -s /root ln && echo x > ln/x',
      'mkdir -p /root && echo y > /root/y',
      'rm host-link && mkdir host-link && echo evil > host-link/precious && echo new > host-link/added',
    ].join('\n');
    expectOk(await run(['--workspace', ws, '--write-back', '--run', script]), 'attacks');
    expect(lstatSync(join(ws, 'dir')).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(ws, 'dir'))).toBe('/etc');
    expect(readlinkSync(join(ws, 'ln'))).toBe('/root');
    expect(lstatSync(join(ws, 'host-link')).isDirectory()).toBe(true);
    expect(readFileSync(join(ws, 'host-link', 'precious'), 'utf8')).toBe('evil\n');
    expect(tree(outside)).toEqual({ precious: 'file p' });
    expect(existsSync('/root/x')).toBe(false);
    expect(existsSync('/etc/sub')).toBe(false);
  });

  it('strips setuid and setgid bits, and names fifos it does not write back', async () => {
    const ws = project();
    const result = await run([
      '--workspace',
      ws,
      '--write-back',
      '--run',
      'echo s > suid && chmod 6755 suid && mkfifo pipe && mkdir -p d && mkfifo d/p2',
    ]);
    expectOk(result, 'suid and fifos');
    expect(statSync(join(ws, 'suid')).mode & 0o7777).toBe(0o755);
    expect(existsSync(join(ws, 'pipe'))).toBe(false);
    expect(result.stderr).toMatch(/warning: write-back: pipe is a fifo, socket or device node: not written back/);
    expect(result.stderr).toMatch(/warning: write-back: d\/p2 is a fifo/);
  });

  it('a full disk: exit 125 naming the path; no half-written file, the old content stays', () => {
    const result = onSmallDisk(
      join(work, 'small'),
      '1m',
      [
        'mkdir "$1/ws" && echo old > "$1/ws/big" && echo stays > "$1/ws/other"',
        '"$2" "$3" run --state-dir "$4" --image "$5" --workspace "$1/ws" --write-back --run "head -c 3000000 /dev/zero > big"',
        'echo "rc=$?"',
        'cd "$1/ws" && for f in $(ls -A); do printf "%s %s\\n" "$f" "$(stat -c %s "$f")"; done',
      ],
      [state, `oci:${layout}:amd64`],
    );
    expect(result.stdout, result.stderr).toBe('rc=125\nbig 4\nother 6\n');
    expect(result.stderr).toMatch(/^build-cell: cannot write back .*\/ws\/big: No space left on device/m);
  });

  it('needs a directory workspace: --write-back with an archive or none is a clear error before anything runs', async () => {
    const archive = join(work, 'ws.tar');
    execFileSync('tar', ['-cf', archive, '-C', work, '.']);
    for (const args of [['--workspace', archive], [], ['--workspace', 'none']]) {
      const refused = await run([...args, '--write-back', '--', 'true']);
      expect(refused.code).toBe(125);
      expect(refused.stderr).toMatch(
        /^build-cell: --write-back: needs a directory workspace to write back to, and this cell has (an archive|no workspace)$/m,
      );
    }
  });
});

describe('--write-back ownership', () => {
  const users = sudoAndPlainUsers('bc-wb');
  const { sudoUser: SUDO_USER, plainUser: ROOTLESS_USER } = users;
  const notOwned = (dir: string, user: string) =>
    execFileSync('find', [dir, '-not', '-user', user], { encoding: 'utf8' }).trim();
  const SCRIPT =
    'mkdir -p out/deep && echo b > out/deep/f && echo c > changed && touch owned-by-other && chown 1234:1234 owned-by-other';

  it('through sudo: everything written back belongs to the user behind sudo', async () => {
    const home = users.home();
    const ws = join(home, 'ws-sudo');
    mkdirSync(ws);
    writeFileSync(join(ws, 'changed'), 'a');
    execFileSync('chown', ['-R', SUDO_USER, ws]);
    const result = await runCli(
      [
        'run',
        '--privilege',
        'sudo',
        '--state-dir',
        state,
        ...image(),
        '--workspace',
        ws,
        '--write-back',
        '--run',
        SCRIPT,
      ],
      {
        wrapper: ['runuser', '-u', SUDO_USER, '--'],
        cwd: home,
        env: { PATH: process.env.PATH, HOME: home },
      },
    );
    expectOk(result, 'sudo write-back');
    expect(readFileSync(join(ws, 'out', 'deep', 'f'), 'utf8')).toBe('b\n');
    expect(notOwned(ws, SUDO_USER)).toBe('');
  });

  it('rootless: everything written back belongs to the user, also what the cell gave another uid', async () => {
    const home = users.home();
    const ws = join(home, 'ws-rootless');
    mkdirSync(ws);
    writeFileSync(join(ws, 'changed'), 'a');
    execFileSync('chown', ['-R', `${ROOTLESS_USER}:${ROOTLESS_USER}`, ws]);
    const userState = join(home, 'state-rootless');
    mkdirSync(userState);
    execFileSync('chown', [ROOTLESS_USER, userState]);
    const userLayout = layoutForUser(layout, home, ROOTLESS_USER);
    const result = await runCli(
      [
        'run',
        '--privilege',
        'rootless',
        '--state-dir',
        userState,
        '--image',
        `oci:${userLayout}:amd64`,
        '--workspace',
        ws,
        '--write-back',
        '--run',
        SCRIPT,
      ],
      {
        wrapper: ['runuser', '-u', ROOTLESS_USER, '--'],
        cwd: home,
        env: { PATH: process.env.PATH, HOME: home },
      },
    );
    expectOk(result, 'rootless write-back');
    expect(readFileSync(join(ws, 'changed'), 'utf8')).toBe('c\n');
    expect(notOwned(ws, ROOTLESS_USER)).toBe('');
    expect(statSync(join(ws, 'owned-by-other')).uid).toBe(uidOf(ROOTLESS_USER));
    // The user removes all of it without sudo (the state dir's own entry is in a root-owned dir).
    const rm = spawnSync(
      'runuser',
      [
        '-u',
        ROOTLESS_USER,
        '--',
        'find',
        userState,
        join(ws, 'out'),
        join(ws, 'owned-by-other'),
        '-mindepth',
        '1',
        '-delete',
      ],
      { encoding: 'utf8' },
    );
    expect(rm.status, rm.stderr).toBe(0);
  });
});
