/**
 * The CLI's flags -> a typed, validated command. Pure: no I/O beyond reading the given
 * environment and working directory, so every error is tested without root.
 *
 * The entry point: the dispatch by command, and prepare's and demo's flags. run's flags (and
 * those it shares) are ./run-args.ts, the session subcommands' ./session-args.ts, the usage text
 * and flag tables ./usage.ts, the command's type ./command.ts.
 */
import { PRIVILEGES, type Privilege } from '../privilege/mode.js';
import { UserError, show } from '../util/errors.js';
import { bool, cellToHost, hostToCell, oneOf, optionalInt, optionalSize } from '../cellspec/text.js';
import type { CliCommand, CliEnvironment } from './command.js';
import { common, envEntry, installOption, parseRun, privilege, stateDir } from './run-args.js';
import { parseSession } from './session-args.js';
import { parseStore } from './store-args.js';
import { IMAGE_OPTIONS, USAGE, parse } from './usage.js';

export { bool, cellToHost, hostToCell, oneOf, optionalInt, optionalSize };

export { PRIVILEGES, type Privilege };

export type { CliCommand, CliEnvironment, CommonOptions, InstallOption } from './command.js';
export { envEntry, stateDir } from './run-args.js';
export { USAGE } from './usage.js';

export function parseCli(argv: string[], environment: CliEnvironment): CliCommand {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') return { kind: 'help', text: USAGE };
  if (command === '--version' || command === 'version') return { kind: 'version' };
  const dashDash = rest.indexOf('--');
  const flags = dashDash >= 0 ? rest.slice(0, dashDash) : rest;
  const trailing = dashDash >= 0 ? rest.slice(dashDash + 1) : [];
  switch (command) {
    case 'run':
      return parseRun(flags, trailing, environment);
    case 'prepare': {
      if (dashDash >= 0) throw new UserError('prepare', 'takes no command');
      const values = parse(flags, IMAGE_OPTIONS);
      if (values.help) return { kind: 'help', text: USAGE };
      const install = installOption(values, environment);
      const env = ((values.env as string[] | undefined) ?? []).map((e) => envEntry(e, environment.env));
      const caches = ((values.cache as string[] | undefined) ?? []).map((m, i) =>
        hostToCell(m, `--cache #${i + 1}`, environment.cwd),
      );
      if (!install && (env.length || caches.length))
        throw new UserError(
          env.length ? '--env' : '--cache',
          "prepare takes --env and --cache only with --install (they are the install step's)",
        );
      return { kind: 'prepare', ...common(values, environment), env, caches, ...(install ? { install } : {}) };
    }
    case 'session':
      return parseSession(rest, environment);
    case 'store':
      return parseStore(rest, environment);
    case 'demo': {
      const values = parse(flags, {
        'state-dir': { type: 'string' },
        privilege: { type: 'string' },
        verbose: { type: 'boolean', short: 'v' },
      });
      return {
        kind: 'demo',
        stateDir: stateDir(values['state-dir'] as string | undefined, environment),
        privilege: privilege(values.privilege as string | undefined),
        verbose: !!values.verbose,
      };
    }
    default:
      throw new UserError(
        'command',
        `unknown command ${show(command)}: accepted are run, prepare, demo, session, store`,
      );
  }
}
