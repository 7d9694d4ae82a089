// Builds dist/: embeds the helper script, type-checks, then bundles each entry point with ncc
// into a single ESM file (dist/cli.js, and the action's dist/main.js and dist/post.js when present).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, chmodSync } from 'node:fs';

const run = (cmd, args) => execFileSync(cmd, args, { stdio: 'inherit' });
run('node', ['scripts/embed-helper.mjs']);
run('npx', ['tsc', '--noEmit', '-p', 'tsconfig.json']);
const version = JSON.parse(readFileSync('package.json', 'utf8')).version;
mkdirSync('dist', { recursive: true });
for (const entry of ['cli', 'main', 'post']) {
  const source = `src/${entry}.ts`;
  if (!existsSync(source)) continue;
  const out = `dist/.build-${entry}`;
  rmSync(out, { recursive: true, force: true });
  run('npx', ['ncc', 'build', source, '-o', out, '--target', 'es2022', '--minify', '--quiet', '--no-source-map-register']);
  renameSync(`${out}/index.js`, `dist/${entry}.js`);
  rmSync(out, { recursive: true, force: true });
}
chmodSync('dist/cli.js', 0o755);
console.log(`built dist/ for build-cell ${version}`);
