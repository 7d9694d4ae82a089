import { describe, expect, it } from 'vitest';
import {
  isWorkspaceArchive,
  normalizeSpec,
  RESERVED_CELL_PATHS,
  validateSpec,
  checkEnv,
} from '../../src/cellspec/validate.js';
import type { BuildCellSpec } from '../../src/cellspec/types.js';
import { baseSpec, expectUserError } from './spec-fixture.js';

const invalid = (overrides: Partial<BuildCellSpec>, field: string, ...fragments: string[]) =>
  expectUserError(() => validateSpec(baseSpec(overrides)), field, ...fragments);

describe('validateSpec: the base spec', () => {
  it('accepts the base spec and every seed kind', () => {
    expect(validateSpec(baseSpec())).toBeUndefined();
    expect(validateSpec(baseSpec({ workspaceSeed: { kind: 'snapshot', path: '/host/ws' } }))).toBeUndefined();
    for (const ext of ['.tar', '.tar.gz', '.tgz']) {
      expect(validateSpec(baseSpec({ workspaceSeed: { kind: 'archive', path: `/host/ws${ext}` } }))).toBeUndefined();
    }
    expect(validateSpec(baseSpec({ command: { cwd: '/', executable: 'make', argv: [] } }))).toBeUndefined();
  });
});

describe('validateSpec: root and scratch', () => {
  it('rejects root /', () => invalid({ root: '/' }, 'root', 'must not be /'));
  it('rejects root //', () => invalid({ root: '//' }, 'root', 'must not be /'));
  it('rejects scratch /', () => invalid({ scratch: '/' }, 'scratch', 'must not be /'));
  it('rejects a relative root', () => invalid({ root: 'rootfs' }, 'root', 'absolute', '"rootfs"'));
  it('rejects a relative scratch', () => invalid({ scratch: 'cells/1' }, 'scratch', 'absolute', '"cells/1"'));
  it('rejects .. in root', () => invalid({ root: '/var/../etc' }, 'root', "'..'", '"/var/../etc"'));
  it('rejects .. in scratch', () => invalid({ scratch: '/a/b/..' }, 'scratch', "'..'"));

  it('rejects scratch inside root', () =>
    invalid(
      { root: '/s/root', scratch: '/s/root/cell' },
      'scratch',
      '"/s/root/cell"',
      'must not overlap the root',
      '"/s/root"',
    ));
  it('rejects root inside scratch', () =>
    invalid(
      { root: '/s/cell/root', scratch: '/s/cell' },
      'scratch',
      '"/s/cell"',
      'must not overlap the root',
      '"/s/cell/root"',
    ));
  it('rejects root equal to scratch (after normalization)', () =>
    invalid({ root: '/s/x', scratch: '/s//x/' }, 'scratch', 'overlap'));
  it('accepts sibling-prefix root and scratch', () => {
    expect(validateSpec(baseSpec({ root: '/s/cell', scratch: '/s/cell2' }))).toBeUndefined();
  });
});

describe('validateSpec: workspace', () => {
  it('rejects workspacePath /', () => invalid({ workspacePath: '/' }, 'workspacePath', 'must not be /'));
  it('rejects a relative workspacePath', () => invalid({ workspacePath: 'workspace' }, 'workspacePath', '"workspace"'));
  it('rejects .. in workspacePath', () => invalid({ workspacePath: '/w/../etc' }, 'workspacePath', "'..'"));
  it('rejects a relative snapshot path', () =>
    invalid({ workspaceSeed: { kind: 'snapshot', path: 'src' } }, 'workspaceSeed.path', '"src"'));
  it('rejects snapshot path /', () =>
    invalid({ workspaceSeed: { kind: 'snapshot', path: '/' } }, 'workspaceSeed.path', 'must not be /'));
  it.each(['/host/ws.zip', '/host/ws.tar.xz', '/host/ws.TAR', '/host/ws', '/host/ws.tar.gz.bak'])(
    'rejects the archive %j with the accepted extensions listed',
    (path) => {
      invalid(
        { workspaceSeed: { kind: 'archive', path } },
        'workspaceSeed.path',
        `unsupported archive ${JSON.stringify(path)}`,
        '.tar, .tar.gz and .tgz',
      );
    },
  );
  it('rejects an unknown seed kind', () =>
    invalid(
      { workspaceSeed: { kind: 'git' } as unknown as BuildCellSpec['workspaceSeed'] },
      'workspaceSeed.kind',
      '"git"',
      'empty, snapshot, archive',
    ));
  it.each(RESERVED_CELL_PATHS)('rejects workspacePath %s (reserved)', (reserved) => {
    invalid({ workspacePath: reserved, imports: [], caches: [] }, 'workspacePath', `would cover ${reserved}`);
  });
  it('rejects a workspacePath below a reserved path', () =>
    invalid(
      { workspacePath: '/proc/ws', imports: [], caches: [] },
      'workspacePath',
      '"/proc/ws"',
      'would cover /proc',
    ));
  it('rejects a workspacePath of /dev/shm', () =>
    invalid({ workspacePath: '/dev/shm', imports: [], caches: [] }, 'workspacePath', 'would cover /dev'));
});

