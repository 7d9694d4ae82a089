/**
 * A local tools source: a node:http server on 127.0.0.1 that plays a Debian mirror (and the
 * snapshot archive) serving the real pinned .debs, fetched once with apt-get download into
 * test/.cache/debs. Per pool path it can serve a file intact, corrupted or not at all.
 */
import { execFileSync } from 'node:child_process';
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rename, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PinnedDeb } from '../../src/tools/pinned.js';
import { sha256File } from '../../src/tools/resolve.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const DEBS = join(REPO_ROOT, 'test', '.cache', 'debs');

/** apt-get download's file name for a pin. */
export const debFile = (pin: PinnedDeb) =>
  join(DEBS, `${pin.package}_${pin.version.replace(/:/g, '%3a')}_${pin.arch}.deb`);

/** The pinned .deb from Debian's archive via apt-get (cached), verified against the pin. */
export async function ensureDeb(pin: PinnedDeb): Promise<string> {
  const file = debFile(pin);
  if (existsSync(file) && (await sha256File(file)) === pin.sha256) return file;
  await mkdir(DEBS, { recursive: true });
  const work = await mkdtemp(join(DEBS, '.download-'));
  try {
    try {
      execFileSync('apt-get', ['download', '-q', `${pin.package}:${pin.arch}=${pin.version}`], {
        cwd: work,
        stdio: 'pipe',
      });
    } catch (error) {
      const stderr = (error as { stderr?: Buffer }).stderr?.toString() ?? String(error);
      throw new Error(
        `apt-get download ${pin.package}:${pin.arch}=${pin.version} failed (${stderr.trim()}): run apt-get update (with \`dpkg --add-architecture ${pin.arch}\` if foreign); ` +
          'if Debian no longer has this version, update src/tools/pinned.ts as its header describes',
        { cause: error },
      );
    }
    const [name] = (await readdir(work)).filter((f) => f.endsWith('.deb'));
    if (!name) throw new Error(`apt-get download ${pin.package}:${pin.arch}=${pin.version} wrote no .deb`);
    const actual = await sha256File(join(work, name));
    if (actual !== pin.sha256)
      throw new Error(`Debian's ${name} has sha256 ${actual}, but src/tools/pinned.ts pins ${pin.sha256}`);
    await rename(join(work, name), file);
    return file;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

export type Mode = 'ok' | 'corrupt' | 'missing';

export interface Source {
  url: string;
  requests: string[];
  /** Per pool path: how the primary source serves it (the snapshot route always serves 'ok'). */
  modes: Map<string, Mode>;
  close(): Promise<void>;
}

/** Offset of the byte flipped in a 'corrupt' response. */
export const FLIP_AT = 4096;

export async function startSource(files: Map<string, string>): Promise<Source> {
  const requests: string[] = [];
  const modes = new Map<string, Mode>();
  const server: Server = createServer((req, res) => {
    const path = req.url ?? '/';
    requests.push(path);
    const primary = /^\/debian\/(pool\/.*)$/.exec(path);
    const snapshot = /^\/snapshot\/\d{8}T\d{6}Z\/(pool\/.*)$/.exec(path);
    const pool = decodeURIComponent((primary ?? snapshot)?.[1] ?? '');
    const file = files.get(pool);
    const mode: Mode = primary ? (modes.get(pool) ?? 'ok') : 'ok';
    if (!file || mode === 'missing') {
      res.writeHead(404).end();
      return;
    }
    if (mode === 'corrupt') {
      const bytes = readFileSync(file);
      bytes[FLIP_AT] = bytes[FLIP_AT]! ^ 0x01;
      res.writeHead(200, { 'content-length': bytes.length }).end(bytes);
      return;
    }
    res.writeHead(200, { 'content-length': statSync(file).size });
    createReadStream(file).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    modes,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
