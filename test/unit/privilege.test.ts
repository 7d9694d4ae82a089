import { describe, expect, it } from 'vitest';
import { choosePrivilege, PRIVILEGES } from '../../src/privilege/mode.js';
import {
  diagnoseUserns,
  parseSubIds,
  rootlessUnshareArgs,
  type ProbeResult,
  type UsernsProbe,
} from '../../src/privilege/userns.js';

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
    expect(diagnoseUserns({ apparmorRestrict: '0', unprivilegedClone: '0' }, failed).why).toMatch(
      /sudo sysctl -w kernel\.unprivileged_userns_clone=1/,
    );
  });
  it('names user.max_user_namespaces=0', () => {
    expect(diagnoseUserns({ maxUserNamespaces: '0' }, failed).why).toMatch(
      /user\.max_user_namespaces=0.*sudo sysctl -w user\.max_user_namespaces=15000/,
    );
  });
  it('quotes unshare when no sysctl explains it', () => {
    expect(diagnoseUserns({ maxUserNamespaces: '100' }, failed).why).toMatch(
      /unshare --user --map-root-user failed: unshare: write failed \/proc\/self\/uid_map/,
    );
  });
  it('says when unshare is missing', () => {
    expect(diagnoseUserns({}, { ok: false, missing: true }).why).toMatch(/unshare \(util-linux\) is not installed/);
  });
  it('offers the four privilege settings', () => {
    expect(PRIVILEGES).toEqual(['auto', 'root', 'sudo', 'rootless']);
  });
});

describe('subordinate ids', () => {
  const text = 'alice:100000:65536\n# comment\n1001:200000:1000\nbob:300000:0\nbob:400000:10\n';
  it('finds a range by user name or by uid, skipping empty ranges', () => {
    expect(parseSubIds(text, { name: 'alice', uid: 1000 })).toEqual({ start: 100000, count: 65536 });
    expect(parseSubIds(text, { name: 'carol', uid: 1001 })).toEqual({ start: 200000, count: 1000 });
    expect(parseSubIds(text, { name: 'bob', uid: 7 })).toEqual({ start: 400000, count: 10 });
    expect(parseSubIds(text, { name: 'dave', uid: 9 })).toBeUndefined();
    expect(parseSubIds('', { uid: 0 })).toBeUndefined();
    expect(parseSubIds('eve:x:y\n', { name: 'eve', uid: 1 })).toBeUndefined();
  });
  it('maps the user to root and the ranges to 1..N', () => {
    expect(rootlessUnshareArgs(undefined)).toEqual(['--user', '--map-root-user']);
    expect(
      rootlessUnshareArgs({ uids: { start: 100000, count: 65536 }, gids: { start: 200000, count: 500 }, note: '' }),
    ).toEqual(['--user', '--map-root-user', '--map-users=100000,1,65536', '--map-groups=200000,1,500']);
  });
});

