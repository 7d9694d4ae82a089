/**
 * Which GITHUB_ENV names a cell may set for the job's later steps, which run on the host. The
 * workflow author lists them (`forward-env`: names and shell-style globs; `*` for all). Some
 * names hand the later steps' programs code to run or a place to load it from; a glob never
 * allows those, only the name itself listed. The list cannot be complete (any program may
 * read any variable): it is the reason a glob is a trust decision and the default is none.
 * Pure.
 */
import { UserError, show } from '../util/errors.js';

/** Refused through a glob, matched without regard to case (the runner treats NODE_OPTIONS so). */
const HOST_CODE: Array<[string, string]> = [
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

const globRegExp = (glob: string, flags = '') =>
  new RegExp(
    `^${glob
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
    flags,
  );

const HOST_CODE_RE = HOST_CODE.map(([glob, why]): [RegExp, string] => [globRegExp(glob, 'i'), why]);

/** Why `name` hands later steps code (undefined: it is not known to). */
export function hostCodeReason(name: string): string | undefined {
  return HOST_CODE_RE.find(([re]) => re.test(name))?.[1];
}

/** `forward-env`: names and globs, one per line or comma-separated; `#` starts a comment line. */
export function parseForwardEnv(text: string, field = 'forward-env'): string[] {
  const patterns = text
    .split(/\r?\n/)
    .filter((line) => !line.trim().startsWith('#'))
    .flatMap((line) => line.split(','))
    .map((p) => p.trim())
    .filter((p) => p !== '');
  for (const p of patterns) {
    if (!/^[A-Za-z0-9_*?-]+$/.test(p))
      throw new UserError(
        field,
        `${show(p)} is not a variable name or glob: letters, digits, '_', '-', and '*' or '?' as wildcards (one per line or comma-separated)`,
      );
  }
  return patterns;
}

export type EnvVerdict =
  { allowed: true } | { allowed: false; reason: 'not-listed' } | { allowed: false; reason: 'host-code'; why: string };

/**
 * Whether the cell may set `name`: listed exactly; else never a name that hands the host code
 * (whatever globs there are); else when a glob matches it.
 */
export function envVerdict(name: string, patterns: readonly string[]): EnvVerdict {
  if (patterns.includes(name)) return { allowed: true };
  const why = hostCodeReason(name);
  if (why) return { allowed: false, reason: 'host-code', why };
  const globbed = patterns.some((p) => /[*?]/.test(p) && globRegExp(p).test(name));
  return globbed ? { allowed: true } : { allowed: false, reason: 'not-listed' };
}
