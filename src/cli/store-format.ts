/** What `build-cell store list` prints: a table, or JSON. Pure. */
import type { StoreImage, StoreInventory } from '../store/inventory.js';
import { describeHolder } from '../store/remove.js';

/** 1.2 GB, 345 MB, 12 kB (powers of 1000, as du -h --si and docker say them). */
export function formatBytes(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${unit === 0 || value >= 100 ? Math.round(value) : value.toFixed(1)} ${units[unit]}`;
}

/** How an image is named: its references, its install keys (and base), or none. */
export function imageName(image: Pick<StoreImage, 'references' | 'installKeys'> & { base?: string }): string {
  const names = [
    ...image.references,
    ...image.installKeys.map(
      (key) => `install ${key.slice(0, 12)}${image.base ? ` on ${image.base.slice(0, 19)}` : ''}`,
    ),
  ];
  return names.join(', ') || '(no reference)';
}

export function inventoryJson(inventory: StoreInventory) {
  return {
    stateDir: inventory.stateDir,
    images: inventory.images.map((image) => ({
      arch: image.arch,
      digest: image.digest,
      references: image.references,
      installKeys: image.installKeys,
      derived: !!image.base || image.installKeys.length > 0,
      ...(image.base ? { base: image.base } : {}),
      parts: image.parts,
      size: image.bytes,
      unique: image.unique,
      lastUsed: new Date(image.lastUsed).toISOString(),
      inUse: image.holders.length > 0,
      holders: image.holders.map((holder) =>
        holder.kind === 'cell' ? { kind: 'cell', pid: holder.pid } : { kind: 'session', dir: holder.dir },
      ),
      entry: image.entry,
    })),
    total: inventory.bytes,
    ...(inventory.stateDirBytes !== undefined ? { stateDirBytes: inventory.stateDirBytes } : {}),
    free: inventory.filesystem.free,
    filesystemSize: inventory.filesystem.size,
  };
}

export function inventoryTable(inventory: StoreInventory): string {
  const rows = [['IMAGE', 'ARCH', 'DIGEST', 'SIZE', 'UNIQUE', 'LAST USED', 'IN USE']];
  for (const image of inventory.images) {
    rows.push([
      imageName(image),
      image.arch,
      image.digest.slice(0, 19),
      formatBytes(image.bytes),
      formatBytes(image.unique),
      new Date(image.lastUsed).toISOString().slice(0, 16).replace('T', ' '),
      image.holders.map(describeHolder).join(', ') || '-',
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const lines = rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  '));
  const { filesystem } = inventory;
  const whole =
    inventory.stateDirBytes !== undefined ? ` (the state dir: ${formatBytes(inventory.stateDirBytes)})` : '';
  lines.push(
    `total ${formatBytes(inventory.bytes)} in ${inventory.images.length} image(s), hard links counted once${whole}; ${formatBytes(filesystem.free)} free of ${formatBytes(filesystem.size)} on the filesystem of ${inventory.stateDir}`,
  );
  return `${lines.join('\n')}\n`;
}
