/**
 * The demo's default image, built from the host's own statically linked busybox
 * (Debian/Ubuntu: busybox-static) with umoci: no registry and no network needed.
 */
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, rm, symlink, writeFile, copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CellSetupError } from '../util/errors.js';
import { exec } from '../util/exec.js';
import { tool, which } from '../util/which.js';

export const DEMO_TAG = 'busybox';

/** True for a statically linked ELF (no PT_INTERP program header). */
export function isStaticElf(bytes: Buffer): boolean {
  if (bytes.length < 64 || bytes.readUInt32BE(0) !== 0x7f454c46) return false;
  const is64 = bytes[4] === 2;
  const little = bytes[5] === 1;
  const u16 = (o: number) => (little ? bytes.readUInt16LE(o) : bytes.readUInt16BE(o));
  const u32 = (o: number) => (little ? bytes.readUInt32LE(o) : bytes.readUInt32BE(o));
  const phoff = is64 ? Number(little ? bytes.readBigUInt64LE(32) : bytes.readBigUInt64BE(32)) : u32(28);
  const phentsize = u16(is64 ? 54 : 42);
  const phnum = u16(is64 ? 56 : 44);
  for (let i = 0; i < phnum; i++) {
    const off = phoff + i * phentsize;
    if (off + 4 > bytes.length) break;
    if (u32(off) === 3) return false; // PT_INTERP
  }
  return true;
}

function findStaticBusybox(): string {
  for (const candidate of ['/bin/busybox', '/usr/bin/busybox', which('busybox')]) {
    if (candidate && existsSync(candidate) && isStaticElf(readFileSync(candidate))) return candidate;
  }
  throw new CellSetupError(
    'the demo image needs a statically linked busybox on the host: install busybox-static (Debian/Ubuntu: apt-get install busybox-static)',
  );
}

/** Build (once) an OCI layout at DIR holding the busybox image; returns the `oci:` reference. */
export async function ensureDemoImage(dir: string): Promise<string> {
  const layout = join(dir, 'layout');
  const ref = `oci:${layout}:${DEMO_TAG}`;
  if (
    existsSync(join(layout, 'index.json')) &&
    readFileSync(join(layout, 'index.json'), 'utf8').includes(`"${DEMO_TAG}"`)
  )
    return ref;
  const umoci = tool('umoci');
  const busybox = findStaticBusybox();
  const applets = (await exec(busybox, ['--list'], 'list the busybox applets')).stdout
    .split('\n')
    .filter((a) => /^[\w.[-]+$/.test(a) && a !== 'busybox');
  await rm(dir, { recursive: true, force: true });
  const rootfs = join(dir, 'rootfs');
  for (const d of ['bin', 'etc', 'root', 'tmp', 'proc', 'dev', 'sys', 'usr/bin', 'var', 'workspace'])
    await mkdir(join(rootfs, d), { recursive: true });
  await chmod(join(rootfs, 'tmp'), 0o1777);
  await copyFile(busybox, join(rootfs, 'bin/busybox'));
  await chmod(join(rootfs, 'bin/busybox'), 0o755);
  for (const applet of applets) await symlink('busybox', join(rootfs, 'bin', applet)).catch(() => undefined);
  await writeFile(
    join(rootfs, 'etc/passwd'),
    'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n',
  );
  await writeFile(join(rootfs, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
  await writeFile(
    join(rootfs, 'etc/os-release'),
    'NAME="build-cell demo"\nID=build-cell-demo\nPRETTY_NAME="build-cell demo (busybox from the host)"\n',
  );
  await exec(umoci, ['init', '--layout', layout], 'create the demo layout');
  await exec(umoci, ['new', '--image', `${layout}:${DEMO_TAG}`], 'create the demo image');
  await exec(umoci, ['insert', '--image', `${layout}:${DEMO_TAG}`, rootfs, '/'], 'add busybox to the demo image');
  await exec(
    umoci,
    [
      'config',
      '--image',
      `${layout}:${DEMO_TAG}`,
      '--config.env',
      'PATH=/bin:/usr/bin',
      '--config.cmd',
      '/bin/sh',
      '--config.workingdir',
      '/workspace',
    ],
    'configure the demo image',
  );
  await rm(rootfs, { recursive: true, force: true });
  return ref;
}
