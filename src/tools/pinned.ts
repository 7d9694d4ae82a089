/**
 * The Debian packages that build-cell downloads when umoci or a qemu-*-static is neither on
 * PATH nor in the tool cache: one exact .deb per package and Debian architecture, identified
 * by its pool path and checked against its sha256 before anything in it is used.
 *
 * Why Debian's archive: it is reachable without credentials from GitHub-hosted runners, it is
 * mirrored widely (self-hosted runners set the `tools-source` input to an internal mirror), and
 * snapshot.debian.org keeps every file it ever published, so a pin never becomes unreachable.
 *
 * How this table was computed (bookworm, on a Debian 12 machine with `dpkg --add-architecture
 * arm64` and `apt-get update`):
 *
 *   apt-get download qemu-user-static:amd64 qemu-user-static:arm64 umoci:amd64 umoci:arm64
 *   sha256sum *.deb; stat -c %s *.deb
 *   apt-cache show qemu-user-static:amd64 ...   # Version, Filename (= pool), Size, SHA256 agree
 *
 * What runs where (checked on the extracted binaries with `file`, `readelf -d` and
 * `objdump -T | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1`):
 * - qemu-user-static: every usr/bin/qemu-*-static is a static-pie executable: no dynamic
 *   dependencies, no glibc requirement; runs on any Linux kernel >= 3.2 (amd64) / 3.7 (arm64).
 * - umoci 0.4.7+ds-3+b7: dynamically linked (Go with cgo), NEEDED only libc.so.6; highest
 *   symbol version GLIBC_2.34 on both amd64 and arm64 (Depends: libc6 (>= 2.34)). Ubuntu
 *   22.04 has glibc 2.35 and 24.04 has 2.39, so it runs on both GitHub runner images. (Were a
 *   future pin to need more than 2.35, pin an older build instead, e.g. Ubuntu jammy's umoci
 *   from archive.ubuntu.com / ports.ubuntu.com, whose requirement is by construction <= 2.35.)
 * - skopeo is not pinned: it links against many libraries (gpgme, libassuan, libdevmapper,
 *   ...). It comes from PATH (preinstalled on GitHub's Ubuntu images) or the system package
 *   manager (see resolve.ts).
 *
 * How to update: run the commands above (after `apt-get update`), replace version, pool,
 * sha256 and size of each entry with what `apt-cache show PKG:ARCH` prints (Version,
 * Filename, SHA256, Size), check the GLIBC requirement of the new umoci as above and update
 * `needsGlibc`, and set `snapshot` to a snapshot.debian.org timestamp (YYYYMMDDTHHMMSSZ) taken
 * after the new files reached the bookworm suite (e.g. the day after the `Date:` in
 * /var/lib/apt/lists/*_bookworm_InRelease). Then run test/integration/tools.test.ts, which
 * downloads the pinned versions with apt-get and checks them against this table.
 *
 * Why qemu 7.2 (bookworm) and not 10.0 (trixie's qemu-user, also static): chosen by measurement,
 * bench rows 12 (README, "Emulation"). Both pass the conformance suite on all eight guest
 * architectures at vm.mmap_rnd_bits 28 and 32 (GitHub's runners). With qemu's default arm64
 * CPU (`max`) 10.0 is faster on trixie guests, whose packages use pointer authentication, and
 * slower on bookworm; with build-cell's default CPU model (neoverse-n1, emulation/cpu.ts: no
 * PAC, no SVE) 7.2 is as fast or faster on both, and its CPU loop is faster on every target.
 * Re-run `npm run bench -- --only 12` when a new candidate appears; trixie's package names its
 * binaries qemu-ARCH (set `qemuSuffix: ''` on such a pin).
 *
 * Why snapshot: deb.debian.org drops a superseded version from its pool after a point
 * release, so an old build-cell release would lose its default source. The resolver then
 * falls back to `${SNAPSHOT_SOURCE}/${snapshot}/${pool}`, which serves the same bytes forever.
 */
import { UserError, show } from '../util/errors.js';

