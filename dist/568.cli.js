"use strict";
exports.id = 568;
exports.ids = [568];
exports.modules = {

/***/ 568:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {


// EXPORTS
__webpack_require__.d(__webpack_exports__, {
  resolveQemu: () => (/* binding */ resolveQemu)
});

// UNUSED EXPORTS: ChecksumMismatchError, MKFS_EROFS, defaultToolCacheDir, hostGlibc, provisionFromDeb, resolveMkfsErofs, resolveTools, sha256File, verifySha256

// EXTERNAL MODULE: ./node_modules/@actions/tool-cache/lib/tool-cache.js + 17 modules
var tool_cache = __webpack_require__(5991);
// EXTERNAL MODULE: external "node:fs/promises"
var promises_ = __webpack_require__(1455);
// EXTERNAL MODULE: external "node:os"
var external_node_os_ = __webpack_require__(8161);
// EXTERNAL MODULE: external "node:path"
var external_node_path_ = __webpack_require__(6760);
// EXTERNAL MODULE: ./src/util/errors.ts
var errors = __webpack_require__(17);
// EXTERNAL MODULE: ./src/util/which.ts
var which = __webpack_require__(6669);
// EXTERNAL MODULE: ./src/util/fs.ts
var fs = __webpack_require__(1917);
;// CONCATENATED MODULE: ./src/tools/checksum.ts
/**
 * Checking a downloaded file against its pinned sha256: the streamed hash, the check (which
 * deletes a mismatching file), and the error a mismatch is.
 */



/** A downloaded file whose sha256 is not the pinned one. */
class ChecksumMismatchError extends errors/* CellSetupError */.Y1 {
    url;
    path;
    expected;
    actual;
    size;
    expectedSize;
    name = 'ChecksumMismatchError';
    constructor(url, path, expected, actual, size, expectedSize) {
        const sizes = expectedSize !== undefined && expectedSize !== size
            ? `${size} bytes instead of ${expectedSize}`
            : `${size} bytes`;
        super(`checksum mismatch for ${url}: expected sha256 ${expected}, got sha256 ${actual} (${sizes}; downloaded to ${path}, now deleted). ` +
            'The tools source did not serve the pinned Debian package: refusing to use it. Check the tools-source mirror and any proxy in between.');
        this.url = url;
        this.path = path;
        this.expected = expected;
        this.actual = actual;
        this.size = size;
        this.expectedSize = expectedSize;
    }
}
/** Throw ChecksumMismatchError (after deleting `path`) unless `path` has sha256 `expected`. */
async function verifySha256(path, expected, context) {
    const [actual, info] = await Promise.all([(0,fs/* sha256File */.Q3)(path), (0,promises_.stat)(path)]);
    if (actual === expected.toLowerCase())
        return;
    await (0,promises_.rm)(path, { force: true });
    throw new ChecksumMismatchError(context.url, path, expected.toLowerCase(), actual, info.size, context.expectedSize);
}

// EXTERNAL MODULE: external "node:fs"
var external_node_fs_ = __webpack_require__(3024);
// EXTERNAL MODULE: external "node:stream/promises"
var external_node_stream_promises_ = __webpack_require__(6466);
// EXTERNAL MODULE: ./src/util/exec.ts
var util_exec = __webpack_require__(7895);
;// CONCATENATED MODULE: ./src/tools/deb.ts
/**
 * Reading Debian packages without root and without dpkg: a .deb is an `ar` archive
 * ("!<arch>\n", then per member a 60-byte header and the member's bytes, padded to an even
 * length) holding debian-binary, control.tar.* and data.tar.*. The ar container is parsed
 * here; the data tarball is copied out and the wanted files are extracted from it with the
 * system `tar` (GNU tar on Ubuntu and Debian; it runs xz / zstd / gzip for the decompression).
 * When tar cannot decompress it (e.g. no `zstd` program) and `dpkg-deb` exists, `dpkg-deb -x`
 * (which decompresses in-process) is the fallback. Neither needs root: files are written as
 * the caller, never chowned.
 */








const AR_MAGIC = '!<arch>\n';
const HEADER_SIZE = 60;
/** The members of the ar archive `file` (names without GNU's trailing '/'). */
async function readArMembers(file) {
    const handle = await (0,promises_.open)(file, 'r').catch((error) => {
        throw new errors/* CellSetupError */.Y1(`cannot open Debian package ${file}: ${(0,errors/* errorMessage */.gJ)(error)}`);
    });
    try {
        const total = (await handle.stat()).size;
        const magic = Buffer.alloc(AR_MAGIC.length);
        const { bytesRead } = await handle.read(magic, 0, magic.length, 0);
        if (bytesRead < magic.length || magic.toString('latin1') !== AR_MAGIC) {
            throw new errors/* CellSetupError */.Y1(`${file} is not a Debian package: it does not start with the ar magic ${(0,errors/* show */.WU)(AR_MAGIC)}`);
        }
        const members = [];
        let position = AR_MAGIC.length;
        const header = Buffer.alloc(HEADER_SIZE);
        while (position < total) {
            // A lone padding byte at the very end is tolerated (some writers add it).
            if (total - position === 1)
                break;
            const read = await handle.read(header, 0, HEADER_SIZE, position);
            if (read.bytesRead < HEADER_SIZE)
                throw new errors/* CellSetupError */.Y1(`${file}: truncated ar header at byte ${position}`);
            const text = header.toString('latin1');
            if (text.slice(58, 60) !== '`\n')
                throw new errors/* CellSetupError */.Y1(`${file}: corrupt ar header at byte ${position} (bad terminator)`);
            const rawName = text.slice(0, 16).trimEnd();
            const sizeText = text.slice(48, 58).trim();
            if (!/^\d+$/.test(sizeText))
                throw new errors/* CellSetupError */.Y1(`${file}: corrupt ar header at byte ${position} (size ${(0,errors/* show */.WU)(sizeText)})`);
            const size = Number(sizeText);
            const offset = position + HEADER_SIZE;
            if (offset + size > total)
                throw new errors/* CellSetupError */.Y1(`${file}: truncated: member ${(0,errors/* show */.WU)(rawName)} needs ${size} bytes at ${offset}, the file has ${total}`);
            const mode = parseInt(text.slice(40, 48).trim() || '0', 8);
            const name = rawName === '/' || rawName === '//' ? rawName : rawName.replace(/\/$/, '');
            members.push({ name, offset, size, mode: Number.isNaN(mode) ? 0 : mode });
            position = offset + size + (size % 2);
        }
        return members;
    }
    finally {
        await handle.close();
    }
}
const DATA_TAR = /^data\.tar(\.(xz|zst|gz|bz2|lzma))?$/;
/** The data.tar* member of a .deb. */
async function findDataMember(deb) {
    const members = await readArMembers(deb);
    if (members[0]?.name !== 'debian-binary') {
        throw new errors/* CellSetupError */.Y1(`${deb} is not a Debian package: its first ar member is ${(0,errors/* show */.WU)(members[0]?.name ?? '(none)')}, not debian-binary`);
    }
    const data = members.find((m) => DATA_TAR.test(m.name));
    if (!data)
        throw new errors/* CellSetupError */.Y1(`${deb} has no data.tar member (members: ${members.map((m) => m.name).join(', ')})`);
    return data;
}
/** Copy one ar member's bytes to `dest`. */
async function copyArMember(archive, member, dest) {
    const source = member.size === 0 ? [] : (0,external_node_fs_.createReadStream)(archive, { start: member.offset, end: member.offset + member.size - 1 });
    await (0,external_node_stream_promises_.pipeline)(source, (0,external_node_fs_.createWriteStream)(dest));
}
function tarCompressionFlags(memberName) {
    const suffix = /\.(\w+)$/.exec(memberName)?.[1];
    switch (suffix) {
        case 'xz':
            return { flags: ['-J'], program: 'xz' };
        case 'zst':
            return { flags: ['--zstd'], program: 'zstd' };
        case 'gz':
            return { flags: ['-z'], program: 'gzip' };
        case 'bz2':
            return { flags: ['-j'], program: 'bzip2' };
        case 'lzma':
            return { flags: ['--lzma'], program: 'xz' };
        default:
            return { flags: [] };
    }
}
/** A member path as given ("usr/bin/x", "./usr/bin/x" or "/usr/bin/x") in canonical "usr/bin/x" form. */
function canonicalMember(path) {
    const clean = external_node_path_.posix.normalize(path.replace(/^(\.\/|\/)+/, ''));
    if (!clean || clean === '.' || clean.startsWith('../') || clean === '..')
        throw new errors/* CellSetupError */.Y1(`invalid package member path ${(0,errors/* show */.WU)(path)}`);
    return clean;
}
/**
 * Extract the files `members` (paths inside the package, e.g. "usr/bin/umoci") of the .deb
 * `deb` into `destDir`, keeping their relative paths; returns member -> extracted path.
 * A member missing from the package is an error naming it. Runs without root.
 */
async function extractDebMembers(deb, destDir, members, options = {}) {
    const wanted = [...new Set(members.map(canonicalMember))];
    const result = {};
    if (!wanted.length)
        return result;
    const lookup = options.which ?? which/* which */.K7;
    const data = await findDataMember(deb);
    await (0,promises_.mkdir)(destDir, { recursive: true });
    const scratch = await (0,promises_.mkdtemp)((0,external_node_path_.join)(options.scratchDir ?? (0,external_node_os_.tmpdir)(), 'build-cell-deb-'));
    try {
        const { flags, program } = tarCompressionFlags(data.name);
        const tar = lookup('tar');
        const dpkgDeb = lookup('dpkg-deb');
        if (tar && (!program || lookup(program))) {
            const tarball = (0,external_node_path_.join)(scratch, data.name);
            await copyArMember(deb, data, tarball);
            await tarExtract(tar, flags, tarball, destDir, wanted, deb);
        }
        else if (dpkgDeb) {
            const all = (0,external_node_path_.join)(scratch, 'root');
            await (0,util_exec/* exec */.m0)(dpkgDeb, ['-x', deb, all], `extracting ${deb}`);
            for (const member of wanted) {
                const from = (0,external_node_path_.join)(all, member);
                const isFile = await (0,promises_.stat)(from).then((s) => s.isFile(), () => false);
                if (!isFile)
                    throw new errors/* CellSetupError */.Y1(`${deb} has no file ${member}`);
                await (0,promises_.mkdir)((0,external_node_path_.dirname)((0,external_node_path_.join)(destDir, member)), { recursive: true });
                await (0,promises_.copyFile)(from, (0,external_node_path_.join)(destDir, member));
                await (0,promises_.chmod)((0,external_node_path_.join)(destDir, member), (await (0,promises_.stat)(from)).mode & 0o7777);
            }
        }
        else {
            throw new errors/* CellSetupError */.Y1(`cannot extract ${deb}: it needs \`tar\`${program ? ` and \`${program}\`` : ''} (or \`dpkg-deb\`) on PATH`);
        }
        for (const member of wanted) {
            const path = (0,external_node_path_.join)(destDir, member);
            const info = await (0,promises_.stat)(path).catch(() => undefined);
            if (!info?.isFile())
                throw new errors/* CellSetupError */.Y1(`${deb}: ${member} was not extracted to ${path}`);
            result[member] = path;
        }
        return result;
    }
    finally {
        await (0,promises_.rm)(scratch, { recursive: true, force: true });
    }
}
async function tarExtract(tar, flags, tarball, destDir, wanted, deb) {
    // dpkg-deb writes member names as "./usr/...": ask for those; when none of them is found
    // (an archive written without the "./" by another tool), ask for the bare names.
    const base = ['-x', ...flags, '-f', tarball, '-C', destDir, '--no-same-owner', '--'];
    const what = `extracting ${wanted.join(', ')} from ${deb}`;
    const notFound = (error) => error instanceof util_exec/* ExecError */.cI
        ? [...error.result.stderr.matchAll(/tar: (.+?): Not found in archive/g)].map((m) => canonicalMember(m[1]))
        : undefined;
    try {
        await (0,util_exec/* exec */.m0)(tar, [...base, ...wanted.map((m) => `./${m}`)], what);
        return;
    }
    catch (error) {
        const missing = notFound(error);
        if (!missing?.length)
            throw error;
        if (missing.length < wanted.length)
            throw new errors/* CellSetupError */.Y1(`${deb} has no file ${missing.join(', ')}`);
    }
    try {
        await (0,util_exec/* exec */.m0)(tar, [...base, ...wanted], what);
    }
    catch (error) {
        const missing = notFound(error);
        if (missing?.length)
            throw new errors/* CellSetupError */.Y1(`${deb} has no file ${missing.join(', ')}`);
        throw error;
    }
}

;// CONCATENATED MODULE: ./src/tools/lookup.ts
/**
 * Finding a tool that is already there, on PATH or in the tool cache, and trusting it only
 * once `NAME --version` has run.
 */




/**
 * How a tool shows that it runs: `--version` exits 0, for most; mkfs.erofs 1.5 prints its
 * version and exits 1 there, and is checked with `--help`.
 */
function checkArgs(name) {
    return name === 'mkfs.erofs' ? ['--help'] : ['--version'];
}
/** `path --version` (or what checkArgs says for the tool `name`) exits 0; otherwise a short reason. */
async function runs(path, name) {
    const args = checkArgs(name);
    try {
        const result = await (0,util_exec/* exec */.m0)(path, args, `running ${path}`, { allowFailure: true });
        if (result.code === 0 && !result.signal)
            return { ok: true };
        const tail = (0,util_exec/* tailLines */.os)(result.stderr || result.stdout, 2);
        return {
            ok: false,
            reason: `\`${path} ${args.join(' ')}\` ${result.signal ? `was killed by ${result.signal}` : `exited with ${result.code}`}${tail ? `: ${tail}` : ''}`,
        };
    }
    catch (error) {
        return { ok: false, reason: (0,errors/* errorMessage */.gJ)(error) };
    }
}
async function lookup_fromPath(name, ctx) {
    const found = ctx.onPath(name);
    if (!found)
        return undefined;
    const path = (0,external_node_path_.resolve)(found);
    const check = await runs(path, name);
    if (check.ok) {
        ctx.log(`${name}: using ${path} (from PATH)`);
        return { path };
    }
    ctx.log(`${name}: ${path} is on PATH but does not run (${check.reason}); looking further`);
    return undefined;
}
async function lookup_fromToolCache(name, versionSpec, ctx, what) {
    const dir = tool_cache/* find */.I6(name, versionSpec, ctx.toolArch);
    if (!dir)
        return undefined;
    const path = (0,external_node_path_.join)(dir, name);
    const check = await runs(path, name);
    if (check.ok) {
        ctx.log(`${name}: using ${path} (from the tool cache, ${what})`);
        return { path, dir };
    }
    ctx.log(`${name}: the tool cache entry ${path} does not run (${check.reason}); not using it`);
    return undefined;
}

;// CONCATENATED MODULE: ./src/tools/system-install.ts
/**
 * The last resort for a tool build-cell cannot download (skopeo): the system package manager,
 * and what to tell the user when that is not possible either.
 */


/** How to get skopeo onto this host when build-cell cannot. */
const system_install_SKOPEO_HELP = (/* unused pure expression or super */ null && ('build-cell cannot download skopeo (it is linked against many system libraries): install it with the system package manager ' +
    '(Debian/Ubuntu: sudo apt-get install -y skopeo; Fedora/RHEL: sudo dnf install -y skopeo; Alpine: apk add skopeo) or put a skopeo binary on PATH'));
/** Install `pkg` with apt-get (through `sudo -n` unless root); a string says why not. */
async function system_install_installWithApt(pkg, ctx) {
    if (!ctx.systemInstall)
        return '';
    const aptGet = ctx.onPath('apt-get');
    if (!aptGet)
        return 'no apt-get to install it with';
    let runner = aptGet;
    let prefix = [];
    if (process.getuid?.() !== 0) {
        const sudo = ctx.onPath('sudo');
        if (!sudo)
            return 'not root, and no sudo to run apt-get with';
        const probe = await exec(sudo, ['-n', 'true'], 'checking for passwordless sudo', { allowFailure: true });
        if (probe.code !== 0)
            return '`sudo -n` needs a password, so apt-get cannot be run';
        runner = sudo;
        prefix = ['-n', aptGet];
    }
    const install = [...prefix, 'install', '-y', '--no-install-recommends', pkg];
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    ctx.log(`${pkg}: not on PATH or in the tool cache; installing it with the system package manager: ${commandLine(runner, install)}`);
    let result = await exec(runner, install, `installing ${pkg}`, { allowFailure: true, env });
    if (result.code !== 0) {
        ctx.log(`${pkg}: apt-get install failed (${tailLines(result.stderr, 1)}); running apt-get update and trying again`);
        await exec(runner, [...prefix, 'update', '-q'], 'apt-get update', { allowFailure: true, env });
        result = await exec(runner, install, `installing ${pkg}`, { allowFailure: true, env });
    }
    if (result.code !== 0)
        return `\`${commandLine(runner, install)}\` exited with ${result.code}: ${tailLines(result.stderr || result.stdout, 3)}`;
    const found = await fromPath(pkg, ctx);
    return found ?? `\`${commandLine(runner, install)}\` succeeded, but ${pkg} is still not on PATH`;
}

;// CONCATENATED MODULE: ./src/tools/tool-cache-env.ts
/**
 * @actions/tool-cache's environment, in place only while resolve.ts uses it (withToolCacheEnv).
 *
 * tool-cache 4 reads RUNNER_TOOL_CACHE (find, cacheFile) and RUNNER_TEMP (downloadTool without
 * a destination) from process.env at call time, not at import. Outside Actions (the CLI) they
 * are set to defaults only while a call of resolve.ts runs, and removed again afterwards.
 * Its core.debug() lines ("::debug::...", written to stdout) are workflow commands: outside
 * Actions they would pollute the CLI's stdout, so they are dropped there (or sent to stderr
 * with BUILD_CELL_DEBUG=1).
 */


/** Where the CLI keeps its tool cache when RUNNER_TOOL_CACHE is not set. */
function defaultToolCacheDir(env = process.env) {
    const xdg = env.XDG_CACHE_HOME && (0,external_node_path_.isAbsolute)(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : (0,external_node_path_.join)((0,external_node_os_.homedir)(), '.cache');
    return (0,external_node_path_.join)(xdg, 'build-cell', 'tools');
}
let scopes = 0;
let leaveScope;
/** Run `fn` with tool-cache's environment in place; nested calls share one scope. */
async function tool_cache_env_withToolCacheEnv(fn) {
    if (scopes++ === 0)
        leaveScope = enterScope();
    try {
        return await fn();
    }
    finally {
        if (--scopes === 0) {
            leaveScope?.();
            leaveScope = undefined;
        }
    }
}
function enterScope() {
    const added = [];
    if (!process.env.RUNNER_TOOL_CACHE) {
        process.env.RUNNER_TOOL_CACHE = defaultToolCacheDir();
        added.push('RUNNER_TOOL_CACHE');
    }
    if (!process.env.RUNNER_TEMP) {
        process.env.RUNNER_TEMP = (0,external_node_os_.tmpdir)();
        added.push('RUNNER_TEMP');
    }
    const restoreStdout = process.env.GITHUB_ACTIONS === 'true' ? undefined : dropCoreDebug();
    return () => {
        for (const name of added)
            delete process.env[name];
        restoreStdout?.();
    };
}
function dropCoreDebug() {
    const stdout = process.stdout;
    // eslint-disable-next-line @typescript-eslint/unbound-method -- put back on stdout later; called with stdout as `this`
    const original = stdout.write;
    const debug = process.env.BUILD_CELL_DEBUG === '1';
    let active = true;
    const filtered = function (chunk, ...rest) {
        if (active && typeof chunk === 'string' && chunk.startsWith('::debug::')) {
            if (debug)
                process.stderr.write(`build-cell: debug: tool-cache: ${chunk.slice('::debug::'.length)}`);
            const callback = rest.find((r) => typeof r === 'function');
            callback?.();
            return true;
        }
        return original.apply(this, [chunk, ...rest]);
    };
    stdout.write = filtered;
    return () => {
        // If someone wrapped stdout.write after us, ours stays in their chain but passes all through.
        active = false;
        if (stdout.write === filtered)
            stdout.write = original;
    };
}

// EXTERNAL MODULE: ./src/tools/pinned.ts
var pinned = __webpack_require__(7409);
;// CONCATENATED MODULE: ./src/tools/resolve.ts
/**
 * Finding skopeo, umoci and the qemu-*-static binaries a run needs, in this order:
 *
 *   1. a binary on PATH that runs (`NAME --version` exits 0; ./lookup.ts);
 *   2. the tool cache of @actions/tool-cache (RUNNER_TOOL_CACHE; for the CLI, by default
 *      $XDG_CACHE_HOME/build-cell/tools), under the tool's name and the pinned Debian version;
 *   3. for umoci and qemu: the pinned Debian package (./pinned.ts) downloaded from the tools
 *      source (the `tools-source` input, a Debian archive root), else from snapshot.debian.org;
 *      its sha256 is checked (./checksum.ts; a mismatch is a hard error, and nothing is
 *      cached), the needed files are extracted without root (./deb.ts), run once, and only
 *      then stored with tc.cacheFile (which writes the entry's `.complete` marker last).
 *      skopeo cannot be downloaded (it is dynamically linked against many libraries): the
 *      last resort is the system package manager (./system-install.ts: `apt-get install -y
 *      skopeo`, through `sudo -n` when not root), else an error that says how to install it.
 *
 * Every step says where each tool came from through `log`. tool-cache's environment outside
 * Actions: ./tool-cache-env.ts.
 */















async function resolveTools(request) {
    const ctx = context(request);
    return withToolCacheEnv(async () => {
        const dirs = [];
        const take = (found) => {
            if (found.dir && !dirs.includes(found.dir))
                dirs.push(found.dir);
            return found.path;
        };
        const skopeo = take(await resolveSkopeo(ctx));
        const umoci = take((await resolvePinned(pinFor('umoci'), 'umoci', [{ name: 'umoci', member: 'usr/bin/umoci' }], ctx)).umoci);
        const found = await qemuBinaries(request.qemu ?? [], request.qemuVersion, ctx);
        const qemu = {};
        for (const [name, where] of Object.entries(found))
            qemu[name] = take(where);
        return { skopeo, umoci, qemu, dirsToAddToPath: dirs };
    });
}
/** mkfs.erofs (PATH, the tool cache, else Debian's erofs-utils): what writes the Actions cache's EROFS images. */
async function resolveMkfsErofs(request) {
    const ctx = context(request);
    return withToolCacheEnv(async () => {
        const found = await resolvePinned(pinFor('erofs-utils'), 'erofs-utils', [MKFS_EROFS], ctx);
        return found['mkfs.erofs'];
    });
}
const MKFS_EROFS = { name: 'mkfs.erofs', member: 'usr/bin/mkfs.erofs' };
/**
 * The qemu-ARCH-static programs of `arches` alone (the CLI's --qemu; the action resolves
 * them with the other tools): name -> path, and the directories to put first on PATH.
 */
async function resolveQemu(request) {
    const ctx = context(request);
    return tool_cache_env_withToolCacheEnv(async () => {
        const found = await qemuBinaries(request.qemu, request.qemuVersion, ctx);
        const dirs = [...new Set(Object.values(found).flatMap((f) => (f.dir ? [f.dir] : [])))];
        return { qemu: Object.fromEntries(Object.entries(found).map(([name, f]) => [name, f.path])), dirs };
    });
}
/**
 * Without a version: PATH, the tool cache, then the default pin (7.2). With `path`: PATH only
 * (as it is, no checksum). With a pinned version: never PATH, that pin's tool-cache entry,
 * else its download.
 */
async function qemuBinaries(arches, version, ctx) {
    const names = [...new Set(arches.map((a) => a.qemu))];
    for (const name of names) {
        if (!/^qemu-[a-z0-9_]+-static$/.test(name))
            throw new errors/* UserError */.yo('qemu', `not a qemu-user-static program name: ${(0,errors/* show */.WU)(name)}`);
    }
    if (!names.length)
        return {};
    if (version === 'path')
        return qemuFromPath(names, ctx);
    const pin = (0,pinned/* qemuPinFor */.tT)(version ?? '7.2');
    const pinnedCtx = version ? { ...ctx, onPath: () => undefined } : ctx;
    return resolvePinned(pin, 'qemu-user-static', names.map((name) => ({ name, member: pin ? (0,pinned/* qemuMember */.l1)(pin, name) : `usr/bin/${name}` })), pinnedCtx);
}
async function qemuFromPath(names, ctx) {
    const result = {};
    for (const name of names) {
        const found = await lookup_fromPath(name, ctx);
        if (!found)
            throw new errors/* CellSetupError */.Y1(`qemu: path: ${name} is not on PATH (or does not run): install qemu-user-static (Debian/Ubuntu: apt-get install qemu-user-static), or use qemu 7.2 or 10.0 (a pinned download)`);
        result[name] = found;
    }
    return result;
}
function context(request) {
    const source = (0,pinned/* checkToolsSource */.zC)(request.source || pinned/* DEFAULT_TOOLS_SOURCE */.uh, 'tools-source');
    const snapshotSource = request.snapshotSource === false ? false : (request.snapshotSource ?? pinned/* SNAPSHOT_SOURCE */.r).replace(/\/+$/, '');
    return {
        log: request.log ?? ((msg) => process.stderr.write(`build-cell: ${msg}\n`)),
        source,
        snapshotSource,
        onPath: request.onPath ?? ((name) => (0,which/* which */.K7)(name)),
        systemInstall: request.systemInstall ?? true,
        toolArch: (0,external_node_os_.arch)(),
    };
}
/** PATH, then the tool cache, then the pinned Debian package, for tools that one package ships. */
async function resolvePinned(pin, pkg, tools, ctx) {
    const result = {};
    const missing = [];
    for (const tool of tools) {
        const found = (await lookup_fromPath(tool.name, ctx)) ??
            (pin &&
                (await lookup_fromToolCache(tool.name, (0,pinned/* toolCacheVersion */.tI)(pin.version), ctx, `Debian ${pin.package} ${pin.version}`)));
        if (found)
            result[tool.name] = found;
        else
            missing.push(tool);
    }
    if (!missing.length)
        return result;
    const names = missing.map((t) => t.name).join(', ');
    if (!pin) {
        throw new errors/* CellSetupError */.Y1(`${names} not found on PATH or in the tool cache, and build-cell pins ${pkg} only for amd64 and arm64 hosts (this one is ${(0,pinned/* debianArch */._2)()}): install ${pkg} with the system package manager`);
    }
    ctx.log(`${names}: not on PATH or in the tool cache (${process.env.RUNNER_TOOL_CACHE}); fetching Debian's ${pin.package} ${pin.version} (${pin.arch})`);
    const cached = await provision(pin, missing, ctx);
    for (const tool of missing)
        result[tool.name] = { path: cached[tool.name], dir: (0,external_node_path_.dirname)(cached[tool.name]) };
    return result;
}
/**
 * Download `pin` (tools source, then snapshot), check its sha256, extract `tools` from it,
 * check each runs, and store each in the tool cache; returns name -> cached binary.
 * Exported for tests, which pin packages of their own.
 */
function provisionFromDeb(pin, tools, options) {
    return provision(pin, tools, context({ source: options.source, snapshotSource: options.snapshotSource, log: options.log }));
}
async function provision(pin, tools, ctx) {
    return tool_cache_env_withToolCacheEnv(async () => {
        if (pin.needsGlibc)
            checkGlibc(pin, tools);
        const work = await (0,promises_.mkdtemp)((0,external_node_path_.join)(process.env.RUNNER_TEMP || (0,external_node_os_.tmpdir)(), 'build-cell-tools-'));
        try {
            const deb = await downloadPinned(pin, work, ctx);
            const extracted = await extractDebMembers(deb, (0,external_node_path_.join)(work, 'root'), tools.map((t) => t.member), { scratchDir: work });
            const staged = {};
            for (const tool of tools) {
                const file = extracted[tool.member.replace(/^\.?\/+/, '')];
                if (!file)
                    throw new errors/* CellSetupError */.Y1(`${tool.member} was not extracted from ${deb}`);
                await (0,promises_.chmod)(file, 0o755);
                const check = await runs(file, tool.name);
                if (!check.ok) {
                    const glibc = pin.needsGlibc ? ` (it needs glibc >= ${pin.needsGlibc})` : '';
                    throw new errors/* CellSetupError */.Y1(`${tool.name} from Debian's ${pin.package} ${pin.version} does not run on this host${glibc}: ${check.reason}; install ${tool.name} with the system package manager instead`);
                }
                staged[tool.name] = file;
            }
            // Only now, with the checksum verified and every binary run once, does anything enter
            // the tool cache (tc.cacheFile writes the entry's .complete marker last).
            const result = {};
            const version = (0,pinned/* toolCacheVersion */.tI)(pin.version);
            for (const tool of tools) {
                const dir = await tool_cache/* cacheFile */.NJ(staged[tool.name], tool.name, tool.name, version, ctx.toolArch);
                result[tool.name] = (0,external_node_path_.join)(dir, tool.name);
                ctx.log(`${tool.name}: cached ${result[tool.name]} (Debian ${pin.package} ${pin.version}, tool cache version ${version})`);
            }
            return result;
        }
        finally {
            await (0,promises_.rm)(work, { recursive: true, force: true });
        }
    });
}
async function downloadPinned(pin, work, ctx) {
    const urls = [(0,pinned/* poolUrl */.W6)(ctx.source, pin)];
    if (ctx.snapshotSource !== false) {
        const fallback = (0,pinned/* snapshotUrl */.cG)(pin, ctx.snapshotSource);
        if (!urls.includes(fallback))
            urls.push(fallback);
    }
    const failures = [];
    for (const [index, url] of urls.entries()) {
        const dest = (0,external_node_path_.join)(work, `${index}-${(0,external_node_path_.basename)(pin.pool)}`);
        ctx.log(`${pin.package}: downloading ${url} (${(pin.size / 1e6).toFixed(1)} MB)`);
        try {
            await tool_cache/* downloadTool */.bq(url, dest);
        }
        catch (error) {
            await (0,promises_.rm)(dest, { force: true });
            failures.push(`${url}: ${(0,errors/* errorMessage */.gJ)(error)}`);
            if (index + 1 < urls.length)
                ctx.log(`${pin.package}: download from ${url} failed (${(0,errors/* errorMessage */.gJ)(error)}); trying ${urls[index + 1]}`);
            continue;
        }
        // A mismatch is a hard error: no other source is tried, nothing is cached.
        await verifySha256(dest, pin.sha256, { url, expectedSize: pin.size });
        ctx.log(`${pin.package}: sha256 ${pin.sha256} verified`);
        return dest;
    }
    throw new errors/* CellSetupError */.Y1(`cannot download Debian's ${pin.package} ${pin.version} (${pin.arch}): ${failures.join('; ')}. ` +
        `Set tools-source to a Debian archive mirror that has ${pin.pool}, or put the tools on PATH.`);
}
/** The host's glibc version (undefined when not glibc, e.g. musl). */
function hostGlibc() {
    const report = process.report?.getReport();
    return report?.header?.glibcVersionRuntime;
}
function versionBelow(have, need) {
    const a = have.split('.').map(Number);
    const b = need.split('.').map(Number);
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
        const x = a[i] ?? 0;
        const y = b[i] ?? 0;
        if (x !== y)
            return x < y;
    }
    return false;
}
function checkGlibc(pin, tools) {
    const have = hostGlibc();
    if (have && pin.needsGlibc && versionBelow(have, pin.needsGlibc)) {
        const names = tools.map((t) => t.name).join(', ');
        throw new errors/* CellSetupError */.Y1(`${names}: Debian's ${pin.package} ${pin.version} needs glibc >= ${pin.needsGlibc}, this host has ${have}: install ${names} with the system package manager or put it on PATH`);
    }
}
async function resolveSkopeo(ctx) {
    const found = (await fromPath('skopeo', ctx)) ?? (await fromToolCache('skopeo', '*', ctx, 'newest version there'));
    if (found)
        return found;
    const outcome = await installWithApt('skopeo', ctx);
    if (typeof outcome !== 'string')
        return outcome;
    throw new CellSetupError(`skopeo was not found on PATH or in the tool cache${outcome ? ` (${outcome})` : ''}. ${SKOPEO_HELP}`);
}


/***/ })

};
;