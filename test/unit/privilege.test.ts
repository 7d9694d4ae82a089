import { describe, expect, it } from 'vitest';
import { diagnoseUserns, PRIVILEGES } from '../../src/privilege.js';

describe('diagnoseUserns: each probe failure says why, with the fix', () => {
  const failed = { ok: false, stderr: 'unshare: write failed /proc/self/uid_map: Operation not permitted\n' };
  it('passes when unshare worked, whatever the sysctls say', () => {
    expect(diagnoseUserns({ apparmorRestrict: '1' }, { ok: true })).toEqual({ ok: true });
  });
  it('names the AppArmor restriction of Ubuntu 24.04 and the sysctl that lifts it', () => {
    const result = diagnoseUserns({ apparmorRestrict: '1', maxUserNamespaces: '15000' }, failed);
    expect(result.ok).toBe(false);
    expect(result.why).toMatch(/kernel\.apparmor_restrict_unprivileged_userns=1/);
    expect(result.why).toMatch(/sudo sysctl -w kernel\.apparmor_restrict_unprivileged_userns=0/);
  });
  it('names kernel.unprivileged_userns_clone=0', () => {
    expect(diagnoseUserns({ apparmorRestrict: '0', unprivilegedClone: '0' }, failed).why).toMatch(/sudo sysctl -w kernel\.unprivileged_userns_clone=1/);
  });
  it('names user.max_user_namespaces=0', () => {
    expect(diagnoseUserns({ maxUserNamespaces: '0' }, failed).why).toMatch(/user\.max_user_namespaces=0.*sudo sysctl -w user\.max_user_namespaces=15000/);
  });
  it('quotes unshare when no sysctl explains it', () => {
    expect(diagnoseUserns({ maxUserNamespaces: '100' }, failed).why).toMatch(/unshare --user --map-root-user failed: unshare: write failed \/proc\/self\/uid_map/);
  });
  it('says when unshare is missing', () => {
    expect(diagnoseUserns({}, { ok: false, missing: true }).why).toMatch(/unshare \(util-linux\) is not installed/);
  });
  it('offers the four privilege settings', () => {
    expect(PRIVILEGES).toEqual(['auto', 'root', 'sudo', 'rootless']);
  });
});
