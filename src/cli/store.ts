/**
 * `build-cell store list|prune|verify`: the store's upkeep (src/store/), printed as a table or
 * as JSON. A store root owns (the engine ran through sudo) is looked after through `sudo -n`;
 * a rootless user's own store without it.
 */
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { Store } from '../image/store.js';
import { probeUserns } from '../privilege/userns.js';
import { readInventory } from '../store/inventory.js';
import { pruneStore, type PruneReport } from '../store/prune.js';
import { verifyStore, type VerifyReport } from '../store/verify.js';
import { CellSetupError } from '../util/errors.js';
import type { StoreCommand } from './command.js';
import { formatBytes, imageName, inventoryJson, inventoryTable } from './store-format.js';

export async function runStoreCommand(command: StoreCommand, log: (m: string) => void): Promise<number> {
  if (needsSudo(command.stateDir)) return throughSudo(command, log);
  const store = new Store(command.stateDir);
  const ids = process.getuid?.() !== 0 ? probeUserns().ids : undefined;
  switch (command.action) {
    case 'list':
      return print(command, await readInventory(store, { whole: true }), inventoryTable, inventoryJson);
    case 'prune': {
      const { olderThanMs, maxBytes, all, dryRun } = command;
      return print(command, await pruneStore(store, { olderThanMs, maxBytes, all, dryRun, ids }), pruneText);
    }
    case 'verify': {
      const report = await verifyStore(store, { ids });
      print(command, report, verifyText);
      // The store is whole unless a broken image is still in use (kept until it is free).
      return report.broken.some((b) => !b.removed) ? 1 : 0;
    }
  }
}

function print<T>(command: StoreCommand, report: T, text: (r: T) => string, json?: (r: T) => unknown): number {
  process.stdout.write(command.json ? `${JSON.stringify(json ? json(report) : report, null, 2)}\n` : text(report));
  return 0;
}

/** Root's store (made by cells through sudo), and this user is not root. */
function needsSudo(stateDir: string): boolean {
  if (process.getuid?.() === 0) return false;
  try {
    return statSync(`${stateDir}/images`).uid === 0;
  } catch {
    return false;
  }
}

function throughSudo(command: StoreCommand, log: (m: string) => void): number {
  const argv = [process.argv[1]!, ...command.argv, '--state-dir', command.stateDir];
  log(`the store ${command.stateDir} is root's: through sudo -n`);
  const result = spawnSync('sudo', ['-n', process.execPath, ...argv], { stdio: 'inherit' });
  if (result.error || result.status === null)
    throw new CellSetupError(
      `the store ${command.stateDir} is root's, and sudo -n could not run build-cell: ${result.error?.message ?? `signal ${result.signal}`}`,
    );
  return result.status;
}

function pruneText(report: PruneReport): string {
  const verb = report.dryRun ? 'would remove' : 'removed';
  const lines = report.removed.map(
    (i) =>
      `${verb} ${imageName(i)} ${i.arch} ${i.digest.slice(0, 19)} (${formatBytes(i.bytes)}, last used ${i.lastUsed})`,
  );
  for (const kept of report.kept) lines.push(`kept ${kept.entry}: ${kept.why}`);
  for (const cell of report.cells)
    lines.push(`${verb} the scratch of a dead cell ${cell.dir} (${formatBytes(cell.bytes)})`);
  for (const temp of report.temporaries)
    lines.push(`${verb} the stale temporary ${temp.path} (${formatBytes(temp.bytes)})`);
  lines.push(
    `${report.dryRun ? 'would free' : 'freed'} ${formatBytes(report.freed)}; images: ${formatBytes(report.before)} -> ${formatBytes(report.after)}`,
  );
  return `${lines.join('\n')}\n`;
}

function verifyText(report: VerifyReport): string {
  const lines = report.broken.map((b) => {
    const name = imageName(b);
    const fate = b.removed ? 'removed (the next run prepares it afresh)' : `kept: ${b.kept}`;
    return `broken: ${name} ${b.arch} ${b.digest}: ${b.problems.join('; ')}; ${fate}`;
  });
  lines.push(
    `checked ${report.checked} image(s): ${report.broken.length ? `${report.broken.length} broken` : 'all whole'}`,
  );
  return `${lines.join('\n')}\n`;
}