describe('choosePrivilege: auto never picks a mode that cannot run what users run', () => {
  const full = {
    ok: true,
    ids: {
      uids: { start: 100000, count: 65536 },
      gids: { start: 100000, count: 65536 },
      note: 'uids 1-65536 and gids 1-65536 are mapped',
    },
  };
  const rootOnly = { ok: true, ids: { note: 'only root is mapped, so chown to any other user or group fails' } };
  const noUserns = { ok: false, why: 'AppArmor restricts unprivileged user namespaces' };
  const sudoOk = { ok: true };
  const noSudo = { ok: false, why: 'sudo -n refused: a password is required' };
  const probes = (userns: UsernsProbe, sudo: ProbeResult) => {
    const calls: string[] = [];
    return { calls, probes: { userns: () => (calls.push('userns'), userns), sudo: () => (calls.push('sudo'), sudo) } };
  };
  const auto = (userns: UsernsProbe, sudo: ProbeResult, needs = {}, uid = 1000) =>
    choosePrivilege('auto', uid, 'privilege', needs, probes(userns, sudo).probes);

  it('is root as root, probing nothing', () => {
    const p = probes(full, sudoOk);
    expect(choosePrivilege('auto', 0, 'privilege', {}, p.probes)).toEqual({
      mode: 'root',
      reason: 'auto: running as root',
    });
    expect(p.calls).toEqual([]);
  });
  it('is rootless when the subordinate ids are mapped, without asking sudo', () => {
    const p = probes(full, sudoOk);
    const choice = choosePrivilege('auto', 1000, 'privilege', {}, p.probes);
    expect(choice.mode).toBe('rootless');
    expect(choice.reason).toMatch(
      /^auto: not root; user namespaces work with the subordinate ids mapped; uids 1-65536/,
    );
    expect(p.calls).not.toContain('sudo');
  });
  it('is sudo when rootless would map root alone (chown fails) and sudo -n works', () => {
    const choice = auto(rootOnly, sudoOk);
    expect(choice.mode).toBe('sudo');
    expect(choice.reason).toMatch(/rootless would be incomplete \(only root is mapped.*\); sudo -n works/);
  });
  it('is sudo for a foreign architecture on a kernel without private binfmt_misc', () => {
    expect(auto(full, sudoOk, { emulated: true, privateBinfmt: false }).mode).toBe('sudo');
    expect(auto(full, sudoOk, { emulated: true, privateBinfmt: true }).mode).toBe('rootless');
    expect(auto(full, sudoOk, { emulated: false, privateBinfmt: false }).mode).toBe('rootless');
  });
  it('is sudo when user namespaces are refused', () => {
    expect(auto(noUserns, sudoOk).reason).toMatch(/rootless would be incomplete \(AppArmor restricts/);
  });
  it('falls back to rootless with root alone mapped when there is no sudo, and says so', () => {
    const choice = auto(rootOnly, noSudo);
    expect(choice.mode).toBe('rootless');
    expect(choice.ids).toEqual(rootOnly.ids);
    expect(choice.reason).toMatch(/sudo -n refused.*only root is mapped/);
  });
  it('fails with both reasons when nothing can run the cell', () => {
    expect(() => auto(noUserns, noSudo)).toThrow(/rootless: AppArmor restricts.*sudo: sudo -n refused/);
    expect(() => auto(full, noSudo, { emulated: true, privateBinfmt: false })).toThrow(
      /binfmt_misc instance of the cell's own/,
    );
  });
  it('honours an explicit mode, with a clear error when it cannot work', () => {
    expect(choosePrivilege('rootless', 1000, 'privilege', {}, probes(rootOnly, sudoOk).probes).mode).toBe('rootless');
    expect(choosePrivilege('sudo', 1000, 'privilege', {}, probes(full, sudoOk).probes).mode).toBe('sudo');
    expect(() => choosePrivilege('sudo', 1000, 'privilege', {}, probes(full, noSudo).probes)).toThrow(
      /^privilege sudo: sudo -n refused/,
    );
    expect(() => choosePrivilege('rootless', 1000, 'privilege', {}, probes(noUserns, sudoOk).probes)).toThrow(
      /^privilege rootless: AppArmor/,
    );
    expect(() => choosePrivilege('root', 1000, 'privilege', {}, probes(full, sudoOk).probes)).toThrow(
      /not running as root/,
    );
    // A foreign arch rootless on a kernel without a per-namespace binfmt_misc: said up front.
    expect(() =>
      choosePrivilege(
        'rootless',
        1000,
        'privilege',
        { emulated: true, privateBinfmt: false },
        probes(full, sudoOk).probes,
      ),
    ).toThrow(
      /^privilege rootless: a foreign architecture without root needs a binfmt_misc instance .*run as root or through sudo/,
    );
    expect(
      choosePrivilege(
        'rootless',
        1000,
        'privilege',
        { emulated: true, privateBinfmt: true },
        probes(full, sudoOk).probes,
      ).mode,
    ).toBe('rootless');
  });
});
