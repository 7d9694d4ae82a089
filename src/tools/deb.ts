/**
 * Reading Debian packages without root and without dpkg: a .deb is an `ar` archive
 * ("!<arch>\n", then per member a 60-byte header and the member's bytes, padded to an even
 * length) holding debian-binary, control.tar.* and data.tar.*. The ar container is parsed
 * here; the data tarball is copied out and the wanted files are extracted from it with the
 * system `tar` (GNU tar on Ubuntu and Debian; it runs xz / zstd / gzip for the decompression).
 * When tar cannot decompress it (e.g. no `zstd` program) and `dpkg-deb` exists, `dpkg-deb -x`
 * (which decompresses in-process) is the fallback. Neither needs root: files are written as
 * the caller, never chowned.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, open, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { CellSetupError, errorMessage, show } from '../util/errors.js';
import { ExecError, exec } from '../util/exec.js';
import { which } from '../util/which.js';

export const AR_MAGIC = '!<arch>\n';
const HEADER_SIZE = 60;

export interface ArMember {
  name: string;
  /** Byte offset of the member's data in the archive. */
  offset: number;
  size: number;
  mode: number;
}

/** The members of the ar archive `file` (names without GNU's trailing '/'). */
export async function readArMembers(file: string): Promise<ArMember[]> {
  const handle = await open(file, 'r').catch((error: unknown) => {
    throw new CellSetupError(`cannot open Debian package ${file}: ${errorMessage(error)}`);
  });
  try {
    const total = (await handle.stat()).size;
    const magic = Buffer.alloc(AR_MAGIC.length);
    const { bytesRead } = await handle.read(magic, 0, magic.length, 0);
    if (bytesRead < magic.length || magic.toString('latin1') !== AR_MAGIC) {
      throw new CellSetupError(
        `${file} is not a Debian package: it does not start with the ar magic ${show(AR_MAGIC)}`,
      );
    }
    const members: ArMember[] = [];
    let position = AR_MAGIC.length;
    const header = Buffer.alloc(HEADER_SIZE);
    while (position < total) {
      // A lone padding byte at the very end is tolerated (some writers add it).
      if (total - position === 1) break;
      const read = await handle.read(header, 0, HEADER_SIZE, position);
      if (read.bytesRead < HEADER_SIZE) throw new CellSetupError(`${file}: truncated ar header at byte ${position}`);
      const text = header.toString('latin1');
      if (text.slice(58, 60) !== '`\n')
        throw new CellSetupError(`${file}: corrupt ar header at byte ${position} (bad terminator)`);
      const rawName = text.slice(0, 16).trimEnd();
      const sizeText = text.slice(48, 58).trim();
      if (!/^\d+$/.test(sizeText))
        throw new CellSetupError(`${file}: corrupt ar header at byte ${position} (size ${show(sizeText)})`);
      const size = Number(sizeText);
      const offset = position + HEADER_SIZE;
      if (offset + size > total)
        throw new CellSetupError(
          `${file}: truncated: member ${show(rawName)} needs ${size} bytes at ${offset}, the file has ${total}`,
        );
      const mode = parseInt(text.slice(40, 48).trim() || '0', 8);
      const name = rawName === '/' || rawName === '//' ? rawName : rawName.replace(/\/$/, '');
      members.push({ name, offset, size, mode: Number.isNaN(mode) ? 0 : mode });
      position = offset + size + (size % 2);
    }
    return members;
  } finally {
    await handle.close();
  }
}

const DATA_TAR = /^data\.tar(\.(xz|zst|gz|bz2|lzma))?$/;

/** The data.tar* member of a .deb. */
export async function findDataMember(deb: string): Promise<ArMember> {
  const members = await readArMembers(deb);
  if (members[0]?.name !== 'debian-binary') {
    throw new CellSetupError(
      `${deb} is not a Debian package: its first ar member is ${show(members[0]?.name ?? '(none)')}, not debian-binary`,
    );
  }
  const data = members.find((m) => DATA_TAR.test(m.name));
  if (!data)
    throw new CellSetupError(`${deb} has no data.tar member (members: ${members.map((m) => m.name).join(', ')})`);
  return data;
}

/** Copy one ar member's bytes to `dest`. */
export async function copyArMember(archive: string, member: ArMember, dest: string): Promise<void> {
  const source =
    member.size === 0 ? [] : createReadStream(archive, { start: member.offset, end: member.offset + member.size - 1 });
  await pipeline(source, createWriteStream(dest));
}

