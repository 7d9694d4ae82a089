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
import { randomHex } from '../util/random.js';

/** A message as the runner reads a command's data back (what @actions/core's escapeData does). */
export function escapeData(text: string): string {
  return text.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

/** A warning annotation, for the processes that run without @actions/core (a session step). */
export function warningCommand(message: string): string {
  return `::warning::${escapeData(message)}\n`;
}

/**
 * process.stdout is synchronous for pipes and files on Linux: a marker is in the log before the
 * cell (a child writing to the same descriptor) starts, in order with @actions/core's lines.
 */
const toStdout = (text: string) => {
  process.stdout.write(text);
};

/**
 * Run `cell` with the runner's command processing stopped; resumed when it settles, whatever
 * way. `write` is for tests.
 */
export async function withCommandsStopped<T>(
  cell: () => Promise<T>,
  write: (text: string) => void = toStdout,
): Promise<T> {
  // Letters and digits: the runner matches the token as a command name, without case.
  const token = `build-cell-${randomHex(16)}`;
  write(`::stop-commands::${token}\n`);
  try {
    return await cell();
  } finally {
    write(`::${token}::\n`);
  }
}
