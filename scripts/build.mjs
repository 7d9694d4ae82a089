// Builds dist/: embeds the helper script, type-checks, then bundles each entry point with ncc
// into a single ESM file (dist/cli.js, and the action's dist/main.js and dist/post.js when present).
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';

const run = (cmd, args) => execFileSync(cmd, args, { stdio: 'inherit' });
run('node', ['scripts/embed-helper.mjs']);
run('npx', ['tsc', '--noEmit', '-p', 'tsconfig.json']);
const version = JSON.parse(readFileSync('package.json', 'utf8')).version;
mkdirSync('dist', { recursive: true });
// Chunks of an earlier build must not linger.
for (const f of readdirSync('dist')) if (/^\d+\.\w+\.js$/.test(f)) rmSync(`dist/${f}`);
for (const entry of ['cli', 'main', 'post']) {
  const source = `src/${entry}.ts`;
  if (!existsSync(source)) continue;
  const out = `dist/.build-${entry}`;
  rmSync(out, { recursive: true, force: true });
  run('npx', ['ncc', 'build', source, '-o', out, '--target', 'es2022', '--minify', '--quiet', '--no-source-map-register']);
  // Lazily loaded chunks (e.g. tar, only for archive workspaces) become dist/<id>.<entry>.js, so
  // the entries' chunks never collide; the runtime's chunk file name template is adjusted to match.
  let bundle = readFileSync(`${out}/index.js`, 'utf8');
  const chunks = readdirSync(out).filter((f) => /^\d+\.index\.js$/.test(f));
  if (chunks.length) {
    const template = '""+e+".index.js"';
    if (bundle.split(template).length !== 2) throw new Error(`${entry}: cannot find ncc's chunk name template`);
    bundle = bundle.replace(template, `""+e+".${entry}.js"`);
    for (const chunk of chunks) renameSync(`${out}/${chunk}`, `dist/${chunk.replace('.index.js', `.${entry}.js`)}`);
  }
  writeFileSync(`dist/${entry}.js`, bundle);
  rmSync(out, { recursive: true, force: true });
}
chmodSync('dist/cli.js', 0o755);
console.log(`built dist/ for build-cell ${version}`);
