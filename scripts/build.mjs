// Builds dist/: embeds the helper script, type-checks, then bundles each entry point with ncc.
//   dist/cli.js      the CLI's launcher (src/launcher/cli-launcher.cjs), which runs
//   dist/cli.bundle.js  the CLI, one CommonJS file, with a V8 code cache. CommonJS: Node starts
//                    an ESM entry ~3 ms later (its ESM loader), a visible share of a warm cell.
//                    dist/package.json makes dist/*.js CommonJS.
//   dist/main.js     the action's steps: one-line CommonJS loaders of the ESM bundles
//   dist/post.js     dist/main.mjs and dist/post.mjs (some of their dependencies only bundle
//                    correctly as ESM).
// Lazily loaded chunks (e.g. tar, only for archive workspaces) are dist/<id>.<entry>.js|mjs.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';

const run = (cmd, args) => execFileSync(cmd, args, { stdio: 'inherit' });
run('node', ['scripts/embed-helper.mjs']);
run('npx', ['tsc', '--noEmit', '-p', 'tsconfig.json']);
const version = JSON.parse(readFileSync('package.json', 'utf8')).version;
mkdirSync('dist', { recursive: true });
// Outputs of an earlier build must not linger.
for (const f of readdirSync('dist')) if (/^\d+\.\w+\.m?js$/.test(f) || /\.mjs$/.test(f)) rmSync(`dist/${f}`);
for (const entry of ['cli', 'main', 'post']) {
  const source = `src/${entry}.ts`;
  if (!existsSync(source)) continue;
  const commonjs = entry === 'cli';
  const ext = commonjs ? 'js' : 'mjs';
  const out = `dist/.build-${entry}`;
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  // ncc emits CommonJS for a .cjs entry: a one-line stub that requires the TypeScript entry.
  let input = source;
  if (commonjs) {
    input = `${out}/${entry}.cjs`;
    writeFileSync(input, `require(${JSON.stringify(`../../${source}`)});\n`);
  }
  run('npx', [
    'ncc',
    'build',
    input,
    '-o',
    out,
    '--target',
    'es2022',
    '--minify',
    '--quiet',
    '--no-source-map-register',
  ]);
  const index = commonjs ? 'index.cjs' : 'index.js';
  let bundle = readFileSync(`${out}/${index}`, 'utf8');
  // Chunks become dist/<id>.<entry>.<ext>, so the entries' chunks never collide; the runtime's
  // chunk file name template is adjusted to match.
  const chunkSuffix = commonjs ? '.index.cjs.js' : '.index.js';
  const chunks = readdirSync(out).filter((f) => /^\d+\./.test(f) && f.endsWith(chunkSuffix));
  if (chunks.length) {
    const template = `""+e+"${chunkSuffix}"`;
    if (bundle.split(template).length !== 2)
      throw new Error(`${entry}: cannot find ncc's chunk name template ${template}`);
    bundle = bundle.replace(template, `""+e+".${entry}.${ext}"`);
    for (const chunk of chunks)
      renameSync(`${out}/${chunk}`, `dist/${chunk.slice(0, -chunkSuffix.length)}.${entry}.${ext}`);
  }
  // The version, as the global the sources declare (src/cli/main.ts: BUILD_CELL_VERSION).
  const text = `var BUILD_CELL_VERSION=${JSON.stringify(version)};\n${bundle.replace(/^#!.*\n/, '')}`;
  if (commonjs) {
    // dist/cli.js is the launcher (src/launcher/cli-launcher.cjs), which runs this bundle with
    // a V8 code cache keyed by the bundle's sha256.
    writeFileSync('dist/cli.bundle.js', text);
    const id = createHash('sha256').update(text).digest('hex').slice(0, 16);
    const launcher = readFileSync('src/launcher/cli-launcher.cjs', 'utf8');
    if (launcher.split('@BUNDLE_ID@').length !== 2)
      throw new Error('src/launcher/cli-launcher.cjs: no @BUNDLE_ID@ placeholder');
    writeFileSync('dist/cli.js', launcher.replace('@BUNDLE_ID@', id));
  } else {
    writeFileSync(`dist/${entry}.${ext}`, text);
    writeFileSync(
      `dist/${entry}.js`,
      `// Loads the ESM bundle ${entry}.mjs (see scripts/build.mjs).\nimport('./${entry}.mjs').catch((error) => {\n  console.error(error);\n  process.exitCode = 1;\n});\n`,
    );
  }
  rmSync(out, { recursive: true, force: true });
}
writeFileSync('dist/package.json', `${JSON.stringify({ type: 'commonjs' }, null, 2)}\n`);
chmodSync('dist/cli.js', 0o755);
console.log(`built dist/ for build-cell ${version}`);