function tarCompressionFlags(memberName: string): { flags: string[]; program?: string } {
  const suffix = /\.(\w+)$/.exec(memberName)?.[1];
  switch (suffix) {
    case 'xz':
      return { flags: ['-J'], program: 'xz' };
    case 'zst':
      return { flags: ['--zstd'], program: 'zstd' };
    case 'gz':
      return { flags: ['-z'], program: 'gzip' };
    case 'bz2':
      return { flags: ['-j'], program: 'bzip2' };
    case 'lzma':
      return { flags: ['--lzma'], program: 'xz' };
    default:
      return { flags: [] };
  }
}

/** A member path as given ("usr/bin/x", "./usr/bin/x" or "/usr/bin/x") in canonical "usr/bin/x" form. */
function canonicalMember(path: string): string {
  const clean = posix.normalize(path.replace(/^(\.\/|\/)+/, ''));
  if (!clean || clean === '.' || clean.startsWith('../') || clean === '..')
    throw new CellSetupError(`invalid package member path ${show(path)}`);
  return clean;
}

export interface ExtractOptions {
  /** Where to put the data tarball while tar reads it (default: the system temp dir). */
  scratchDir?: string;
  /** Program lookup (tests). */
  which?: (name: string) => string | undefined;
}

/**
 * Extract the files `members` (paths inside the package, e.g. "usr/bin/umoci") of the .deb
 * `deb` into `destDir`, keeping their relative paths; returns member -> extracted path.
 * A member missing from the package is an error naming it. Runs without root.
 */
export async function extractDebMembers(
  deb: string,
  destDir: string,
  members: readonly string[],
  options: ExtractOptions = {},
): Promise<Record<string, string>> {
  const wanted = [...new Set(members.map(canonicalMember))];
  const result: Record<string, string> = {};
  if (!wanted.length) return result;
  const lookup = options.which ?? which;
  const data = await findDataMember(deb);
  await mkdir(destDir, { recursive: true });
  const scratch = await mkdtemp(join(options.scratchDir ?? tmpdir(), 'build-cell-deb-'));
  try {
    const { flags, program } = tarCompressionFlags(data.name);
    const tar = lookup('tar');
    const dpkgDeb = lookup('dpkg-deb');
    if (tar && (!program || lookup(program))) {
      const tarball = join(scratch, data.name);
      await copyArMember(deb, data, tarball);
      await tarExtract(tar, flags, tarball, destDir, wanted, deb);
    } else if (dpkgDeb) {
      const all = join(scratch, 'root');
      await exec(dpkgDeb, ['-x', deb, all], `extracting ${deb}`);
      for (const member of wanted) {
        const from = join(all, member);
        const isFile = await stat(from).then(
          (s) => s.isFile(),
          () => false,
        );
        if (!isFile) throw new CellSetupError(`${deb} has no file ${member}`);
        await mkdir(dirname(join(destDir, member)), { recursive: true });
        await copyFile(from, join(destDir, member));
        await chmod(join(destDir, member), (await stat(from)).mode & 0o7777);
      }
    } else {
      throw new CellSetupError(
        `cannot extract ${deb}: it needs \`tar\`${program ? ` and \`${program}\`` : ''} (or \`dpkg-deb\`) on PATH`,
      );
    }
    for (const member of wanted) {
      const path = join(destDir, member);
      const info = await stat(path).catch(() => undefined);
      if (!info?.isFile()) throw new CellSetupError(`${deb}: ${member} was not extracted to ${path}`);
      result[member] = path;
    }
    return result;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

async function tarExtract(
  tar: string,
  flags: string[],
  tarball: string,
  destDir: string,
  wanted: string[],
  deb: string,
): Promise<void> {
  // dpkg-deb writes member names as "./usr/...": ask for those; when none of them is found
  // (an archive written without the "./" by another tool), ask for the bare names.
  const base = ['-x', ...flags, '-f', tarball, '-C', destDir, '--no-same-owner', '--'];
  const what = `extracting ${wanted.join(', ')} from ${deb}`;
  const notFound = (error: unknown): string[] | undefined =>
    error instanceof ExecError
      ? [...error.result.stderr.matchAll(/tar: (.+?): Not found in archive/g)].map((m) => canonicalMember(m[1]!))
      : undefined;
  try {
    await exec(tar, [...base, ...wanted.map((m) => `./${m}`)], what);
    return;
  } catch (error) {
    const missing = notFound(error);
    if (!missing?.length) throw error;
    if (missing.length < wanted.length) throw new CellSetupError(`${deb} has no file ${missing.join(', ')}`);
  }
  try {
    await exec(tar, [...base, ...wanted], what);
  } catch (error) {
    const missing = notFound(error);
    if (missing?.length) throw new CellSetupError(`${deb} has no file ${missing.join(', ')}`);
    throw error;
  }
}
