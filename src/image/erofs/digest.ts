/**
 * The digest an EROFS entry's record holds: the sha256 of each 64 MiB chunk of the image file.
 * A whole-file sha256 is one sequential pass (about 1 s for a 540 MB toolchain image on a
 * runner, a fifth of a restored job); chunks hash on worker threads, one per core, in about
 * half that on two cores and a quarter on four. Every byte is still checked before the kernel
 * sees the file, and a chunk's sha256 is `sha256sum` of that slice (`dd bs=64M skip=N count=1`).
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

/** The chunk size of a record's digests. */
export const CHUNK_BYTES = 64 * 1024 * 1024;

/** At most this many threads: past four, the disk and memory bandwidth are the limit. */
const MAX_WORKERS = 4;

/** A worker: sha256 of its chunks of the file, read in 4 MiB blocks; posts [index, hex] pairs. */
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { closeSync, openSync, readSync } = require('node:fs');
const { createHash } = require('node:crypto');
const { path, chunks, chunkBytes } = workerData;
const fd = openSync(path, 'r');
const block = Buffer.allocUnsafe(Math.min(chunkBytes, 4 << 20));
const out = [];
try {
  for (const index of chunks) {
    const hash = createHash('sha256');
    for (let at = index * chunkBytes, end = at + chunkBytes; at < end; ) {
      const n = readSync(fd, block, 0, Math.min(block.length, end - at), at);
      if (n === 0) break;
      hash.update(block.subarray(0, n));
      at += n;
    }
    out.push([index, hash.digest('hex')]);
  }
} finally {
  closeSync(fd);
}
parentPort.postMessage(out);
`;

/** The sha256 (hex) of each `chunkBytes` chunk of the `bytes`-long file at `path`, in order. */
export async function chunkDigests(path: string, bytes: number, chunkBytes = CHUNK_BYTES): Promise<string[]> {
  const count = Math.max(1, Math.ceil(bytes / chunkBytes));
  const workers = Math.min(count, MAX_WORKERS, availableParallelism());
  // Interleaved: each worker takes every workers-th chunk, so all finish at about the same time.
  const shares = Array.from({ length: workers }, (_, w) =>
    Array.from({ length: count }, (_, i) => i).filter((i) => i % workers === w),
  );
  const results = await Promise.all(shares.map((chunks) => hashOnWorker(path, chunks, chunkBytes)));
  const digests = new Array<string>(count);
  for (const [index, hex] of results.flat()) digests[index] = hex;
  return digests;
}

function hashOnWorker(path: string, chunks: number[], chunkBytes: number): Promise<Array<[number, string]>> {
  return new Promise((resolve, reject) => {
    // execArgv []: the worker's script is CommonJS whatever flags started this process (--input-type=module).
    const worker = new Worker(WORKER, { eval: true, execArgv: [], workerData: { path, chunks, chunkBytes } });
    worker.once('message', (pairs: Array<[number, string]>) => resolve(pairs));
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (code !== 0) reject(new Error(`hashing ${path} stopped with exit code ${code}`));
    });
  });
}
