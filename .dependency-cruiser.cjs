/**
 * The layers of src/ (README "Architecture"; ../shared/design.md): each imports only from its
 * own layer and the layers below it, and nothing imports in a cycle. Checked by `npm run lint`.
 *
 *   entries      src/main.ts, src/post.ts, src/cli.ts, src/launcher/
 *   front ends   src/action/, src/cli/, src/demo/
 *   sessions     src/session/
 *   engine entry src/engine-entry.ts (privilege, signals, the request across sudo)
 *   engine       src/engine.ts, src/engine-cell.ts (a cell's lifecycle), src/engine-parts.ts, src/engine-types.ts
 *   phases       src/install/, src/cell/, src/write-back/, src/store/ (the store's upkeep)
 *   resources    src/image/, src/tools/, src/privilege/, src/emulation/
 *   ground       src/cellspec/, src/github/, src/util/
 */
const LAYERS = [
  ['entries', '^src/(main|post|cli)\\.ts$|^src/launcher/'],
  ['front ends', '^src/(action|cli|demo)/'],
  ['sessions', '^src/session/'],
  ['engine entry', '^src/engine-entry\\.ts$'],
  ['engine', '^src/engine(-types|-cell|-parts)?\\.ts$'],
  ['phases', '^src/(install|cell|write-back|store)/'],
  ['resources', '^src/(image|tools|privilege|emulation)/'],
  ['ground', '^src/(cellspec|github|util)/'],
];

/** Layer i may not import anything of the layers above it (0..i-1). */
const upward = LAYERS.slice(1).map(([name, path], i) => ({
  name: `no-upward-from-${name.replace(/ /g, '-')}`,
  comment: `${name} must not import a higher layer (${LAYERS.slice(0, i + 1)
    .map(([n]) => n)
    .join(', ')}): declare a small interface (a port) in the lower layer instead`,
  severity: 'error',
  from: { path },
  to: {
    path: LAYERS.slice(0, i + 1)
      .map(([, p]) => `(${p})`)
      .join('|'),
  },
}));

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'an import cycle: types flow down, services up through ports',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      from: { path: '^src/' },
      to: { couldNotResolve: true },
    },
    ...upward,
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