/** Debian architecture names of the two GitHub-hosted runner kinds. */
export type DebianArch = 'amd64' | 'arm64';
export type PinnedPackage = 'qemu-user-static' | 'umoci' | 'erofs-utils';

export interface PinnedDeb {
  /** Debian's package name (trixie ships its static qemu as qemu-user). */
  package: PinnedPackage | 'qemu-user';
  /** Debian version, with epoch (as `apt-cache show` prints it). */
  version: string;
  arch: DebianArch;
  /** Path below an archive root, the `Filename:` of the Packages index. */
  pool: string;
  sha256: string;
  size: number;
  /** A snapshot.debian.org timestamp at which `pool` is in the archive. */
  snapshot: string;
  /** Highest GLIBC_x.y symbol version the binaries need, for dynamically linked ones. */
  needsGlibc?: string;
  /**
   * What the package calls its qemu binaries after `qemu-ARCH`: '-static' in bookworm's
   * qemu-user-static, '' in trixie's qemu-user (static too; qemu-user-static is only a
   * transitional package there). build-cell's own name stays qemu-ARCH-static.
   */
  qemuSuffix?: string;
}

export const DEFAULT_TOOLS_SOURCE = 'https://deb.debian.org/debian';
/** Root of snapshot.debian.org's Debian archive; a pin's URL there is `${this}/${snapshot}/${pool}`. */
export const SNAPSHOT_SOURCE = 'https://snapshot.debian.org/archive/debian';

const QEMU_VERSION = '1:7.2+dfsg-7+deb12u18+b3';
const UMOCI_VERSION = '0.4.7+ds-3+b7';
/** mkfs.erofs for the Actions cache's EROFS images; bookworm's 1.5 needs only glibc 2.33, liblz4, libuuid, libselinux. */
const EROFS_VERSION = '1.5-1';
/** Bookworm's InRelease of 2026-07-11T10:16:37Z lists both; a capture a day later has them. */
const SNAPSHOT = '20260712T000000Z';

export const PINNED: Readonly<Record<PinnedPackage, Readonly<Record<DebianArch, PinnedDeb>>>> = {
  'qemu-user-static': {
    amd64: {
      package: 'qemu-user-static',
      version: QEMU_VERSION,
      arch: 'amd64',
      pool: 'pool/main/q/qemu/qemu-user-static_7.2+dfsg-7+deb12u18+b3_amd64.deb',
      sha256: 'c3e3ba2bd87f8c5b9a5da5ef21b5a3b82d7c63b89dd448d9ddaa4eabc5b6e402',
      size: 62603724,
      snapshot: SNAPSHOT,
    },
    arm64: {
      package: 'qemu-user-static',
      version: QEMU_VERSION,
      arch: 'arm64',
      pool: 'pool/main/q/qemu/qemu-user-static_7.2+dfsg-7+deb12u18+b3_arm64.deb',
      sha256: 'e420c417c12b42ca774795b62888d5388da0e08c1ef263dea1490e5ce4e32a0b',
      size: 56490396,
      snapshot: SNAPSHOT,
    },
  },
  'erofs-utils': {
    amd64: {
      package: 'erofs-utils',
      version: EROFS_VERSION,
      arch: 'amd64',
      pool: 'pool/main/e/erofs-utils/erofs-utils_1.5-1_amd64.deb',
      sha256: '902aa0a3791f4dc86f223359141b0b39991e432b95687873502587329b8e843d',
      size: 63664,
      snapshot: SNAPSHOT,
      needsGlibc: '2.33',
    },
    arm64: {
      package: 'erofs-utils',
      version: EROFS_VERSION,
      arch: 'arm64',
      pool: 'pool/main/e/erofs-utils/erofs-utils_1.5-1_arm64.deb',
      sha256: 'e60b4d4c582a0f18b919adba9d955a789ffb96506a389414e69f795b1f73f6d6',
      size: 62124,
      snapshot: SNAPSHOT,
      needsGlibc: '2.33',
    },
  },
  umoci: {
    amd64: {
      package: 'umoci',
      version: UMOCI_VERSION,
      arch: 'amd64',
      pool: 'pool/main/u/umoci/umoci_0.4.7+ds-3+b7_amd64.deb',
      sha256: '8adce0c435368b8514425bfa31647ff1629241c97331ba4cd3da838a61a58e5a',
      size: 1933500,
      snapshot: SNAPSHOT,
      needsGlibc: '2.34',
    },
    arm64: {
      package: 'umoci',
      version: UMOCI_VERSION,
      arch: 'arm64',
      pool: 'pool/main/u/umoci/umoci_0.4.7+ds-3+b7_arm64.deb',
      sha256: '6b4e260be03775f3e05e8361a54ddc0da63e643df9baeb53d0132b5513c9c789',
      size: 1650636,
      snapshot: SNAPSHOT,
      needsGlibc: '2.34',
    },
  },
};

