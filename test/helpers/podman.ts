/**
 * podman confined to a temporary directory, to check that an image build-cell pushed runs as
 * users run it: its own containers.conf, storage.conf and registries.conf (through the
 * environment), the vfs storage driver (no mounts left on the host), file locks and events
 * under the directory, and no network in the container.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { removeDir, tempDir } from './cli.js';

export interface Podman {
  /** podman ARGS, with this instance's roots; resolves with its stdout, rejects with its stderr. */
  run(args: string[]): Promise<string>;
  remove(): Promise<void>;
}

export function podman(): Podman {
  const dir = tempDir('bc-podman-');
  for (const d of ['tmp', 'copy', 'net']) mkdirSync(join(dir, d));
  const files = {
    'containers.conf': [
      '[containers]',
      // Hard RLIMIT_NOFILE may be below podman's default (1048576): the runtime cannot set it.
      'default_ulimits=[]',
      '[engine]',
      `tmp_dir=${JSON.stringify(join(dir, 'tmp'))}`,
      'events_logger="file"',
      `events_logfile_path=${JSON.stringify(join(dir, 'events.log'))}`,
      'lock_type="file"',
      `image_copy_tmp_dir=${JSON.stringify(join(dir, 'copy'))}`,
      '[network]',
      `network_config_dir=${JSON.stringify(join(dir, 'net'))}`,
    ],
    'storage.conf': [
      '[storage]',
      'driver = "vfs"',
      `runroot = ${JSON.stringify(join(dir, 'rr'))}`,
      `graphroot = ${JSON.stringify(join(dir, 'root'))}`,
    ],
    'registries.conf': ['unqualified-search-registries = []'],
  };
  for (const [name, lines] of Object.entries(files)) writeFileSync(join(dir, name), `${lines.join('\n')}\n`);
  const env = {
    ...process.env,
    CONTAINERS_CONF: join(dir, 'containers.conf'),
    CONTAINERS_STORAGE_CONF: join(dir, 'storage.conf'),
    CONTAINERS_REGISTRIES_CONF: join(dir, 'registries.conf'),
  };
  const roots = ['--root', join(dir, 'root'), '--runroot', join(dir, 'rr'), '--tmpdir', join(dir, 'tmp')];
  return {
    run: async (args) => {
      const { stdout } = await promisify(execFile)('podman', [...roots, '--cgroup-manager', 'cgroupfs', ...args], {
        env,
        timeout: 300_000,
        maxBuffer: 16 << 20,
      });
      return stdout;
    },
    remove: async () => {
      // vfs layers are plain directories: removed with the rest.
      await removeDir(dir);
    },
  };
}
