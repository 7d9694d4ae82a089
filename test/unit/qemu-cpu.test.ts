import { describe, expect, it } from 'vitest';
import { hostArch, resolveArch } from '../../src/emulation/arch.js';
import { emulationFor } from '../../src/emulation/setup.js';
import { which } from '../../src/util/which.js';
import {
  DEFAULT_QEMU_CPU,
  chooseQemuCpu,
  describeQemuCpu,
  parseCpuHelp,
  parseQemuCpu,
} from '../../src/emulation/cpu.js';
import { parseCli } from '../../src/cli/args.js';
import { parseInputs, type InputReader } from '../../src/action/inputs.js';
import { expectUserError } from './spec-fixture.js';

describe('parseQemuCpu (the option syntax, before any qemu runs)', () => {
  it.each([
    'cortex-a53',
    'arm1176',
    'max,pauth-impdef=on',
    'Skylake-Client-v4,-avx512f,+rdrand',
    'rv64,v=true,vlen=256',
    'z14.2-base',
    'max,sve=off',
  ])('accepts %s', (model) => {
    expect(parseQemuCpu(` ${model} `, 'qemu-cpu')).toBe(model);
  });
  it('treats empty as unset', () => {
    expect(parseQemuCpu('', 'qemu-cpu')).toBeUndefined();
    expect(parseQemuCpu(undefined, 'qemu-cpu')).toBeUndefined();
  });
  it.each(['help', '-cpu', 'max pauth', 'max,', ',max', 'a;rm -rf /', 'max,x=$(id)', 'max\nfoo'])(
    'rejects %j with the field and examples',
    (model) => {
      if (model === 'help') {
        // "help" is a valid name syntactically; qemu's list decides (checkQemuCpu), not the syntax.
        expect(parseQemuCpu(model, 'qemu-cpu')).toBe('help');
        return;
      }
      expectUserError(() => parseQemuCpu(model, '--qemu-cpu'), '--qemu-cpu', 'qemu CPU model', 'cortex-a53');
    },
  );
});

describe('chooseQemuCpu (precedence)', () => {
  const arm64 = resolveArch('arm64');
  const riscv = resolveArch('riscv64');
  it("the user's QEMU_CPU in env wins over the option and the default", () => {
    expect(
      chooseQemuCpu(arm64, 'cortex-a53', [
        ['A', '1'],
        ['QEMU_CPU', 'max'],
      ]),
    ).toEqual({ model: 'max', source: 'env' });
  });
  it('the option wins over the default', () => {
    expect(chooseQemuCpu(arm64, 'cortex-a53', [])).toEqual({ model: 'cortex-a53', source: 'option' });
  });
  it('without either, the measured default for the arch, else qemu its own', () => {
    expect(chooseQemuCpu(arm64, undefined, [])).toEqual({ model: DEFAULT_QEMU_CPU.arm64, source: 'default' });
    expect(chooseQemuCpu(riscv, undefined, [])).toEqual({ source: 'qemu' });
  });
  it('says where the model came from', () => {
    expect(describeQemuCpu({ model: 'max', source: 'env' })).toMatch(/max .*QEMU_CPU/);
    expect(describeQemuCpu({ model: 'cortex-a53', source: 'option' })).toBe('cortex-a53 (qemu-cpu)');
    expect(describeQemuCpu({ source: 'qemu' })).toBe("qemu's default");
  });
});

describe('parseCpuHelp (`qemu -cpu help` of qemu 7.2 and 10.0)', () => {
  it('reads bare names (arm, aarch64)', () => {
    expect(parseCpuHelp('Available CPUs:\n  a64fx\n  cortex-a53\n  max\n  neoverse-n1\n')).toEqual([
      'a64fx',
      'cortex-a53',
      'max',
      'neoverse-n1',
    ]);
  });
  it('reads x86 7.2 ("x86 NAME  description") and stops before the CPUID flags', () => {
    const text =
      'Available CPUs:\nx86 486                   (alias configured by machine type)\nx86 Broadwell-v1          Intel Core Processor (Broadwell)\nx86 max                   Enables all features supported by the accelerator in the current host\n\nRecognized CPUID flags:\n  3dnow 3dnowext\n';
    expect(parseCpuHelp(text)).toEqual(['486', 'Broadwell-v1', 'max']);
  });
  it('reads x86 10.0 (indented names with descriptions)', () => {
    expect(
      parseCpuHelp(
        'Available CPUs:\n  486                   (alias configured by machine type)\n  Broadwell-v1          Intel Core Processor (Broadwell)\n\nRecognized CPUID flags:\n  fpu\n',
      ),
    ).toEqual(['486', 'Broadwell-v1']);
  });
  it("reads MIPS 7.2 (\"MIPS '24Kc'\"), PowerPC and s390 prefixes, and riscv's bare list", () => {
    expect(parseCpuHelp("MIPS '4Kc'\nMIPS '24Kc'\n")).toEqual(['4Kc', '24Kc']);
    expect(
      parseCpuHelp('PowerPC mpc5xx           PVR 00020020\nPowerPC rcpu             (alias for mpc5xx)\n'),
    ).toEqual(['mpc5xx', 'rcpu']);
    expect(
      parseCpuHelp('s390 qemu            QEMU Virtual CPU version 2.5+\ns390 max             Enables all features\n'),
    ).toEqual(['qemu', 'max']);
    expect(parseCpuHelp('any\nrv64\nsifive-u54\n')).toEqual(['any', 'rv64', 'sifive-u54']);
  });
  it('yields nothing for output that lists no models', () => {
    expect(parseCpuHelp('')).toEqual([]);
    expect(parseCpuHelp('Available CPUs:\n')).toEqual([]);
  });
});

