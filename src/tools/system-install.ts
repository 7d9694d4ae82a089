/**
 * The last resort for a tool build-cell cannot download (skopeo): the system package manager,
 * and what to tell the user when that is not possible either.
 */
import { commandLine, exec, tailLines } from '../util/exec.js';
import { fromPath, type Found, type LookupContext } from './lookup.js';

/** How to get skopeo onto this host when build-cell cannot. */
export const SKOPEO_HELP =
  'build-cell cannot download skopeo (it is linked against many system libraries): install it with the system package manager ' +
  '(Debian/Ubuntu: sudo apt-get install -y skopeo; Fedora/RHEL: sudo dnf install -y skopeo; Alpine: apk add skopeo) or put a skopeo binary on PATH';

/** Install `pkg` with apt-get (through `sudo -n` unless root); a string says why not. */
export async function installWithApt(
  pkg: string,
  ctx: LookupContext & { systemInstall: boolean },
): Promise<Found | string> {
  if (!ctx.systemInstall) return '';
  const aptGet = ctx.onPath('apt-get');
  if (!aptGet) return 'no apt-get to install it with';
  let runner = aptGet;
  let prefix: string[] = [];
  if (process.getuid?.() !== 0) {
    const sudo = ctx.onPath('sudo');
    if (!sudo) return 'not root, and no sudo to run apt-get with';
    const probe = await exec(sudo, ['-n', 'true'], 'checking for passwordless sudo', { allowFailure: true });
    if (probe.code !== 0) return '`sudo -n` needs a password, so apt-get cannot be run';
    runner = sudo;
    prefix = ['-n', aptGet];
  }
  const install = [...prefix, 'install', '-y', '--no-install-recommends', pkg];
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  ctx.log(
    `${pkg}: not on PATH or in the tool cache; installing it with the system package manager: ${commandLine(runner, install)}`,
  );
  let result = await exec(runner, install, `installing ${pkg}`, { allowFailure: true, env });
  if (result.code !== 0) {
    ctx.log(`${pkg}: apt-get install failed (${tailLines(result.stderr, 1)}); running apt-get update and trying again`);
    await exec(runner, [...prefix, 'update', '-q'], 'apt-get update', { allowFailure: true, env });
    result = await exec(runner, install, `installing ${pkg}`, { allowFailure: true, env });
  }
  if (result.code !== 0)
    return `\`${commandLine(runner, install)}\` exited with ${result.code}: ${tailLines(result.stderr || result.stdout, 3)}`;
  const found = await fromPath(pkg, ctx);
  return found ?? `\`${commandLine(runner, install)}\` succeeded, but ${pkg} is still not on PATH`;
}
