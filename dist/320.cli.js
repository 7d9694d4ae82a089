"use strict";
exports.id = 320;
exports.ids = [320];
exports.modules = {

/***/ 1320:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

// ESM COMPAT FLAG
__webpack_require__.r(__webpack_exports__);

// EXPORTS
__webpack_require__.d(__webpack_exports__, {
  runSessionCommand: () => (/* binding */ runSessionCommand)
});

// EXTERNAL MODULE: external "node:fs"
var external_node_fs_ = __webpack_require__(3024);
// EXTERNAL MODULE: external "node:path"
var external_node_path_ = __webpack_require__(6760);
// EXTERNAL MODULE: ./src/cli/report-install.ts
var report_install = __webpack_require__(6924);
// EXTERNAL MODULE: external "node:os"
var external_node_os_ = __webpack_require__(8161);
// EXTERNAL MODULE: ./src/util/errors.ts
var errors = __webpack_require__(17);
;// CONCATENATED MODULE: ./src/github/env-policy.ts
/**
 * Which GITHUB_ENV names a cell may set for the job's later steps, which run on the host. The
 * workflow author lists them (`forward-env`: names and shell-style globs; `*` for all). Some
 * names hand the later steps' programs code to run or a place to load it from; a glob never
 * allows those, only the name itself listed. The list cannot be complete (any program may
 * read any variable): it is the reason a glob is a trust decision and the default is none.
 * Pure.
 */

/** Refused through a glob, matched without regard to case (the runner treats NODE_OPTIONS so). */
const HOST_CODE = [
    // Shells run these, or look up commands and startup files through them.
    ['BASH_ENV', 'bash sources it'],
    ['ENV', 'sh sources it'],
    ['BASH_FUNC_*', 'bash imports functions from it'],
    ['SHELLOPTS', 'changes how every bash script runs'],
    ['BASHOPTS', 'changes how every bash script runs'],
    ['PS4', 'bash expands it for set -x'],
    ['PROMPT_COMMAND', 'bash runs it'],
    ['IFS', 'changes how every shell script splits words'],
    ['CDPATH', 'changes where cd goes'],
    ['ZDOTDIR', 'zsh sources files from it'],
    ['PATH', 'chooses every program (forward-path is for PATH entries)'],
    ['HOME', 'programs read their configuration (.gitconfig, .bashrc, .npmrc) from it'],
    ['XDG_*', 'programs read their configuration from it'],
    ['SHELL', 'programs run it'],
    // The dynamic loader and libc.
    ['LD_*', 'the dynamic loader loads libraries from it'],
    ['GCONV_PATH', 'glibc loads modules from it'],
    ['GLIBC_TUNABLES', 'changes glibc itself'],
    ['HOSTALIASES', 'changes name resolution'],
    // Programs that run a command a variable names.
    ['EDITOR', 'programs run it'],
    ['VISUAL', 'programs run it'],
    ['PAGER', 'programs run it'],
    ['MANPAGER', 'man runs it'],
    ['LESSOPEN', 'less runs it'],
    ['LESSCLOSE', 'less runs it'],
    ['BROWSER', 'programs run it'],
    ['SSH_*', 'ssh runs commands and reads keys through it'],
    ['SUDO_*', 'sudo runs commands through it'],
    ['TAR_OPTIONS', 'tar runs programs named in it'],
    ['MAKEFLAGS', 'make reads variables and options from it'],
    ['MFLAGS', 'make reads options from it'],
    ['MAKEFILES', 'make reads makefiles from it'],
    ['GIT_*', 'git runs commands and reads configuration through it'],
    // Language runtimes and their package managers.
    ['NODE_*', 'Node loads code through it'],
    ['NPM_CONFIG_*', 'npm runs scripts through it'],
    ['YARN_*', 'yarn runs code through it'],
    ['PYTHON*', 'Python loads code through it'],
    ['PIP_*', 'pip installs from it'],
    ['PERL5*', 'Perl loads code through it'],
    ['PERLLIB', 'Perl loads code from it'],
    ['RUBYOPT', 'Ruby loads code through it'],
    ['RUBYLIB', 'Ruby loads code from it'],
    ['GEM_*', 'RubyGems loads code from it'],
    ['BUNDLE_*', 'Bundler loads code through it'],
    ['JAVA_TOOL_OPTIONS', 'the JVM loads agents through it'],
    ['_JAVA_OPTIONS', 'the JVM loads agents through it'],
    ['JDK_JAVA_OPTIONS', 'the JVM loads agents through it'],
    ['CLASSPATH', 'Java loads classes from it'],
    ['MAVEN_OPTS', 'the JVM loads agents through it'],
    ['GRADLE_OPTS', 'the JVM loads agents through it'],
    ['DOTNET_*', '.NET loads code through it'],
    ['CORECLR_*', '.NET loads profilers through it'],
    ['COMPLUS_*', '.NET loads code through it'],
    ['LUA_*', 'Lua runs and loads code through it'],
    ['PHPRC', 'PHP reads its configuration from it'],
    ['PHP_INI_SCAN_DIR', 'PHP reads its configuration from it'],
    ['GOFLAGS', 'go runs -toolexec programs from it'],
    ['RUSTC_WRAPPER', 'cargo runs it'],
    ['CARGO_*', 'cargo runs programs and reads configuration through it'],
    // Whom later downloads trust.
    ['*_PROXY', 'later downloads go through it'],
    ['SSL_CERT_*', 'later downloads trust it'],
    ['CURL_CA_BUNDLE', 'later downloads trust it'],
    ['REQUESTS_CA_BUNDLE', 'later downloads trust it'],
    // The runner's and build-cell's own.
    ['GITHUB_*', "the runner's own"],
    ['RUNNER_*', "the runner's own"],
    ['ACTIONS_*', 'the runner and the cache and artifact actions use it'],
    ['INPUT_*', 'later actions read it as their inputs'],
    ['STATE_*', "later actions' post steps read it as their state"],
    ['BUILD_CELL_*', 'changes how later build-cell steps isolate cells'],
];
const globRegExp = (glob, flags = '') => new RegExp(`^${glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.')}$`, flags);
const HOST_CODE_RE = HOST_CODE.map(([glob, why]) => [globRegExp(glob, 'i'), why]);
/** Why `name` hands later steps code (undefined: it is not known to). */
function hostCodeReason(name) {
    return HOST_CODE_RE.find(([re]) => re.test(name))?.[1];
}
/** `forward-env`: names and globs, one per line or comma-separated; `#` starts a comment line. */
function parseForwardEnv(text, field = 'forward-env') {
    const patterns = text
        .split(/\r?\n/)
        .filter((line) => !line.trim().startsWith('#'))
        .flatMap((line) => line.split(','))
        .map((p) => p.trim())
        .filter((p) => p !== '');
    for (const p of patterns) {
        if (!/^[A-Za-z0-9_*?-]+$/.test(p))
            throw new UserError(field, `${show(p)} is not a variable name or glob: letters, digits, '_', '-', and '*' or '?' as wildcards (one per line or comma-separated)`);
    }
    return patterns;
}
/**
 * Whether the cell may set `name`: listed exactly; else never a name that hands the host code
 * (whatever globs there are); else when a glob matches it.
 */
function envVerdict(name, patterns) {
    if (patterns.includes(name))
        return { allowed: true };
    const why = hostCodeReason(name);
    if (why)
        return { allowed: false, reason: 'host-code', why };
    const globbed = patterns.some((p) => /[*?]/.test(p) && globRegExp(p).test(name));
    return globbed ? { allowed: true } : { allowed: false, reason: 'not-listed' };
}

// EXTERNAL MODULE: ./src/util/random.ts
var util_random = __webpack_require__(1245);
;// CONCATENATED MODULE: ./src/github/key-value-file.ts
/**
 * The runner's key-value file format (GITHUB_ENV, GITHUB_OUTPUT), read and written. The
 * reading follows Runner.Worker's FileCommandManager: lines split on LF only (a CR stays in
 * the line); empty lines skipped; `NAME=VALUE` when '=' comes before any '<<'; otherwise
 * `NAME<<DELIMITER`, whose value is the lines up to one that equals DELIMITER exactly.
 * Writing never copies a line it read: every entry is written again as a heredoc with a fresh
 * random delimiter of build-cell's own, and only under a name that reads back as itself.
 * Pure, apart from the random delimiter.
 */

/**
 * Names build-cell writes: letters, digits, '_' and '-', not starting with a digit or '-'
 * (GitHub's rule for output names). Nothing else reads back unchanged: a name with '=' or
 * '<<' in it, or ending in '<', turns into another name and delimiter when written again.
 */
const SAFE_NAME = /^[A-Za-z_][A-Za-z0-9_-]*$/;
/** Read a key-value file with the runner's rules; an error ends the reading (as it ends the runner's). */
function parseKeyValueFile(text) {
    // The runner reads the file as .NET's File.ReadAllText does, which drops a UTF-8 byte order mark.
    const lines = text.replace(/^\uFEFF/, '').split('\n');
    // A final LF ends the last line; it does not start another one.
    if (lines[lines.length - 1] === '')
        lines.pop();
    const entries = [];
    for (let i = 0; i < lines.length; i++) {
        const line = lines[i];
        if (line === '')
            continue;
        const eq = line.indexOf('=');
        const heredoc = line.indexOf('<<');
        if (eq >= 0 && (heredoc < 0 || eq < heredoc)) {
            const name = line.slice(0, eq);
            if (!name)
                return { entries, error: `line ${i + 1}: no name before '='` };
            entries.push({ name, value: line.slice(eq + 1), line: i + 1 });
        }
        else if (heredoc >= 0) {
            const name = line.slice(0, heredoc);
            const delimiter = line.slice(heredoc + 2);
            if (!name || !delimiter)
                return { entries, error: `line ${i + 1}: NAME<<DELIMITER needs both` };
            const end = lines.indexOf(delimiter, i + 1);
            if (end < 0)
                return { entries, error: `line ${i + 1}: no line closes the value of ${cut(name)} (<<${cut(delimiter)})` };
            entries.push({ name, value: lines.slice(i + 1, end).join('\n'), line: i + 1 });
            i = end;
        }
        else {
            return { entries, error: `line ${i + 1}: neither NAME=VALUE nor NAME<<DELIMITER` };
        }
    }
    return { entries };
}
/** A name or delimiter the cell chose, short enough for a warning. */
const cut = (text) => (text.length > 40 ? `${text.slice(0, 37)}...` : text);
/**
 * Entries as the runner reads them back, each a heredoc with a delimiter of its own that its
 * value cannot hold (a fresh one is drawn if it does). Throws on a name outside SAFE_NAME:
 * callers filter names first, so that is a bug, never the cell's doing.
 */
function formatKeyValueFile(entries, random = () => (0,util_random/* randomHex */.n)(16)) {
    let text = '';
    for (const [name, value] of entries) {
        if (!SAFE_NAME.test(name))
            throw new Error(`build-cell: refusing to write the file-command name ${JSON.stringify(name)}`);
        let delimiter = `build-cell_${random()}`;
        while (value.includes(delimiter) || name.includes(delimiter))
            delimiter = `build-cell_${random()}`;
        text += `${name}<<${delimiter}\n${value}\n${delimiter}\n`;
    }
    return text;
}
/** GITHUB_PATH: one directory per non-empty line (the runner reads it with .NET's ReadAllLines: LF, CR LF or CR). */
function parsePathFile(text) {
    return text
        .replace(/^\uFEFF/, '')
        .split(/\r\n|\r|\n/)
        .filter((line) => line !== '');
}

;// CONCATENATED MODULE: ./src/github/file-commands.ts
/**
 * GITHUB_OUTPUT, GITHUB_ENV, GITHUB_PATH and GITHUB_STEP_SUMMARY inside the cell point at
 * files of a staged directory; after the run build-cell passes on to the runner's own files
 * what the workflow author allows, never a line as the cell wrote it: key-value files are
 * parsed (key-value-file.ts) and each allowed entry written again with build-cell's own
 * delimiter; GITHUB_ENV names pass env-policy.ts; GITHUB_PATH entries only with forward-path;
 * build-cell's own output names are never the cell's. The step summary is markdown data and
 * passes as it is. What is dropped is named in one warning per step. Synchronous: a handful
 * of tiny files, on every session step's path.
 */




/** Where the cell sees its file-command files (as container actions do). */
const FILE_COMMANDS_CELL_DIR = '/github/file_commands';
const FILE_COMMANDS = {
    GITHUB_OUTPUT: 'output',
    GITHUB_ENV: 'env',
    GITHUB_PATH: 'path',
    GITHUB_STEP_SUMMARY: 'step_summary',
};
async function prepareFileCommands(dir) {
    (0,external_node_fs_.rmSync)(dir, { recursive: true, force: true });
    (0,external_node_fs_.mkdirSync)(dir, { recursive: true });
    for (const file of Object.values(FILE_COMMANDS))
        (0,external_node_fs_.writeFileSync)((0,external_node_path_.join)(dir, file), '');
}
/**
 * A file the cell wrote, read without following a symlink (the cell may have replaced it by
 * one to a host file: it is then not read at all), and only if it is a regular file.
 */
function readOwnFile(path) {
    let fd;
    try {
        fd = (0,external_node_fs_.openSync)(path, external_node_fs_.constants.O_RDONLY | external_node_fs_.constants.O_NOFOLLOW | external_node_fs_.constants.O_NONBLOCK);
    }
    catch {
        return '';
    }
    try {
        return (0,external_node_fs_.fstatSync)(fd).isFile() ? (0,external_node_fs_.readFileSync)(fd, 'utf8') : '';
    }
    finally {
        (0,external_node_fs_.closeSync)(fd);
    }
}
/** What was dropped, by reason, for the warning. */
class Dropped {
    notListed = new Set();
    hostCode = new Map();
    reserved = new Set();
    badNames = new Set();
    paths = [];
    malformed = [];
    warning() {
        const parts = [
            this.notListed.size &&
                `GITHUB_ENV ${list([...this.notListed])}: not in forward-env (list them in the forward-env input to pass them on)`,
            this.hostCode.size &&
                `GITHUB_ENV ${list([...this.hostCode].map(([name, why]) => `${name} (${why})`))}: refused, they hand the later steps on the host code to run (only forward-env naming each one exactly, not a glob, allows them)`,
            this.badNames.size &&
                `names that are not letters, digits, '_' and '-' ${list([...this.badNames].map((n) => JSON.stringify(n)))}: never passed on`,
            this.reserved.size &&
                `GITHUB_OUTPUT ${list([...this.reserved])}: build-cell's own outputs, which keep build-cell's values`,
            this.paths.length &&
                `GITHUB_PATH ${list(this.paths)}: not added to later steps' PATH (set forward-path: true to add them)`,
            ...this.malformed,
        ].filter((part) => !!part);
        return parts.length ? `the cell's file commands were not all passed on: ${parts.join('; ')}` : undefined;
    }
}
/** A readable list of cell-chosen strings: each cut short, at most 20. */
function list(items) {
    const shown = items.slice(0, 20).map((item) => (item.length > 80 ? `${item.slice(0, 77)}...` : item));
    return shown.join(', ') + (items.length > shown.length ? ` and ${items.length - shown.length} more` : '');
}
/** The entries of one key-value file that `keep` accepts; a malformed file is noted, what came before it kept. */
function readEntries(text, file, dropped, keep) {
    const parsed = parseKeyValueFile(text);
    if (parsed.error)
        dropped.malformed.push(`${file} is malformed at ${parsed.error}: the rest of it was dropped`);
    return parsed.entries
        .filter((entry) => {
        if (SAFE_NAME.test(entry.name))
            return keep(entry);
        dropped.badNames.add(entry.name);
        return false;
    })
        .map((entry) => [entry.name, entry.value]);
}
/** What one file command passes on: the text to append to the runner's file ('' for nothing). */
function filtered(name, text, rules, dropped) {
    switch (name) {
        case 'GITHUB_STEP_SUMMARY':
            return text.endsWith('\n') ? text : `${text}\n`;
        case 'GITHUB_PATH': {
            const entries = parsePathFile(text);
            if (rules.path)
                return entries.map((entry) => `${entry}\n`).join('');
            dropped.paths.push(...entries);
            return '';
        }
        case 'GITHUB_OUTPUT': {
            const reserved = new Set(rules.reservedOutputs?.map((n) => n.toLowerCase()));
            const entries = readEntries(text, name, dropped, ({ name: output }) => {
                if (!reserved.has(output.toLowerCase()))
                    return true;
                dropped.reserved.add(output);
                return false;
            });
            return formatKeyValueFile(entries);
        }
        case 'GITHUB_ENV': {
            const entries = readEntries(text, name, dropped, ({ name: variable }) => {
                const verdict = envVerdict(variable, rules.env);
                if (verdict.allowed)
                    return true;
                if (verdict.reason === 'host-code')
                    dropped.hostCode.set(variable, verdict.why);
                else
                    dropped.notListed.add(variable);
                return false;
            });
            return formatKeyValueFile(entries);
        }
    }
}
/** Pass on what the cell wrote, as `rules` allow, to the runner's files named in `env`. */
async function forwardFileCommands(dir, env, rules) {
    const forwarded = [];
    const dropped = new Dropped();
    for (const [name, file] of Object.entries(FILE_COMMANDS)) {
        const content = readOwnFile((0,external_node_path_.join)(dir, file));
        const target = env[name];
        if (!content || !target)
            continue;
        const text = filtered(name, content, rules, dropped);
        if (!text)
            continue;
        (0,external_node_fs_.appendFileSync)(target, text);
        forwarded.push(name);
    }
    return { forwarded, warning: dropped.warning() };
}

;// CONCATENATED MODULE: ./src/github/workflow-commands.ts
/**
 * The runner's workflow commands in a step's log (`::warning::`, `::stop-commands::`). A cell's
 * output is its step's log, and the runner acts on `::command::` lines in it (`::add-mask::`,
 * `::set-output`, `::save-state`, `::stop-commands::` ...). While a cell runs, build-cell
 * stops that with `::stop-commands::TOKEN`, TOKEN unguessable and never shown to the cell, and
 * resumes it with `::TOKEN::` when the cell is done, on every way out: a cell can then neither
 * act as a command nor silence build-cell's own later ones.
 *
 * The runner reads a step's stdout and stderr separately and does not keep their order, so the
 * markers only guard the stream they are written to: stdout, where the cells of a runner step
 * write both their streams (CellRequest.stderrToStdout).
 */

/** A message as the runner reads a command's data back (what @actions/core's escapeData does). */
function escapeData(text) {
    return text.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}
/** A warning annotation, for the processes that run without @actions/core (a session step). */
function warningCommand(message) {
    return `::warning::${escapeData(message)}\n`;
}
/**
 * process.stdout is synchronous for pipes and files on Linux: a marker is in the log before the
 * cell (a child writing to the same descriptor) starts, in order with @actions/core's lines.
 */
const toStdout = (text) => {
    process.stdout.write(text);
};
/**
 * Run `cell` with the runner's command processing stopped; resumed when it settles, whatever
 * way. `write` is for tests.
 */
async function withCommandsStopped(cell, write = toStdout) {
    // Letters and digits: the runner matches the token as a command name, without case.
    const token = `build-cell-${(0,util_random/* randomHex */.n)(16)}`;
    write(`::stop-commands::${token}\n`);
    try {
        return await cell();
    }
    finally {
        write(`::${token}::\n`);
    }
}

// EXTERNAL MODULE: ./src/privilege/mode.ts
var mode = __webpack_require__(8780);
;// CONCATENATED MODULE: ./src/github/variables.ts
/**
 * GitHub variables a build may use. Never the runtime tokens (ACTIONS_*): code from a pull
 * request must not be able to write the repository's caches or artifacts.
 */
const PASSED_GITHUB_VARS = [
    'CI',
    'GITHUB_ACTIONS',
    'GITHUB_ACTOR',
    'GITHUB_BASE_REF',
    'GITHUB_EVENT_NAME',
    'GITHUB_HEAD_REF',
    'GITHUB_JOB',
    'GITHUB_REF',
    'GITHUB_REF_NAME',
    'GITHUB_REF_TYPE',
    'GITHUB_REPOSITORY',
    'GITHUB_REPOSITORY_OWNER',
    'GITHUB_RUN_ATTEMPT',
    'GITHUB_RUN_ID',
    'GITHUB_RUN_NUMBER',
    'GITHUB_SERVER_URL',
    'GITHUB_SHA',
    'GITHUB_WORKFLOW',
    'RUNNER_ARCH',
    'RUNNER_OS',
];

;// CONCATENATED MODULE: ./src/session/env.ts
/**
 * The environment of a session step run by the runner (`shell: build-cell {0}`): what the
 * workflow gave the step (its `env:`, the job's and the workflow's, GITHUB_ENV of earlier
 * steps) reaches the cell; the runner's internals, the host's own variables (PATH, HOME, the
 * machine's environment) and the runtime tokens (ACTIONS_*) never do. The machine's
 * environment is the runner process's own (the step's parent): a variable with the same value
 * there is the machine's, not the workflow's. Pure.
 */

/** Names that belong to the runner or to this host, whatever their value. */
const RUNNER_PREFIXES = /^(GITHUB_|RUNNER_|ACTIONS_|INPUT_|STATE_|BUILD_CELL_|XDG_|SUDO_|LD_)/;
const HOST_ONLY = new Set([
    'PATH',
    'HOME',
    'USER',
    'LOGNAME',
    'SHELL',
    'PWD',
    'OLDPWD',
    'SHLVL',
    '_',
    'HOSTNAME',
    'MAIL',
    'TMPDIR',
    'INVOCATION_ID',
    'JOURNAL_STREAM',
    'NODE_OPTIONS',
    'NODE_EXTRA_CA_CERTS',
]);
function stepEnvironment(step, machine) {
    const passed = new Set(PASSED_GITHUB_VARS);
    const out = [];
    for (const [name, value] of Object.entries(step)) {
        if (value === undefined)
            continue;
        if (passed.has(name)) {
            out.push([name, value]);
            continue;
        }
        if (RUNNER_PREFIXES.test(name) || HOST_ONLY.has(name) || machine[name] === value)
            continue;
        out.push([name, value]);
    }
    return out.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}
/** A process's environment from /proc (NUL-separated NAME=VALUE), or {} when unreadable. */
function parseEnviron(text) {
    const env = {};
    for (const entry of text.split('\0')) {
        const eq = entry.indexOf('=');
        if (eq > 0)
            env[entry.slice(0, eq)] = entry.slice(eq + 1);
    }
    return env;
}

// EXTERNAL MODULE: ./src/write-back/workspace.ts
var workspace = __webpack_require__(3296);
// EXTERNAL MODULE: external "node:fs/promises"
var promises_ = __webpack_require__(1455);
// EXTERNAL MODULE: ./src/util/builtins.ts + 1 modules
var builtins = __webpack_require__(8060);
// EXTERNAL MODULE: ./src/emulation/arch.ts
var arch = __webpack_require__(9506);
// EXTERNAL MODULE: ./src/engine-entry.ts + 19 modules
var engine_entry = __webpack_require__(9839);
// EXTERNAL MODULE: ./src/install/key.ts
var key = __webpack_require__(3368);
// EXTERNAL MODULE: ./src/privilege/userns.ts
var userns = __webpack_require__(9859);
// EXTERNAL MODULE: ./src/cell/stage.ts + 1 modules
var stage = __webpack_require__(672);
// EXTERNAL MODULE: ./src/cellspec/types.ts
var types = __webpack_require__(3982);
// EXTERNAL MODULE: ./src/session/state.ts
var session_state = __webpack_require__(2813);
// EXTERNAL MODULE: ./src/cellspec/paths.ts
var paths = __webpack_require__(8315);
;// CONCATENATED MODULE: ./src/session/run.ts
/**
 * Starting a session, running a step in it, ending it. Each step is an ordinary cell over the
 * session's root layer (cell/plan.ts persistentUpper): files, installed packages and /root
 * dotfiles carry over from step to step, processes do not. The workspace is the live host
 * directory, written back after each step. The end copies the exports out of a last cell over
 * the same state, then removes the root layer as the cleanup policy says.
 */













/** Start a session: prepare its image (and install step), run the first command if any, record it. */
async function startSession(options, runner) {
    const { request } = options;
    const spec = request.spec;
    const state = {
        format: 1,
        name: options.name,
        mode: options.mode,
        stateDir: request.stateDir,
        owner: request.owner,
        image: { ref: request.image.ref, arch: request.image.arch.name, digest: request.image.digest ?? '' },
        workspace: spec.workspaceSeed.kind === 'snapshot' ? spec.workspaceSeed.path : undefined,
        workspacePath: spec.workspacePath,
        cwd: spec.command.cwd,
        shell: options.shell,
        imports: spec.imports,
        caches: spec.caches.filter((c) => !options.firstCellOnly?.includes(c.destination)),
        ...(spec.tmpfs ? { tmpfs: spec.tmpfs } : {}),
        network: spec.network,
        limits: spec.limits,
        cleanup: spec.cleanup,
        root: options.root,
        failed: false,
        ...(request.qemuCpu ? { qemuCpu: request.qemuCpu } : {}),
        ...(request.emulation && request.emulation !== 'auto' ? { emulation: request.emulation } : {}),
        ...(request.qemu ? { qemu: request.qemu } : {}),
        ...(request.writeBackGit ? { writeBackGit: true } : {}),
        ...(options.forward ? { forward: options.forward } : {}),
    };
    // Written first, by the invoking user: the directory is theirs (the engine, root through sudo, only adds the root layer).
    (0,session_state/* writeSession */.Ko)(options.sessions, state);
    const outcome = await (0,engine_entry/* runInMode */.QI)({
        ...request,
        rootLayer: options.root.upper,
        writeBack: state.workspace !== undefined,
        prepareOnly: !options.run,
        ...(runner.runnerLog ? { stderrToStdout: true } : {}),
    }, options.mode, runner.cli);
    if (outcome.ok) {
        const { result } = outcome;
        state.image = {
            ref: result.install ? (0,key/* installReference */.np)(result.install.hash) : request.image.ref,
            arch: request.image.arch.name,
            digest: result.image.digest,
        };
        if (options.run && result.exitCode !== 0)
            state.failed = true;
        (0,session_state/* writeSession */.Ko)(options.sessions, state);
    }
    else {
        // No session without its image: nothing of it is left.
        await removeRootLayer(state).catch(() => undefined);
        await (0,promises_.rm)((0,external_node_path_.join)(options.sessions, options.name), { recursive: true, force: true });
    }
    return { state, outcome };
}
/** The cell request of a step: the session's spec over its root layer, on its image (no pull, no install). */
function stepRequest(state, step, runner) {
    const command = 'script' in step.command
        ? { cwd: state.cwd, ...(0,types/* scriptCommand */.rG)(state.shell) }
        : { cwd: state.cwd, executable: step.command.argv[0], argv: step.command.argv.slice(1) };
    return {
        stateDir: state.stateDir,
        owner: state.owner,
        inheritImageEnv: true,
        ...(state.qemuCpu ? { qemuCpu: state.qemuCpu } : {}),
        ...(state.emulation ? { emulation: state.emulation } : {}),
        ...(state.qemu ? { qemu: state.qemu } : {}),
        image: {
            ref: state.image.ref,
            arch: (0,arch/* resolveArch */.rI)(state.image.arch),
            pull: 'never',
            registry: { tlsVerify: true },
            digest: state.image.digest,
        },
        spec: {
            workspacePath: state.workspacePath,
            workspaceSeed: state.workspace ? { kind: 'snapshot', path: state.workspace } : { kind: 'empty' },
            imports: state.imports,
            caches: [...state.caches, ...(step.caches ?? [])],
            exports: step.exports ?? [],
            ...(state.tmpfs ? { tmpfs: state.tmpfs } : {}),
            command,
            env: step.env,
            network: state.network,
            limits: state.limits,
            cleanup: state.cleanup,
            ...('script' in step.command ? { script: step.command.script } : {}),
        },
        rootLayer: state.root.upper,
        writeBack: state.workspace !== undefined,
        ...(state.writeBackGit ? { writeBackGit: true } : {}),
        ...(runner?.runnerLog ? { stderrToStdout: true } : {}),
    };
}
/** Run one step; the session records a failure (the end's cleanup policy and exports use it). */
async function runStep(sessions, state, step, runner) {
    const outcome = await (0,engine_entry/* runInMode */.QI)(stepRequest(state, step, runner), state.mode, runner.cli);
    if (!state.failed && (!outcome.ok || outcome.result.exitCode !== 0))
        (0,session_state/* writeSession */.Ko)(sessions, { ...state, failed: true });
    return outcome;
}
/**
 * End a session: exports (from a last cell over its state; a missing one is an error only if
 * no step failed), then the root layer removed unless the cleanup policy keeps it.
 */
async function endSession(sessions, state, exports, runner) {
    let outcome;
    if (exports.length) {
        // `false` after a failed step: the engine then tolerates a missing export, as after a failed command.
        const request = stepRequest(state, { command: { argv: [state.failed ? 'false' : 'true'] }, env: [], exports }, runner);
        outcome = await (0,engine_entry/* runInMode */.QI)({ ...request, writeBack: false, spec: { ...request.spec, cleanup: 'always' } }, state.mode, runner.cli);
    }
    const kept = (0,types/* scratchPreserved */.td)(state.cleanup, !state.failed);
    if (!kept)
        await removeRootLayer(state);
    const dir = (0,external_node_path_.join)(sessions, state.name);
    // A kept root layer inside the session's own directory (the CLI's) stays; the session ends either way.
    await (0,promises_.rm)(kept && (0,paths/* covers */.hU)(dir, state.root.dir) ? (0,session_state/* sessionFile */.NE)(sessions, state.name) : dir, {
        recursive: true,
        force: true,
    });
    return { outcome, kept };
}
/** The root layer belongs to root in sudo mode, and may hold subordinate ids' files rootless. */
async function removeRootLayer(state) {
    if (state.mode === 'sudo' && process.getuid?.() !== 0) {
        const result = (0,builtins/* lazyChildProcess */.K)().spawnSync('sudo', ['-n', 'rm', '-rf', '--', state.root.dir], {
            encoding: 'utf8',
        });
        if (result.status !== 0)
            throw new errors/* CellSetupError */.Y1(`cannot remove the session's root layer ${state.root.dir}: ${(result.stderr || '').trim() || `sudo rm exited with ${result.status}`}`);
        return;
    }
    if (state.mode === 'rootless')
        return (0,stage/* removeScratch */.ZU)(state.root.dir, (0,userns/* probeUserns */.nD)().ids);
    (0,external_node_fs_.rmSync)(state.root.dir, { recursive: true, force: true });
}

// EXTERNAL MODULE: ./src/cli/command-to-request.ts
var command_to_request = __webpack_require__(2025);
// EXTERNAL MODULE: ./src/cli/result-file.ts
var result_file = __webpack_require__(9576);
;// CONCATENATED MODULE: ./src/cli/session.ts
/**
 * The session commands: `build-cell session start|exec|end` for a terminal (a multi-step CI
 * job reproduced locally), and `session step`, what the runner runs for `shell: build-cell {0}`
 * (through the shim the action's main step puts on PATH). Each exits with the step's command's
 * exit code (128+N for a signal); build-cell's own errors are 125, through the CLI's main.
 */














const START_HINT = 'start one with `build-cell session start`';
const STEP_HINT = 'start one in an earlier step of this job: `uses: metalor/build-cell@v1` with `session: true` (or `session: NAME`, then `shell: build-cell --session NAME {0}`)';
async function runSessionCommand(command, log) {
    // The CLI that runs the engine as root in sudo mode: this one.
    const cli = process.argv[1];
    switch (command.kind) {
        case 'session-start': {
            const sessions = (0,external_node_path_.join)(command.stateDir, 'sessions');
            const dir = (0,external_node_path_.join)(sessions, command.name);
            const privilege = (0,mode/* choosePrivilege */.dr)(command.privilege, process.getuid?.() ?? 0, '--privilege', (0,mode/* needsOf */.hN)(command.image.arch, command.emulation));
            log(`privilege ${privilege.mode} (${privilege.reason})`);
            const owner = privilege.mode === 'sudo' ? { uid: process.getuid(), gid: process.getgid() } : undefined;
            const { state, outcome } = await startSession({
                sessions,
                name: command.name,
                mode: privilege.mode,
                shell: 'sh',
                run: command.run,
                root: { dir, upper: (0,external_node_path_.join)(dir, 'upper') },
                request: await (0,command_to_request/* cellRequest */.C3)(command, owner, log),
            }, { cli });
            if (outcome.ok && outcome.result.install)
                (0,report_install/* reportInstall */.o)(outcome.result.install, log);
            const code = finish(outcome);
            process.stderr.write(`build-cell: session ${state.name} started (image ${state.image.digest}); run steps with: build-cell session exec --name ${state.name} --run '...'\n`);
            return code;
        }
        case 'session-exec': {
            const sessions = (0,external_node_path_.join)(command.stateDir, 'sessions');
            const state = (0,session_state/* readSession */.lx)(sessions, command.name, START_HINT);
            const outcome = await runStep(sessions, state, { command: command.command, env: command.env }, { cli });
            if (command.resultFile && outcome.ok)
                await (0,result_file/* writeResultFile */.t)(command.resultFile, outcome.result, {
                    mode: state.mode,
                    reason: `the mode session ${state.name} started in`,
                });
            return finish(outcome);
        }
        case 'session-end': {
            const sessions = (0,external_node_path_.join)(command.stateDir, 'sessions');
            const state = (0,session_state/* readSession */.lx)(sessions, command.name, START_HINT);
            const { outcome, kept } = await endSession(sessions, state, command.exports, { cli });
            if (outcome && !outcome.ok)
                throw new errors/* CellSetupError */.Y1(outcome.error);
            if (kept)
                process.stderr.write(`build-cell: session ${state.name} ended; its root layer is kept at ${state.root.dir} (cleanup: ${state.cleanup})\n`);
            return 0;
        }
        case 'session-step':
            return runnerStep(command);
    }
}
/** A runner step: its script file, its environment less the runner's, its own file commands. */
async function runnerStep(command) {
    const state = (0,session_state/* readSession */.lx)(command.sessions, command.name, STEP_HINT);
    let script;
    try {
        script = (0,external_node_fs_.readFileSync)(command.script, 'utf8');
    }
    catch (error) {
        throw new errors/* UserError */.yo('script', `cannot read the step's script ${command.script}: ${error.message}`);
    }
    // Outside the state dir (a cache source may not lie in it), owner-only (mkdtemp), removed after the step.
    const fileCommands = (0,external_node_fs_.mkdtempSync)((0,external_node_path_.join)(process.env.RUNNER_TEMP || (0,external_node_os_.tmpdir)(), 'build-cell-step-'));
    try {
        await prepareFileCommands(fileCommands);
        let machine = {};
        try {
            machine = parseEnviron((0,external_node_fs_.readFileSync)(`/proc/${process.ppid}/environ`, 'utf8'));
        }
        catch {
            machine = {};
        }
        const env = [
            ...stepEnvironment(process.env, machine).filter(([name]) => !(name in FILE_COMMANDS) && name !== 'GITHUB_WORKSPACE'),
            ['GITHUB_WORKSPACE', state.workspacePath],
            ...Object.entries(FILE_COMMANDS).map(([name, file]) => [
                name,
                `${FILE_COMMANDS_CELL_DIR}/${file}`,
            ]),
        ];
        // The step's log is the cell's output: the runner acts on no command in it.
        const outcome = await withCommandsStopped(() => runStep(command.sessions, state, {
            command: { script },
            env,
            caches: [{ source: fileCommands, destination: FILE_COMMANDS_CELL_DIR }],
        }, { cli: process.argv[1], runnerLog: true }));
        // What the step's script wrote to GITHUB_OUTPUT and the others reaches this step's own files, as the session allows.
        const forwarded = await forwardFileCommands(fileCommands, process.env, {
            env: state.forward?.env ?? [],
            path: state.forward?.path ?? false,
        });
        if (forwarded.warning)
            annotate(forwarded.warning);
        return finish(outcome, annotate, 'write-back-git: true in the step that started the session');
    }
    finally {
        (0,external_node_fs_.rmSync)(fileCommands, { recursive: true, force: true });
    }
}
/** A warning in a runner step's log, as an annotation (escaped: a path the cell chose is one line of data). */
const annotate = (message) => {
    process.stdout.write(warningCommand(message));
};
const toStderr = (message) => {
    process.stderr.write(`build-cell: warning: ${message}\n`);
};
/** The step's exit code; its warnings; build-cell's own failure thrown (exit 125 from main). */
function finish(outcome, warn = toStderr, gitOptIn = '--write-back-git at the session start') {
    if (!outcome.ok) {
        if (outcome.cancelled) {
            process.stderr.write('build-cell: cancelled: the cell was stopped and cleaned up\n');
            return 128 + external_node_os_.constants.signals.SIGTERM;
        }
        throw new errors/* CellSetupError */.Y1(outcome.error);
    }
    const result = outcome.result;
    for (const path of result.writeBack?.skipped ?? [])
        warn((0,workspace/* skippedWarning */.FE)(path));
    if (result.writeBack?.git.length)
        warn((0,workspace/* gitWarning */.nN)(result.writeBack.git, gitOptIn));
    if (result.signal)
        process.stderr.write(`build-cell: the command was killed by signal ${result.signal} (exit code ${result.exitCode})\n`);
    return result.exitCode;
}


/***/ })

};
;