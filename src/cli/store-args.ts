/** `build-cell store list|prune|verify` flags -> the store command. Pure. */
import { UserError, show } from '../util/errors.js';
import { optionalDuration, optionalSize } from '../cellspec/text.js';
import type { CliCommand, CliEnvironment } from './command.js';
import { stateDir } from './run-args.js';
import { USAGE, parse } from './usage.js';

const COMMON = {
  'state-dir': { type: 'string' },
  json: { type: 'boolean' },
  verbose: { type: 'boolean', short: 'v' },
  help: { type: 'boolean', short: 'h' },
} as const;

const PRUNE = {
  ...COMMON,
  'older-than': { type: 'string' },
  'max-size': { type: 'string' },
  all: { type: 'boolean' },
  'dry-run': { type: 'boolean' },
} as const;

export function parseStore([action, ...flags]: string[], environment: CliEnvironment): CliCommand {
  if (action !== 'list' && action !== 'prune' && action !== 'verify')
    throw new UserError('store', `unknown store command ${show(action ?? '')}: accepted are list, prune, verify`);
  const v = parse(flags, action === 'prune' ? PRUNE : COMMON);
  if (v.help) return { kind: 'help', text: USAGE };
  const olderThanMs = optionalDuration(v['older-than'] as string | undefined, '--older-than');
  // 0 is allowed: every image not in use, as --all.
  const maxBytes = optionalSize(v['max-size'] as string | undefined, '--max-size', 0);
  if (v.all && (olderThanMs !== undefined || maxBytes !== undefined))
    throw new UserError('--all', 'removes every image not in use: it takes neither --older-than nor --max-size');
  return {
    kind: 'store',
    action,
    stateDir: stateDir(v['state-dir'] as string | undefined, environment),
    json: !!v.json,
    verbose: !!v.verbose,
    ...(olderThanMs !== undefined ? { olderThanMs } : {}),
    ...(maxBytes !== undefined ? { maxBytes } : {}),
    ...(v.all ? { all: true } : {}),
    ...(v['dry-run'] ? { dryRun: true } : {}),
    argv: ['store', action, ...flags],
  };
}
