import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { HELPER_HASH, HELPER_SCRIPT } from '../../src/cell/helper-script.js';
import { planCell } from '../../src/cell/plan.js';
import { helperArgv } from '../../src/cell/helper-argv.js';
import { resolveArch, binfmtRule } from '../../src/emulation/arch.js';
import { baseSpec } from './spec-fixture.js';

const here = new URL('../../src/cell/', import.meta.url);
const helperSh = readFileSync(new URL('helper.sh', here), 'utf8');

describe('helper-script.ts', () => {
  it('embeds exactly src/cell/helper.sh (run scripts/embed-helper.mjs after editing it)', () => {
    expect(HELPER_SCRIPT).toBe(helperSh);
  });

  it('is the header followed by the generated export, as embed-helper.mjs writes it', () => {
    const header = readFileSync(new URL('helper-script.header.txt', here), 'utf8');
    const generated = readFileSync(new URL('helper-script.ts', here), 'utf8');
    const hash = createHash('sha256').update(helperSh).digest('hex').slice(0, 16);
    expect(generated).toBe(
      `${header}export const HELPER_SCRIPT = ${JSON.stringify(helperSh)};\n/** The first 16 hex digits of the script's sha256: its installed name (computed at build time). */\nexport const HELPER_HASH = ${JSON.stringify(hash)};\n`,
    );
    expect(HELPER_HASH).toBe(hash);
  });

  it('starts with a POSIX sh shebang', () => {
    expect(HELPER_SCRIPT.startsWith('#!/bin/sh\n')).toBe(true);
  });
});

describe('helper.sh agrees with helperArgv on each operation', () => {
  /** `name) need N` in the helper: N counts the op itself. */
  const needs = new Map<string, number>();
  for (const m of helperSh.matchAll(/^\s+([a-z-]+)\)\s*(?:#[^\n]*)?\n?\s*need (\d+) /gm))
    needs.set(m[1]!, Number(m[2]));
  const noArgs = ['wait-go', 'loopback', 'wait-map'];

  it('the helper handles every op a full plan emits, with the same number of arguments', () => {
    const spec = baseSpec({ network: 'disabled' });
    const arch = resolveArch('arm64');
    const plan = planCell(
      spec,
      {
        prefix: '/var/lib/build-cell',
        tools: {
          unshare: '/usr/bin/unshare',
          env: '/usr/bin/env',
          prlimit: '/usr/bin/prlimit',
          shell: '/usr/bin/dash',
        },
        hostname: 'h',
        hostResolvConf: '/etc/resolv.conf',
        cgroupDir: '/sys/fs/cgroup/x',
        nestedUserns: true,
        emulation: { arch, qemuPath: '/usr/bin/qemu-aarch64-static', binfmt: 'global', ruleName: 'r1' },
      },
      (e, i) => binfmtRule(e.ruleName, e.arch, i),
    );
    const argv = helperArgv(plan);
    let i = 0;
    const seen = new Set<string>();
    for (const op of plan.ops) {
      expect(argv[i]).toBe(op.op);
      seen.add(op.op);
      const arity = Object.keys(op).length - 1;
      if (noArgs.includes(op.op)) {
        expect(arity).toBe(0);
        expect(helperSh).toMatch(new RegExp(`^\\s+${op.op}\\)`, 'm'));
      } else {
        expect(needs.get(op.op), `helper.sh: ${op.op}) need ${arity + 1}`).toBe(arity + 1);
      }
      i += 1 + arity;
    }
    expect(argv[i]).toBe('exec');
    expect(seen.size).toBeGreaterThan(14);
    // exec CWD CPU AS NPROC ROOT ENV PRLIMIT UNSHARE EXE: the helper checks for at least 10 words.
    expect(argv.length - i).toBeGreaterThanOrEqual(10);
    expect(helperSh).toContain('[ "$1" = exec ] && [ "$#" -ge 10 ]');
    expect(helperSh).toContain('cwd=$2 cpu=$3 as=$4 nproc=$5 root=$6 env_bin=$7 prlimit_bin=$8 unshare_bin=$9');
  });

  it('starts no process to look up or decode anything (every host program comes by absolute path)', () => {
    expect(helperSh).not.toMatch(/\$\(command -v/);
    expect(helperSh).not.toMatch(/\$\(printf/);
    expect(helperSh).not.toMatch(/^[^#\n]*\breadlink\b/m);
  });
});