/**
 * The qemu builds a run can ask for (`--qemu` / the `qemu` input), each sha256-pinned with a
 * tool-cache entry of its own: 7.2 is bookworm's qemu-user-static (PINNED above, the default
 * pin), 10.0 trixie's qemu-user, whose binaries are static too and named qemu-ARCH. `path`
 * takes the qemu-ARCH-static programs on PATH as they are (never verified by build-cell).
 * 10.0 computed as the header says, from trixie's Packages index (dists/trixie/main/binary-ARCH,
 * InRelease of 2026-11-21T09:15:44Z).
 */
export const QEMU_VERSIONS = ['7.2', '10.0', 'path'] as const;
export type QemuVersion = (typeof QEMU_VERSIONS)[number];

const QEMU_10_VERSION = '1:10.0.13+ds-0+deb13u1';
const QEMU_10_SNAPSHOT = '20261122T000000Z';

export const QEMU_PINS: Readonly<Record<Exclude<QemuVersion, 'path'>, Readonly<Record<DebianArch, PinnedDeb>>>> = {
  '7.2': PINNED['qemu-user-static'],
  '10.0': {
    amd64: {
      package: 'qemu-user',
      version: QEMU_10_VERSION,
      arch: 'amd64',
      pool: 'pool/main/q/qemu/qemu-user_10.0.13+ds-0+deb13u1_amd64.deb',
      sha256: 'ca6ede739327a20ae5a3498230c8a3a9a072c586e131bc6bcc1201eb1725e336',
      size: 71089852,
      snapshot: QEMU_10_SNAPSHOT,
      qemuSuffix: '',
    },
    arm64: {
      package: 'qemu-user',
      version: QEMU_10_VERSION,
      arch: 'arm64',
      pool: 'pool/main/q/qemu/qemu-user_10.0.13+ds-0+deb13u1_arm64.deb',
      sha256: 'c73711af02b97cd5e2667e735d9c06890c57165517110ca4e646c95a7083158d',
      size: 64178608,
      snapshot: QEMU_10_SNAPSHOT,
      qemuSuffix: '',
    },
  },
};

/**
 * The tools source (the `tools-source` input, --tools-source): an http(s) URL of a Debian
 * archive root, without trailing slashes. One check for the action, the CLI and the resolver.
 */
export function checkToolsSource(value: string, field: string): string {
  const source = value.trim().replace(/\/+$/, '');
  if (!/^https?:\/\/[^\s/][^\s]*$/.test(source))
    throw new UserError(field, `must be an http(s) URL of a Debian archive root (a mirror), got ${show(value)}`);
  return source;
}

/** The `qemu` input / --qemu flag: 7.2, 10.0 or path; undefined when not given. */
export function parseQemuVersion(value: string | undefined, field: string): QemuVersion | undefined {
  const version = value?.trim();
  if (!version) return undefined;
  if (!(QEMU_VERSIONS as readonly string[]).includes(version))
    throw new UserError(
      field,
      `must be 7.2 (bookworm's qemu-user-static, the default pin), 10.0 (trixie's static qemu-user) or path (the qemu-ARCH-static programs on PATH, unverified), got ${show(value)}`,
    );
  return version as QemuVersion;
}

