/** What the CLI says about the install step (run, prepare, session start): where its image came from, and its warnings. */
import type { InstallResult } from '../install/port.js';

export function reportInstall(install: InstallResult, log: (m: string) => void): void {
  for (const warning of install.warnings ?? []) process.stderr.write(`build-cell: warning: ${warning}\n`);
  const pushed = install.registry?.pushed ? `; pushed to ${install.registry.reference}` : '';
  if (install.ran)
    process.stderr.write(
      `build-cell: install step ran in ${install.seconds!.toFixed(1)} s; derived image ${install.digest}${pushed}\n`,
    );
  else if (install.source === 'registry')
    process.stderr.write(
      `build-cell: install step pulled from ${install.registry!.reference} (not run): derived image ${install.digest}\n`,
    );
  else
    log(
      `install step reused from the ${install.source === 'cache' ? 'cache dir' : 'store'}: derived image ${install.digest}`,
    );
  for (const note of install.registry?.notes ?? []) log(`install registry: ${note}`);
}