describe('validateSpec: imports, caches, exports', () => {
  it('rejects a relative import source', () =>
    invalid({ imports: [{ source: 'src', destination: '/src' }] }, 'imports[0].source', '"src"'));
  it('rejects an import destination /', () =>
    invalid({ imports: [{ source: '/h', destination: '/' }] }, 'imports[0].destination', 'must not be /'));
  it('rejects .. in an import destination', () =>
    invalid({ imports: [{ source: '/h', destination: '/a/../etc' }] }, 'imports[0].destination', "'..'"));
  it('names the index of the offending import', () =>
    invalid(
      {
        imports: [
          { source: '/h1', destination: '/a' },
          { source: 'h2', destination: '/b' },
        ],
      },
      'imports[1].source',
      '"h2"',
    ));
  it('rejects a relative cache destination', () =>
    invalid({ caches: [{ source: '/h', destination: 'cache' }] }, 'caches[0].destination', '"cache"'));
  it('rejects a cache source /', () =>
    invalid({ caches: [{ source: '/', destination: '/c' }] }, 'caches[0].source', 'must not be /'));
  it('rejects an export source /', () =>
    invalid({ exports: [{ source: '/', destination: '/host/out' }] }, 'exports[0].source', 'must not be /'));
  it('rejects a relative export destination', () =>
    invalid({ exports: [{ source: '/workspace/out', destination: 'out' }] }, 'exports[0].destination', '"out"'));

  it('rejects an import destination equal to the workspace', () =>
    invalid(
      { imports: [{ source: '/h', destination: '/workspace' }] },
      'imports[0].destination',
      '"/workspace"',
      'conflicts with the workspace path',
    ));
  it('accepts import, cache and export paths inside the workspace (mounted over it, as the seed allows)', () => {
    expect(() =>
      validateSpec(
        baseSpec({
          imports: [{ source: '/h/config.toml', destination: '/workspace/.cargo/config.toml' }],
          caches: [
            { source: '/h/target', destination: '/workspace/target' },
            { source: '/h/nm', destination: '/workspace/web/node_modules' },
          ],
          exports: [{ source: '/workspace/target/release/app', destination: '/h/out/app' }],
        }),
      ),
    ).not.toThrow();
  });
  it('still refuses destinations inside the workspace that cover one another', () =>
    invalid(
      {
        imports: [],
        caches: [
          { source: '/h/a', destination: '/workspace/target' },
          { source: '/h/b', destination: '/workspace/target/debug' },
        ],
      },
      'caches[1].destination',
      'must not cover one another',
    ));
  it('rejects a cache destination covering the workspace', () =>
    invalid(
      { caches: [{ source: '/h', destination: '/w' }], workspacePath: '/w/ws' },
      'caches[0].destination',
      '"/w"',
      'workspace path "/w/ws"',
    ));
  it('rejects a cache covering an import (names the later one)', () =>
    invalid(
      { imports: [{ source: '/h1', destination: '/opt/src' }], caches: [{ source: '/h2', destination: '/opt' }] },
      'caches[0].destination',
      '"/opt"',
      'conflicts with imports[0].destination "/opt/src"',
      'must not cover one another',
    ));
  it('rejects an import inside a cache', () =>
    invalid(
      { imports: [{ source: '/h1', destination: '/opt' }], caches: [{ source: '/h2', destination: '/opt/cache' }] },
      'caches[0].destination',
      '"/opt/cache"',
      'imports[0].destination "/opt"',
    ));
  it('rejects two imports with the same destination', () =>
    invalid(
      {
        imports: [
          { source: '/h1', destination: '/x' },
          { source: '/h2', destination: '/x/' },
        ],
      },
      'imports[1].destination',
      'conflicts with imports[0].destination',
    ));
  it('rejects two caches nested in one another', () =>
    invalid(
      {
        caches: [
          { source: '/h1', destination: '/c/a' },
          { source: '/h2', destination: '/c' },
        ],
      },
      'caches[1].destination',
      '"/c"',
      'caches[0].destination "/c/a"',
    ));
  it('accepts sibling-prefix destinations', () => {
    expect(
      validateSpec(
        baseSpec({
          workspacePath: '/w',
          imports: [{ source: '/h1', destination: '/wx' }],
          caches: [
            { source: '/h2', destination: '/wxy' },
            { source: '/h3', destination: '/w2' },
          ],
        }),
      ),
    ).toBeUndefined();
  });
  it.each([
    ['/proc', '/proc'],
    ['/proc/sys/fs', '/proc'],
    ['/dev', '/dev'],
    ['/dev/shm', '/dev'],
    ['/.build-cell', '/.build-cell'],
    ['/.build-cell/run.sh', '/.build-cell'],
  ])('rejects the import destination %s (reserved %s)', (destination, reserved) => {
    invalid(
      { imports: [{ source: '/h', destination }] },
      'imports[0].destination',
      JSON.stringify(destination),
      `would cover ${reserved}`,
      'build-cell mounts itself',
    );
  });
  it('rejects a cache destination reserved path', () =>
    invalid({ caches: [{ source: '/h', destination: '/dev/pts' }] }, 'caches[0].destination', 'would cover /dev'));
  it('accepts destinations that merely share a prefix with a reserved path', () => {
    expect(
      validateSpec(
        baseSpec({
          imports: [{ source: '/h', destination: '/procfs' }],
          caches: [{ source: '/h2', destination: '/devel' }],
        }),
      ),
    ).toBeUndefined();
  });
});

