/**
 * Host facts that cost a process to probe (a user namespace, executing a 32-bit program),
 * remembered across runs in the state dir as STATE/probe-NAME.json, so that a warm cell
 * spawns no probe. Each file holds a fingerprint of everything its answer depends on, and
 * is trusted only when it is a regular file of this user's own that nobody else can write.
 * Without a state dir (or when it cannot be written) every process probes once.
 */
import { existsSync, lstatSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

let factDir: string | undefined;

/** Remember facts in `stateDir` from now on in this process (only when it exists: nothing is created for it). */
export function rememberFactsIn(stateDir: string | undefined): void {
  factDir = stateDir && existsSync(stateDir) ? stateDir : undefined;
}

function factFile(name: string): string | undefined {
  return factDir && join(factDir, `probe-${name}.json`);
}

function readFact<T>(file: string, fingerprint: string): T | undefined {
  try {
    const info = lstatSync(file);
    if (!info.isFile() || info.uid !== process.getuid?.() || info.mode & 0o022) return undefined;
    const cached = JSON.parse(readFileSync(file, 'utf8')) as { fingerprint: string; value: T };
    return cached.fingerprint === fingerprint ? cached.value : undefined;
  } catch {
    return undefined;
  }
}

function writeFact<T>(file: string, fingerprint: string, value: T): void {
  try {
    const temp = `${file}.${process.pid}.tmp`;
    writeFileSync(temp, JSON.stringify({ fingerprint, value }), { mode: 0o600 });
    renameSync(temp, file);
  } catch {
    // best effort: the next run probes again
  }
}

/**
 * The fact `name`: from its file when the fingerprint (computed only when there is a file to
 * compare with) still matches, else probed and, when `keep` says so, written for next time.
 */
export function cachedFact<T>(
  name: string,
  fingerprint: () => string,
  probe: () => T,
  keep: (value: T) => boolean = () => true,
): T {
  const file = factFile(name);
  const print = file ? fingerprint() : '';
  const known = file ? readFact<T>(file, print) : undefined;
  if (known !== undefined) return known;
  const value = probe();
  if (file && keep(value)) writeFact(file, print, value);
  return value;
}

/** This boot's id: facts the kernel fixes at boot (its command line, its CPU) hold until it changes. */
export function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return `pid-${process.pid}`;
  }
}
