/**
 * Finding skopeo, umoci and the qemu-*-static binaries a run needs, in this order:
 *
 *   1. a binary on PATH that runs (`NAME --version` exits 0; ./lookup.ts);
 *   2. the tool cache of @actions/tool-cache (RUNNER_TOOL_CACHE; for the CLI, by default
 *      $XDG_CACHE_HOME/build-cell/tools), under the tool's name and the pinned Debian version;
 *   3. for umoci and qemu: the pinned Debian package (./pinned.ts) downloaded from the tools
 *      source (the `tools-source` input, a Debian archive root), else from snapshot.debian.org;
 *      its sha256 is checked (./checksum.ts; a mismatch is a hard error, and nothing is
 *      cached), the needed files are extracted without root (./deb.ts), run once, and only
 *      then stored with tc.cacheFile (which writes the entry's `.complete` marker last).
 *      skopeo cannot be downloaded (it is dynamically linked against many libraries): the
 *      last resort is the system package manager (./system-install.ts: `apt-get install -y
 *      skopeo`, through `sudo -n` when not root), else an error that says how to install it.
 *
 * Every step says where each tool came from through `log`. tool-cache's environment outside
 * Actions: ./tool-cache-env.ts.
 */
import * as tc from '@actions/tool-cache';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { arch as osArch, tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import type { ArchInfo } from '../emulation/arch.js';
import { CellSetupError, UserError, errorMessage, show } from '../util/errors.js';
import { which } from '../util/which.js';
import { verifySha256 } from './checksum.js';
import { extractDebMembers } from './deb.js';
import { fromPath, fromToolCache, runs, type Found, type LookupContext } from './lookup.js';
import { SKOPEO_HELP, installWithApt } from './system-install.js';
import { withToolCacheEnv } from './tool-cache-env.js';
import {
  DEFAULT_TOOLS_SOURCE,
  SNAPSHOT_SOURCE,
  debianArch,
  pinFor,
  poolUrl,
  qemuMember,
  qemuPinFor,
  checkToolsSource,
  snapshotUrl,
  type QemuVersion,
  toolCacheVersion,
  type PinnedDeb,
  type PinnedPackage,
} from './pinned.js';

export { ChecksumMismatchError, verifySha256 } from './checksum.js';
export { sha256File } from '../util/fs.js';
export { defaultToolCacheDir } from './tool-cache-env.js';

export interface ResolveToolsRequest {
  /** Architectures whose qemu-*-static is needed (ArchInfo.qemu, e.g. 'qemu-aarch64-static'). */
  qemu?: readonly ArchInfo[];
  /** Root of a Debian archive (mirror) holding the pinned packages' pool paths; '' = default. */
  source: string;
  log?: (msg: string) => void;
  /**
   * Root laid out like snapshot.debian.org/archive/debian (`<root>/<timestamp>/<pool path>`),
   * tried when `source` fails to deliver a pinned package (e.g. after Debian dropped a
   * superseded version from its pool). Default SNAPSHOT_SOURCE; false: no fallback.
   */
  snapshotSource?: string | false;
  /** How to find a program on PATH (default: util/which). Tests hide tools with it. */
  onPath?: (name: string) => string | undefined;
  /** Which qemu build (see tools/pinned.ts QEMU_VERSIONS); undefined: PATH, the tool cache, then the 7.2 pin. */
  qemuVersion?: QemuVersion;
  /** Whether a missing skopeo may be installed with apt-get (default true). */
  systemInstall?: boolean;
}

export interface ResolvedTools {
  skopeo: string;
  umoci: string;
  /** ArchInfo.qemu (e.g. 'qemu-aarch64-static') -> absolute path of that binary. */
  qemu: Record<string, string>;
  /** Directories (tool-cache entries) holding resolved tools that were not found on PATH. */
  dirsToAddToPath: string[];
}

export interface PinnedTool {
  /** Program name, also the tool-cache name and the file name in its entry. */
  name: string;
  /** Its path in the package's data tarball, e.g. 'usr/bin/umoci'. */
  member: string;
}

interface Context extends LookupContext {
  source: string;
  snapshotSource: string | false;
  systemInstall: boolean;
}

export async function resolveTools(request: ResolveToolsRequest): Promise<ResolvedTools> {
  const ctx = context(request);
  return withToolCacheEnv(async () => {
    const dirs: string[] = [];
    const take = (found: Found): string => {
      if (found.dir && !dirs.includes(found.dir)) dirs.push(found.dir);
      return found.path;
    };
    const skopeo = take(await resolveSkopeo(ctx));
    const umoci = take(
      (await resolvePinned(pinFor('umoci'), 'umoci', [{ name: 'umoci', member: 'usr/bin/umoci' }], ctx)).umoci!,
    );
    const found = await qemuBinaries(request.qemu ?? [], request.qemuVersion, ctx);
    const qemu: Record<string, string> = {};
    for (const [name, where] of Object.entries(found)) qemu[name] = take(where);
    return { skopeo, umoci, qemu, dirsToAddToPath: dirs };
  });
}

/** mkfs.erofs (PATH, the tool cache, else Debian's erofs-utils): what writes the Actions cache's EROFS images. */
export async function resolveMkfsErofs(request: Omit<ResolveToolsRequest, 'systemInstall' | 'qemu'>): Promise<Found> {
  const ctx = context(request);
  return withToolCacheEnv(async () => {
    const found = await resolvePinned(pinFor('erofs-utils'), 'erofs-utils', [MKFS_EROFS], ctx);
    return found['mkfs.erofs']!;
  });
}

export const MKFS_EROFS: PinnedTool = { name: 'mkfs.erofs', member: 'usr/bin/mkfs.erofs' };

/**
 * The qemu-ARCH-static programs of `arches` alone (the CLI's --qemu; the action resolves
 * them with the other tools): name -> path, and the directories to put first on PATH.
 */
export async function resolveQemu(
  request: Omit<ResolveToolsRequest, 'systemInstall'> & { qemu: readonly ArchInfo[] },
): Promise<{ qemu: Record<string, string>; dirs: string[] }> {
  const ctx = context(request);
  return withToolCacheEnv(async () => {
    const found = await qemuBinaries(request.qemu, request.qemuVersion, ctx);
    const dirs = [...new Set(Object.values(found).flatMap((f) => (f.dir ? [f.dir] : [])))];
    return { qemu: Object.fromEntries(Object.entries(found).map(([name, f]) => [name, f.path])), dirs };
  });
}

/**
 * Without a version: PATH, the tool cache, then the default pin (7.2). With `path`: PATH only
 * (as it is, no checksum). With a pinned version: never PATH, that pin's tool-cache entry,
 * else its download.
 */
async function qemuBinaries(
  arches: readonly ArchInfo[],
  version: QemuVersion | undefined,
  ctx: Context,
): Promise<Record<string, Found>> {
  const names = [...new Set(arches.map((a) => a.qemu))];
  for (const name of names) {
    if (!/^qemu-[a-z0-9_]+-static$/.test(name))
      throw new UserError('qemu', `not a qemu-user-static program name: ${show(name)}`);
  }
  if (!names.length) return {};
  if (version === 'path') return qemuFromPath(names, ctx);
  const pin = qemuPinFor(version ?? '7.2');
  const pinnedCtx = version ? { ...ctx, onPath: () => undefined } : ctx;
  return resolvePinned(
    pin,
    'qemu-user-static',
    names.map((name) => ({ name, member: pin ? qemuMember(pin, name) : `usr/bin/${name}` })),
    pinnedCtx,
  );
}

async function qemuFromPath(names: string[], ctx: Context): Promise<Record<string, Found>> {
  const result: Record<string, Found> = {};
  for (const name of names) {
    const found = await fromPath(name, ctx);
    if (!found)
      throw new CellSetupError(
        `qemu: path: ${name} is not on PATH (or does not run): install qemu-user-static (Debian/Ubuntu: apt-get install qemu-user-static), or use qemu 7.2 or 10.0 (a pinned download)`,
      );
    result[name] = found;
  }
  return result;
}

function context(request: ResolveToolsRequest): Context {
  const source = checkToolsSource(request.source || DEFAULT_TOOLS_SOURCE, 'tools-source');
  const snapshotSource =
    request.snapshotSource === false ? false : (request.snapshotSource ?? SNAPSHOT_SOURCE).replace(/\/+$/, '');
  return {
    log: request.log ?? ((msg) => process.stderr.write(`build-cell: ${msg}\n`)),
    source,
    snapshotSource,
    onPath: request.onPath ?? ((name) => which(name)),
    systemInstall: request.systemInstall ?? true,
    toolArch: osArch(),
  };
}

/** PATH, then the tool cache, then the pinned Debian package, for tools that one package ships. */
async function resolvePinned(
  pin: PinnedDeb | undefined,
  pkg: PinnedPackage,
  tools: readonly PinnedTool[],
  ctx: Context,
): Promise<Record<string, Found>> {
  const result: Record<string, Found> = {};
  const missing: PinnedTool[] = [];
  for (const tool of tools) {
    const found =
      (await fromPath(tool.name, ctx)) ??
      (pin &&
        (await fromToolCache(tool.name, toolCacheVersion(pin.version), ctx, `Debian ${pin.package} ${pin.version}`)));
    if (found) result[tool.name] = found;
    else missing.push(tool);
  }
  if (!missing.length) return result;
  const names = missing.map((t) => t.name).join(', ');
  if (!pin) {
    throw new CellSetupError(
      `${names} not found on PATH or in the tool cache, and build-cell pins ${pkg} only for amd64 and arm64 hosts (this one is ${debianArch()}): install ${pkg} with the system package manager`,
    );
  }
  ctx.log(
    `${names}: not on PATH or in the tool cache (${process.env.RUNNER_TOOL_CACHE}); fetching Debian's ${pin.package} ${pin.version} (${pin.arch})`,
  );
  const cached = await provision(pin, missing, ctx);
  for (const tool of missing) result[tool.name] = { path: cached[tool.name]!, dir: dirname(cached[tool.name]!) };
  return result;
}

export interface ProvisionOptions {
  source: string;
  snapshotSource?: string | false;
  log?: (msg: string) => void;
}

/**
 * Download `pin` (tools source, then snapshot), check its sha256, extract `tools` from it,
 * check each runs, and store each in the tool cache; returns name -> cached binary.
 * Exported for tests, which pin packages of their own.
 */
export function provisionFromDeb(
  pin: PinnedDeb,
  tools: readonly PinnedTool[],
  options: ProvisionOptions,
): Promise<Record<string, string>> {
  return provision(
    pin,
    tools,
    context({ source: options.source, snapshotSource: options.snapshotSource, log: options.log }),
  );
}

async function provision(pin: PinnedDeb, tools: readonly PinnedTool[], ctx: Context): Promise<Record<string, string>> {
  return withToolCacheEnv(async () => {
    if (pin.needsGlibc) checkGlibc(pin, tools);
    const work = await mkdtemp(join(process.env.RUNNER_TEMP || tmpdir(), 'build-cell-tools-'));
    try {
      const deb = await downloadPinned(pin, work, ctx);
      const extracted = await extractDebMembers(
        deb,
        join(work, 'root'),
        tools.map((t) => t.member),
        { scratchDir: work },
      );
      const staged: Record<string, string> = {};
      for (const tool of tools) {
        const file = extracted[tool.member.replace(/^\.?\/+/, '')];
        if (!file) throw new CellSetupError(`${tool.member} was not extracted from ${deb}`);
        await chmod(file, 0o755);
        const check = await runs(file, tool.name);
        if (!check.ok) {
          const glibc = pin.needsGlibc ? ` (it needs glibc >= ${pin.needsGlibc})` : '';
          throw new CellSetupError(
            `${tool.name} from Debian's ${pin.package} ${pin.version} does not run on this host${glibc}: ${check.reason}; install ${tool.name} with the system package manager instead`,
          );
        }
        staged[tool.name] = file;
      }
      // Only now, with the checksum verified and every binary run once, does anything enter
      // the tool cache (tc.cacheFile writes the entry's .complete marker last).
      const result: Record<string, string> = {};
      const version = toolCacheVersion(pin.version);
      for (const tool of tools) {
        const dir = await tc.cacheFile(staged[tool.name]!, tool.name, tool.name, version, ctx.toolArch);
        result[tool.name] = join(dir, tool.name);
        ctx.log(
          `${tool.name}: cached ${result[tool.name]} (Debian ${pin.package} ${pin.version}, tool cache version ${version})`,
        );
      }
      return result;
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
}

async function downloadPinned(pin: PinnedDeb, work: string, ctx: Context): Promise<string> {
  const urls = [poolUrl(ctx.source, pin)];
  if (ctx.snapshotSource !== false) {
    const fallback = snapshotUrl(pin, ctx.snapshotSource);
    if (!urls.includes(fallback)) urls.push(fallback);
  }
  const failures: string[] = [];
  for (const [index, url] of urls.entries()) {
    const dest = join(work, `${index}-${basename(pin.pool)}`);
    ctx.log(`${pin.package}: downloading ${url} (${(pin.size / 1e6).toFixed(1)} MB)`);
    try {
      await tc.downloadTool(url, dest);
    } catch (error) {
      await rm(dest, { force: true });
      failures.push(`${url}: ${errorMessage(error)}`);
      if (index + 1 < urls.length)
        ctx.log(`${pin.package}: download from ${url} failed (${errorMessage(error)}); trying ${urls[index + 1]}`);
      continue;
    }
    // A mismatch is a hard error: no other source is tried, nothing is cached.
    await verifySha256(dest, pin.sha256, { url, expectedSize: pin.size });
    ctx.log(`${pin.package}: sha256 ${pin.sha256} verified`);
    return dest;
  }
  throw new CellSetupError(
    `cannot download Debian's ${pin.package} ${pin.version} (${pin.arch}): ${failures.join('; ')}. ` +
      `Set tools-source to a Debian archive mirror that has ${pin.pool}, or put the tools on PATH.`,
  );
}

/** The host's glibc version (undefined when not glibc, e.g. musl). */
export function hostGlibc(): string | undefined {
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  return report?.header?.glibcVersionRuntime;
}

function versionBelow(have: string, need: string): boolean {
  const a = have.split('.').map(Number);
  const b = need.split('.').map(Number);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (x !== y) return x < y;
  }
  return false;
}

function checkGlibc(pin: PinnedDeb, tools: readonly PinnedTool[]): void {
  const have = hostGlibc();
  if (have && pin.needsGlibc && versionBelow(have, pin.needsGlibc)) {
    const names = tools.map((t) => t.name).join(', ');
    throw new CellSetupError(
      `${names}: Debian's ${pin.package} ${pin.version} needs glibc >= ${pin.needsGlibc}, this host has ${have}: install ${names} with the system package manager or put it on PATH`,
    );
  }
}

async function resolveSkopeo(ctx: Context): Promise<Found> {
  const found = (await fromPath('skopeo', ctx)) ?? (await fromToolCache('skopeo', '*', ctx, 'newest version there'));
  if (found) return found;
  const outcome = await installWithApt('skopeo', ctx);
  if (typeof outcome !== 'string') return outcome;
  throw new CellSetupError(
    `skopeo was not found on PATH or in the tool cache${outcome ? ` (${outcome})` : ''}. ${SKOPEO_HELP}`,
  );
}