describe('validateSpec: command', () => {
  const command = (c: Partial<BuildCellSpec['command']>) => ({
    command: { cwd: '/workspace', executable: '/bin/sh', argv: [], ...c },
  });
  it('rejects a relative cwd', () => invalid(command({ cwd: 'workspace' }), 'command.cwd', '"workspace"'));
  it('rejects .. in cwd', () => invalid(command({ cwd: '/a/..' }), 'command.cwd', "'..'"));
  it('accepts an absolute executable and a bare name', () => {
    expect(validateSpec(baseSpec(command({ executable: '/usr/bin/make' })))).toBeUndefined();
    expect(validateSpec(baseSpec(command({ executable: 'make' })))).toBeUndefined();
    expect(validateSpec(baseSpec(command({ executable: 'gcc-12.2' })))).toBeUndefined();
  });
  it('rejects an empty executable', () => invalid(command({ executable: '' }), 'command.executable', 'empty'));
  it('rejects a relative path with a slash', () =>
    invalid(command({ executable: 'a/b' }), 'command.executable', "no '/'", '"a/b"'));
  it('rejects ./x', () => invalid(command({ executable: './x' }), 'command.executable', '"./x"'));
  it('rejects ..', () => invalid(command({ executable: '..' }), 'command.executable', '".."'));
  it('rejects .', () => invalid(command({ executable: '.' }), 'command.executable', '"."'));
  it('rejects executable /', () => invalid(command({ executable: '/' }), 'command.executable', 'must not be /'));
  it('rejects .. in an absolute executable', () =>
    invalid(command({ executable: '/bin/../sh' }), 'command.executable', "'..'"));
  it('rejects NUL in the executable', () => invalid(command({ executable: 'sh\0' }), 'command.executable', 'NUL'));
  it('rejects NUL in an argument, naming its index', () =>
    invalid(command({ argv: ['ok', 'b\0d'] }), 'command.argv[1]', 'without NUL'));
  it('accepts arguments with spaces, quotes and newlines', () => {
    expect(validateSpec(baseSpec(command({ argv: ['a b', '"q"', "'s'", 'l1\nl2', '', '$(x)'] })))).toBeUndefined();
  });
});

describe('validateSpec: env', () => {
  it('rejects an empty key', () => invalid({ env: [['', 'v']] }, 'env', 'keys must not be empty'));
  it("rejects a key with '='", () => invalid({ env: [['A=B', 'v']] }, 'env', 'key "A=B"', "must not contain '='"));
  it('rejects a key with NUL', () => invalid({ env: [['A\0B', 'v']] }, 'env', 'NUL'));
  it('rejects a value with NUL, naming the key', () =>
    invalid(
      {
        env: [
          ['OK', 'x'],
          ['TOKEN', 'a\0b'],
        ],
      },
      'env.TOKEN',
      'NUL',
    ));
  it('accepts values with =, newlines, backslashes and the empty string', () => {
    expect(
      validateSpec(
        baseSpec({
          env: [
            ['A', 'x=y'],
            ['B', 'l1\nl2'],
            ['C', '\\n'],
            ['D', ''],
          ],
        }),
      ),
    ).toBeUndefined();
  });
  it('checkEnv uses the given field name', () => {
    expectUserError(() => checkEnv([['', 'x']], 'inputs.env'), 'inputs.env', 'keys must not be empty');
    expectUserError(() => checkEnv([['K', 'a\0']], 'inputs.env'), 'inputs.env.K', 'NUL');
  });
});

