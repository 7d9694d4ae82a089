/**
 * Error types shared by the engine, the CLI and the action.
 *
 * A `UserError` is a problem with what the user asked for (a flag, an input, a spec field);
 * it always names the field and says what is accepted. Anything else that build-cell itself
 * fails at is a `CellSetupError`. Both map to exit code 125 in the CLI, so that the cell
 * command's own exit codes (0-124, 128+N) stay unambiguous.
 */

export const EXIT_BUILD_CELL_ERROR = 125;

export class BuildCellError extends Error {
  override name = 'BuildCellError';
}

/** Bad input: names the offending field, the value, and what is accepted. */
export class UserError extends BuildCellError {
  override name = 'UserError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

/** A failure while preparing, running or finalizing a cell (not the command's own failure). */
export class CellSetupError extends BuildCellError {
  override name = 'CellSetupError';
}

/** Quote a value for an error message: visible whitespace, bounded length. */
export function show(value: unknown): string {
  const text = typeof value === 'string' ? value : String(value);
  const clipped = text.length > 200 ? `${text.slice(0, 200)}…(${text.length} chars)` : text;
  return JSON.stringify(clipped);
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
