#!/usr/bin/env -S -u NODE_EXTRA_CA_CERTS node
'use strict';
// The `build-cell` command (dist/cli.js), written by scripts/build.mjs from
// src/launcher/cli-launcher.cjs: it runs the CLI bundle (dist/cli.bundle.js) with a V8 code
// cache of its own, which spares a warm cell most of compiling the functions it runs (~8 ms).
//
// The shebang drops NODE_EXTRA_CA_CERTS: Node parses that file at every start (~30 ms for a
// distribution's bundle), and the CLI makes no TLS connection of its own (skopeo reaches the
// registries with the system's certificate store).
//
// V8 runs cached code without checking it against the source, so the cache is trusted only in
// a directory and a file of this user's own that nobody else can write, and only for this exact
// bundle (its sha256 is in the file name), Node version and architecture. Anything else, or a
// cache V8 rejects, means compiling as usual (and writing a fresh cache at exit).
// It lives in the state dir (STATE/code-cache). BUILD_CELL_CODE_CACHE=off turns it off;
// BUILD_CELL_CODE_CACHE=DIR puts it elsewhere.
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const { wrap } = require('node:module');

const BUNDLE_ID = 'ce5cca49ba91886c';
const bundle = path.join(__dirname, 'cli.bundle.js');

/**
 * STATE/code-cache: everything build-cell keeps lives in its state dir (`--state-dir`, else
 * the CLI's default, as src/cli/args.ts decides). The state dir itself is never created here.
 */
function cacheDir() {
  const setting = process.env.BUILD_CELL_CODE_CACHE;
  if (setting === 'off') return undefined;
  if (setting) return setting;
  const args = process.argv.slice(2);
  let state;
  for (let i = 0; i < args.length && args[i] !== '--'; i++) {
    if (args[i] === '--state-dir') state = args[i + 1];
    else if (args[i].startsWith('--state-dir=')) state = args[i].slice('--state-dir='.length);
  }
  if (state === undefined) {
    if (process.geteuid() === 0) state = '/var/lib/build-cell';
    else {
      const xdg = process.env.XDG_CACHE_HOME;
      const home = process.env.HOME || require('node:os').homedir();
      state = path.join(xdg && path.isAbsolute(xdg) ? xdg : path.join(home, '.cache'), 'build-cell');
    }
  }
  return state ? path.resolve(state, 'code-cache') : undefined;
}

/** Ours, not a symlink, and writable by nobody else. */
function trusted(info) {
  return info.uid === process.geteuid() && (info.mode & 0o022) === 0;
}

function readCache(file) {
  try {
    const dir = fs.lstatSync(path.dirname(file));
    const info = fs.lstatSync(file);
    if (!dir.isDirectory() || !trusted(dir) || !info.isFile() || !trusted(info)) return undefined;
    return fs.readFileSync(file);
  } catch {
    return undefined;
  }
}

function mkdirIfMissing(dir) {
  try {
    fs.mkdirSync(dir, { mode: 0o700 });
  } catch (error) {
    if (error.code !== 'EEXIST') throw error;
  }
}

function writeCache(file, data) {
  try {
    // Only in a state dir that exists (the run made it): never one of the launcher's making.
    // (An existing code-cache dir is fine: a new bundle's cache goes beside the old one's.)
    if (!process.env.BUILD_CELL_CODE_CACHE) mkdirIfMissing(path.dirname(file));
    else fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const dir = fs.lstatSync(path.dirname(file));
    if (!dir.isDirectory() || !trusted(dir)) return;
    const temp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(temp, data, { mode: 0o600, flag: 'wx' });
    fs.renameSync(temp, file);
  } catch {
    // A cache is an optimisation: without one, the next start compiles as usual.
  }
}

// One cache per command (run, prepare, ...): each holds the functions that command compiles.
const command = /^[a-z-]{1,20}$/.test(process.argv[2] ?? '') ? process.argv[2] : 'other';
const dir = cacheDir();
const file = dir && path.join(dir, `cli-${BUNDLE_ID}-${process.version}-${process.arch}-${command}.bin`);
const cachedData = file && readCache(file);
const script = new vm.Script(wrap(fs.readFileSync(bundle, 'utf8')), { filename: bundle, cachedData });
if (file && (!cachedData || script.cachedDataRejected)) {
  // At exit, the cache holds every function this run compiled, not only the top level.
  process.once('exit', () => writeCache(file, script.createCachedData()));
}
script.runInThisContext().call(module.exports, module.exports, require, module, bundle, __dirname);