describe('validateSpec: policies and limits', () => {
  it('rejects an unknown network policy, listing the accepted ones', () =>
    invalid({ network: 'off' as BuildCellSpec['network'] }, 'network', '"off"', 'enabled, disabled'));
  it('rejects a network policy in another case (the spec is exact)', () =>
    invalid({ network: 'Enabled' as BuildCellSpec['network'] }, 'network', '"Enabled"'));
  it('rejects an unknown cleanup policy, listing the accepted ones', () =>
    invalid(
      { cleanup: 'sometimes' as BuildCellSpec['cleanup'] },
      'cleanup',
      '"sometimes"',
      'always, preserve-on-failure, never',
    ));
  it('accepts every documented policy', () => {
    for (const network of ['enabled', 'disabled'] as const) {
      for (const cleanup of ['always', 'preserve-on-failure', 'never'] as const) {
        expect(validateSpec(baseSpec({ network, cleanup }))).toBeUndefined();
      }
    }
  });

  it.each([
    ['cpuTimeSeconds', 0, '1'],
    ['cpuTimeSeconds', -5, '1'],
    ['cpuTimeSeconds', 1.5, '1'],
    ['cpuTimeSeconds', Number.NaN, '1'],
    ['maxProcesses', 0, '1'],
    ['maxProcesses', -1, '1'],
    ['maxProcesses', 2.5, '1'],
    ['memoryBytes', 0, '1048576'],
    ['memoryBytes', -1, '1048576'],
    ['memoryBytes', 1048575, '1048576'],
    ['memoryBytes', 1048576.5, '1048576'],
    ['memoryBytes', Number.POSITIVE_INFINITY, '1048576'],
  ] as const)('rejects limits.%s = %s', (name, value, min) => {
    invalid({ limits: { [name]: value } }, `limits.${name}`, `at least ${min}`, `got ${JSON.stringify(String(value))}`);
  });

  it('accepts the smallest valid limits', () => {
    expect(
      validateSpec(baseSpec({ limits: { cpuTimeSeconds: 1, memoryBytes: 1024 * 1024, maxProcesses: 1 } })),
    ).toBeUndefined();
  });
});

describe('normalizeSpec', () => {
  it('normalizes every path field and keeps everything else', () => {
    const spec = baseSpec({
      root: '/var//lib/./root/',
      scratch: '/var/lib/cells//c1/',
      workspacePath: '/workspace/',
      workspaceSeed: { kind: 'snapshot', path: '/host//ws/.' },
      imports: [{ source: '/host/src/', destination: '//src/./' }],
      caches: [{ source: '/host//cache', destination: '/root/.cache/' }],
      exports: [{ source: '/workspace//out/', destination: '/host/out/.' }],
      command: { cwd: '/workspace/./sub/', executable: 'make', argv: ['a//b/'] },
      script: 'echo //x/',
    });
    const before = JSON.stringify(spec);
    const n = normalizeSpec(spec);
    expect(n).toEqual({
      ...spec,
      root: '/var/lib/root',
      scratch: '/var/lib/cells/c1',
      workspacePath: '/workspace',
      workspaceSeed: { kind: 'snapshot', path: '/host/ws' },
      imports: [{ source: '/host/src', destination: '/src' }],
      caches: [{ source: '/host/cache', destination: '/root/.cache' }],
      exports: [{ source: '/workspace/out', destination: '/host/out' }],
      command: { cwd: '/workspace/sub', executable: 'make', argv: ['a//b/'] },
    });
    expect(JSON.stringify(spec)).toBe(before); // the input is not mutated
  });

  it('keeps an empty seed and an archive seed kind', () => {
    expect(normalizeSpec(baseSpec()).workspaceSeed).toEqual({ kind: 'empty' });
    expect(normalizeSpec(baseSpec({ workspaceSeed: { kind: 'archive', path: '/a//b.tgz' } })).workspaceSeed).toEqual({
      kind: 'archive',
      path: '/a/b.tgz',
    });
  });

  it('keeps cwd / as /', () => {
    expect(normalizeSpec(baseSpec({ command: { cwd: '//', executable: 'sh', argv: [] } })).command.cwd).toBe('/');
  });
});

describe('isWorkspaceArchive', () => {
  it.each([
    ['/a.tar', true],
    ['/a.tar.gz', true],
    ['/a.tgz', true],
    ['/a.tar.bz2', false],
    ['/a.zip', false],
    ['/tar', false],
    ['/a.tgz/', false],
    ['/a.targz', false],
  ] as const)('%s -> %s', (p, expected) => {
    expect(isWorkspaceArchive(p)).toBe(expected);
  });
});
