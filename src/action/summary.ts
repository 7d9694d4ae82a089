/**
 * The job summary: image, digest, arch, emulation, time per phase, exit code, exports.
 * Built only from values that are never secret (no env values, no credentials).
 */
import * as core from '@actions/core';

export const PHASES = [
  'tools',
  'cache restore',
  'pull',
  'unpack',
  'install',
  'stage',
  'run',
  'export',
  'write-back',
  'upload',
  'cache save',
] as const;
export type ActionPhase = (typeof PHASES)[number];

export interface SummaryData {
  image: string;
  digest?: string;
  arch: string;
  emulated: boolean;
  /** How the cell was emulated: qemu and the CPU model, with where the model came from. */
  emulation?: string;
  /** Native or qemu, and why: "386: emulated (this kernel cannot run 32-bit x86 natively)". */
  decision?: string;
  /** The qemu build the `qemu` input chose. */
  qemu?: string;
  imageCacheHit: boolean;
  /** How a restored image became the cell's root: an EROFS image mounted or extracted, and why. */
  imageRestore?: string;
  /** What the store's size cap did after the run (store-max-size). */
  storeCap?: string;
  /** The install step: ran (and its time), or reused from where. */
  install?: string;
  /** Where a fresh tool cache's pinned tools came from: the Actions cache, or the tools source. */
  tools?: string;
  /** Write-back: files written and deleted. */
  writeBack?: string;
  /** The privilege mode, and why it was chosen. */
  privilege?: string;
  exitCode?: number;
  signal?: number;
  error?: string;
  timings: Partial<Record<ActionPhase, number>>;
  exports: Array<{ source: string; destination: string; bytes: number }>;
  artifact?: { name: string; id?: number };
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

export function formatMs(ms: number | undefined): string {
  if (ms === undefined) return '–';
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** Rows of the summary, pure (tested without the runner). */
export function summaryRows(data: SummaryData): string[][] {
  const outcome = data.error
    ? `error: ${data.error}`
    : data.signal
      ? `${data.exitCode} (killed by signal ${data.signal})`
      : String(data.exitCode);
  return [
    ['image', data.image],
    ['digest', data.digest ?? '–'],
    ['arch', `${data.arch}${data.emulated ? ' (emulated with qemu)' : ''}`],
    ...(data.decision ? [['native or qemu', data.decision]] : []),
    ...(data.emulation ? [['emulation', data.emulation]] : []),
    ...(data.qemu ? [['qemu build', data.qemu]] : []),
    ['image cache', data.imageCacheHit ? 'hit' : 'miss'],
    ...(data.imageRestore ? [['image restore', data.imageRestore]] : []),
    ...(data.storeCap ? [['store cap', data.storeCap]] : []),
    ...(data.tools ? [['tools', data.tools]] : []),
    ['privilege', data.privilege ?? '–'],
    ...(data.install ? [['install step', data.install]] : []),
    ...(data.writeBack ? [['write-back', data.writeBack]] : []),
    ...PHASES.map((phase) => [`time: ${phase}`, formatMs(data.timings[phase])]),
    ['exit code', outcome],
  ];
}

export async function writeSummary(data: SummaryData): Promise<void> {
  const summary = core.summary.addHeading('build-cell', 3).addTable([
    [
      { data: 'item', header: true },
      { data: 'value', header: true },
    ],
    ...summaryRows(data),
  ]);
  if (data.exports.length) {
    summary.addTable([
      [
        { data: 'export', header: true },
        { data: 'to', header: true },
        { data: 'size', header: true },
      ],
      ...data.exports.map((e) => [e.source, e.destination, formatBytes(e.bytes)]),
    ]);
  }
  if (data.artifact)
    summary.addRaw(
      `Artifact: ${data.artifact.name}${data.artifact.id !== undefined ? ` (id ${data.artifact.id})` : ''}\n`,
    );
  await summary.write();
}