describe('--qemu-cpu and the qemu-cpu input', () => {
  const environment = { cwd: '/w', env: {}, uid: 0 };
  it('the CLI takes --qemu-cpu on run, prepare and session start', () => {
    const run = parseCli(
      ['run', '--image', 'debian', '--arch', 'arm64', '--qemu-cpu', 'cortex-a53', '--', 'true'],
      environment,
    );
    expect(run.kind === 'run' && run.qemuCpu).toBe('cortex-a53');
    const prepare = parseCli(['prepare', '--image', 'debian', '--arch', 'arm', '--qemu-cpu', 'arm1176'], environment);
    expect(prepare.kind === 'prepare' && prepare.qemuCpu).toBe('arm1176');
    const start = parseCli(
      ['session', 'start', '--image', 'debian', '--arch', 'arm64', '--qemu-cpu', 'max,pauth-impdef=on'],
      environment,
    );
    expect(start.kind === 'session-start' && start.qemuCpu).toBe('max,pauth-impdef=on');
    const none = parseCli(['run', '--image', 'debian', '--', 'true'], environment);
    expect(none.kind === 'run' && 'qemuCpu' in none).toBe(false);
  });
  it('the CLI rejects an empty or malformed --qemu-cpu', () => {
    expectUserError(
      () => parseCli(['run', '--image', 'debian', '--qemu-cpu', '', '--', 'true'], environment),
      '--qemu-cpu',
      'must not be empty',
    );
    expectUserError(
      () => parseCli(['run', '--image', 'debian', '--qemu-cpu', 'max;reboot', '--', 'true'], environment),
      '--qemu-cpu',
      'qemu CPU model',
    );
  });
  it('the action reads qemu-cpu', () => {
    const reader =
      (values: Record<string, string>): InputReader =>
      (name) =>
        values[name] ?? '';
    const inputs = parseInputs(reader({ image: 'debian', run: 'true', arch: 'arm64', 'qemu-cpu': 'cortex-a72' }), {});
    expect(inputs.qemuCpu).toBe('cortex-a72');
    expect(parseInputs(reader({ image: 'debian', run: 'true' }), {}).qemuCpu).toBeUndefined();
    expectUserError(
      () => parseInputs(reader({ image: 'debian', run: 'true', 'qemu-cpu': 'a b' }), {}),
      'qemu-cpu',
      'qemu CPU model',
    );
  });
});

describe('emulationFor: QEMU_CPU in the cell env', () => {
  const arm64 = resolveArch('arm64');
  const haveQemu = !!which(arm64.qemu) && process.arch === 'x64';
  it.skipIf(!haveQemu)('adds the option or the default over the image env, never over the user env', () => {
    const image: Array<[string, string]> = [
      ['PATH', '/bin'],
      ['QEMU_CPU', 'from-image'],
    ];
    const byOption = emulationFor(arm64, 'id1', false, { qemuCpu: 'cortex-a53' }, [], image)!;
    expect(byOption.env).toEqual([
      ['PATH', '/bin'],
      ['QEMU_CPU', 'cortex-a53'],
    ]);
    expect(byOption.cpu).toEqual({ model: 'cortex-a53', source: 'option' });
    expect(emulationFor(arm64, 'id2', false, {}, [], image)!.env).toContainEqual(['QEMU_CPU', DEFAULT_QEMU_CPU.arm64]);
    const user: Array<[string, string]> = [['QEMU_CPU', 'max']];
    const byUser = emulationFor(arm64, 'id3', false, { qemuCpu: 'cortex-a53' }, user, [...image.slice(0, 1), ...user])!;
    expect(byUser.env).toEqual([
      ['PATH', '/bin'],
      ['QEMU_CPU', 'max'],
    ]);
    expect(byUser.cpu.source).toBe('env');
    expect(byUser.emulation.ruleName).toBe('build-cell-arm64-id3');
  });
  it('is undefined for a guest that runs natively', () => {
    expect(emulationFor(hostArch(), 'id', false, { qemuCpu: 'cortex-a53' }, [], [])).toBeUndefined();
  });
});
