/**
 * ustar archives built byte by byte, so that tests can write any entry a hostile archive may
 * hold: absolute or `..` names, links anywhere, device nodes, setuid modes.
 */
export interface TarEntry {
  type: 'file' | 'dir' | 'symlink' | 'hardlink' | 'chardev' | 'fifo';
  name: string;
  /** Link target (symlink, hardlink). */
  link?: string;
  /** Permission bits, setuid and setgid included (default 0644, 0755 for dirs). */
  mode?: number;
  /** File content (default: "content of NAME\n"). */
  body?: Buffer | string;
  /** Device numbers of a chardev. */
  device?: [number, number];
}

const TYPE_FLAG: Record<TarEntry['type'], string> = {
  file: '0',
  hardlink: '1',
  symlink: '2',
  chardev: '3',
  dir: '5',
  fifo: '6',
};

export function tarArchive(entries: TarEntry[]): Buffer {
  const blocks: Buffer[] = [];
  const octal = (n: number, width: number) => `${n.toString(8).padStart(width - 1, '0')}\0`;
  for (const e of entries) {
    const header = Buffer.alloc(512);
    const body = e.type === 'file' ? Buffer.from(e.body ?? `content of ${e.name}\n`) : Buffer.alloc(0);
    header.write(e.name.slice(0, 99), 0, 'utf8');
    header.write(octal(e.mode ?? (e.type === 'dir' ? 0o755 : 0o644), 8), 100);
    header.write(octal(0, 8), 108);
    header.write(octal(0, 8), 116);
    header.write(octal(body.length, 12), 124);
    header.write(octal(0, 12), 136);
    header.write(TYPE_FLAG[e.type], 156);
    header.write((e.link ?? '').slice(0, 99), 157);
    header.write('ustar\u000000', 257, 'binary');
    if (e.device) {
      header.write(octal(e.device[0], 8), 329);
      header.write(octal(e.device[1], 8), 337);
    }
    header.fill(' ', 148, 156);
    let sum = 0;
    for (const byte of header) sum += byte;
    header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
    blocks.push(header, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}