/** Node's `process.arch` -> Debian architecture (all Debian ports Node runs on). */
const NODE_TO_DEBIAN: Readonly<Record<string, string>> = {
  x64: 'amd64',
  arm64: 'arm64',
  arm: 'armhf',
  ia32: 'i386',
  ppc64: 'ppc64el',
  s390x: 's390x',
  riscv64: 'riscv64',
  mips64el: 'mips64el',
  loong64: 'loong64',
};

/** The Debian architecture of a Node architecture (default: this process's). */
export function debianArch(nodeArch: string = process.arch): string {
  const arch = NODE_TO_DEBIAN[nodeArch];
  if (!arch) throw new UserError('host', `no Debian architecture is known for Node's arch ${show(nodeArch)}`);
  return arch;
}

export function isPinnedArch(arch: string): arch is DebianArch {
  return arch === 'amd64' || arch === 'arm64';
}

/** The pin of `pkg` for this host, or undefined when the host is not amd64/arm64. */
export function pinFor(pkg: PinnedPackage, nodeArch: string = process.arch): PinnedDeb | undefined {
  const arch = NODE_TO_DEBIAN[nodeArch];
  return arch && isPinnedArch(arch) ? PINNED[pkg][arch] : undefined;
}

/** A qemu choice as the summary and the result file name it: "10.0 (Debian qemu-user 1:10.0.13+ds-0+deb13u1)". */
export function describeQemuChoice(version: QemuVersion): string {
  if (version === 'path') return 'path (the qemu-ARCH-static on PATH, unverified)';
  const pin = qemuPinFor(version);
  return pin ? `${version} (Debian ${pin.package} ${pin.version})` : version;
}

/** The pin of a qemu build for this host, or undefined when the host is not amd64/arm64. */
export function qemuPinFor(
  version: Exclude<QemuVersion, 'path'>,
  nodeArch: string = process.arch,
): PinnedDeb | undefined {
  const arch = NODE_TO_DEBIAN[nodeArch];
  return arch && isPinnedArch(arch) ? QEMU_PINS[version][arch] : undefined;
}

/**
 * The version under which a pin's binaries are stored in the tool cache. @actions/tool-cache's
 * find() only accepts semver (anything else is silently never found), so a Debian version
 * becomes `<upstream as x.y.z>-deb-<whole Debian version, other characters as '-'>`:
 * `1:7.2+dfsg-7+deb12u18+b3` -> `7.2.0-deb-1-7-2-dfsg-7-deb12u18-b3`. The prerelease part is
 * one non-numeric identifier, hence always valid semver, and distinct pins stay distinct.
 */
export function toolCacheVersion(debVersion: string): string {
  const withoutEpoch = debVersion.replace(/^\d+:/, '');
  const upstream = withoutEpoch.includes('-') ? withoutEpoch.slice(0, withoutEpoch.lastIndexOf('-')) : withoutEpoch;
  const numbers = /^(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(upstream);
  const [major, minor, patch] = [numbers?.[1], numbers?.[2], numbers?.[3]].map((n) => String(Number(n ?? 0)));
  const tag = debVersion.replace(/[^0-9A-Za-z]+/g, '-').replace(/^-+|-+$/g, '');
  return `${major}.${minor}.${patch}-deb-${tag}`;
}

/** The path in `pin`'s data of the binary build-cell calls `tool` (e.g. qemu-aarch64-static). */
export function qemuMember(pin: PinnedDeb, tool: string): string {
  return `usr/bin/${tool.replace(/-static$/, pin.qemuSuffix ?? '-static')}`;
}

/** Where `pin` lives below `source` (an archive root such as DEFAULT_TOOLS_SOURCE). */
export function poolUrl(source: string, pin: PinnedDeb): string {
  return `${source.replace(/\/+$/, '')}/${pin.pool}`;
}

/** Where `pin` lives on snapshot.debian.org (or a server laid out like it at `snapshotSource`). */
export function snapshotUrl(pin: PinnedDeb, snapshotSource: string = SNAPSHOT_SOURCE): string {
  return `${snapshotSource.replace(/\/+$/, '')}/${pin.snapshot}/${pin.pool}`;
}
