/**
 * A local tools source: a node:http server on 127.0.0.1 that plays a Debian mirror (and the
 * snapshot archive) serving the real pinned .debs, fetched once with apt-get download into
 * test/.cache/debs. Per pool path it can serve a file intact, corrupted or not at all.
 */
import { execFileSync } from 'node:child_process';
import { createReadStream, createWriteStream, existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rename, rm } from 'node:fs/promises';
import { createServer, get as httpGet, type Server } from 'node:http';
import { pipeline } from 'node:stream/promises';
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

/** Debian's archive over plain http (HTTPS from Node may meet an intercepting proxy here); the sha256 is checked. */
const ARCHIVE = 'http://deb.debian.org/debian';

/** `url` to `dest` with node:http (following redirects). */
function httpDownload(url: string, dest: string, redirects = 5): Promise<void> {
  return new Promise((resolve, reject) => {
    httpGet(url, (res) => {
      const location = res.headers.location;
      if (res.statusCode && res.statusCode >= 300 && res.statusCode < 400 && location && redirects > 0) {
        res.resume();
        httpDownload(new URL(location, url).toString(), dest, redirects - 1).then(resolve, reject);
        return;
      }
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`GET ${url}: HTTP ${res.statusCode}`));
        return;
      }
      pipeline(res, createWriteStream(dest)).then(resolve, reject);
    }).on('error', reject);
  });
}

/**
 * The pinned .deb (cached), verified against the pin: apt-get download where the machine's
 * apt sources have it (bookworm's pins), else the pool path from Debian's archive (trixie's).
 */
export async function ensureDeb(pin: PinnedDeb): Promise<string> {
  const file = debFile(pin);
  if (existsSync(file) && (await sha256File(file)) === pin.sha256) return file;
  await mkdir(DEBS, { recursive: true });
  const work = await mkdtemp(join(DEBS, '.download-'));
  try {
    if (pin.package === 'qemu-user') {
      const part = join(work, 'download.deb');
      await httpDownload(`${ARCHIVE}/${pin.pool}`, part);
      const actual = await sha256File(part);
      if (actual !== pin.sha256) throw new Error(`${ARCHIVE}/${pin.pool} has sha256 ${actual}, pinned ${pin.sha256}`);
      await rename(part, file);
      return file;
    }
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
