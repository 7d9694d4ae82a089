import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { commandLine, exec, ExecError, redact, tailLines } from '../../src/util/exec.js';
import { CellSetupError } from '../../src/util/errors.js';

/** Undo commandLine's quoting, as sh would (only the forms it produces). */
function shellWords(line: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < line.length) {
    if (line[i] === ' ') {
      i++;
      continue;
    }
    let word = '';
    while (i < line.length && line[i] !== ' ') {
      if (line[i] === "'") {
        const end = line.indexOf("'", i + 1);
        word += line.slice(i + 1, end);
        i = end + 1;
      } else if (line[i] === '\\') {
        word += line[i + 1];
        i += 2;
      } else {
        word += line[i];
        i++;
      }
    }
    words.push(word);
  }
  return words;
}

describe('commandLine', () => {
  it('leaves safe words bare and single-quotes the rest', () => {
    expect(commandLine('skopeo', ['copy', '--quiet', 'docker://a/b:1@sha256:00', 'oci:/tmp/x:image'])).toBe(
      'skopeo copy --quiet docker://a/b:1@sha256:00 oci:/tmp/x:image',
    );
    expect(commandLine('/bin/sh', ['-c', 'echo hi'])).toBe("/bin/sh -c 'echo hi'");
    expect(commandLine('x', [''])).toBe("x ''");
    expect(commandLine('x', ["it's"])).toBe("x 'it'\\''s'");
    expect(commandLine('x', ['$HOME', 'a*b', 'l1\nl2'])).toBe("x '$HOME' 'a*b' 'l1\nl2'");
    expect(commandLine('x', ['a=b,c+d%e@f'])).toBe('x a=b,c+d%e@f');
  });

  it('property: sh would split it back into the same words', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.string({ unit: fc.constantFrom('a', ' ', "'", '"', '\\', '$', '-', '/', '\n', ':'), maxLength: 8 }),
          { maxLength: 5 },
        ),
        (args) => {
          expect(shellWords(commandLine('cmd', args))).toEqual(['cmd', ...args]);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('redacts secrets', () => {
    expect(commandLine('login', ['--password', 'hunter2'], ['hunter2'])).toBe('login --password ***');
    expect(commandLine('login', ['--password=hunter2 x'], ['hunter2'])).toBe("login '--password=*** x'");
    expect(commandLine('login', ['a'], [''])).toBe('login a');
  });

  // Regression (fixed): src/util/exec.ts:48 commandLine quotes first and redacts afterwards, so a secret that
  // contains a single quote is rewritten by the quoting (' -> '\'') and no longer matches:
  // it appears in error messages and debug logs. Fix: redact each word before quoting
  // (`[file, ...args].map((w) => quote(redact(w, secrets)))`).
  it('redacts a secret that contains a quote', () => {
    const line = commandLine('login', ["--password=it's-secret"], ["it's-secret"]);
    expect(line).not.toContain('secret');
  });
});

describe('redact', () => {
  it('replaces every occurrence of every secret', () => {
    expect(redact('a pw b pw c tok', ['pw', 'tok'])).toBe('a *** b *** c ***');
    expect(redact('nothing', [])).toBe('nothing');
    expect(redact('keep', [''])).toBe('keep');
  });
  it('property: no secret survives', () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 30 }),
        fc.string({ minLength: 3, maxLength: 8 }).filter((s) => !s.includes('*')),
        (text, secret) => {
          expect(redact(`${text}${secret}${text}`, [secret]).includes(secret)).toBe(false);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('tailLines', () => {
  it('keeps the last N non-trailing lines', () => {
    expect(tailLines('1\n2\n3\n4\n', 2)).toBe('3\n4');
    expect(tailLines('  only  \n\n', 8)).toBe('only');
    expect(tailLines('', 3)).toBe('');
  });
});

describe('exec', () => {
  it('reports the command, the exit code and the stderr tail, with secrets redacted', async () => {
    const script = 'for i in 1 2 3 4 5 6 7 8 9 10; do echo "line $i" >&2; done; echo "token=$1" >&2; exit 3';
    const error = await exec('/bin/sh', ['-c', script, 'sh', 'TOPSECRET'], 'run the probe', {
      secrets: ['TOPSECRET'],
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ExecError);
    expect(error).toBeInstanceOf(CellSetupError);
    const e = error as ExecError;
    expect(e.message).toBe(
      `run the probe: \`/bin/sh -c '${script}' sh ***\` exited with 3: line 4\nline 5\nline 6\nline 7\nline 8\nline 9\nline 10\ntoken=***`,
    );
    expect(e.message).not.toContain('TOPSECRET');
    expect(e.result.code).toBe(3);
    expect(e.result.stderr).toContain('token=***');
    // Success: output captured, stdin fed from input.
    const ok = await exec('/bin/sh', ['-c', 'cat; echo err >&2'], 'cat', { input: 'from stdin' });
    expect(ok).toEqual({ code: 0, signal: null, stdout: 'from stdin', stderr: 'err\n' });
  });

  // Regression (fixed): src/util/exec.ts:73 and :35 only stderr is redacted; when a failing command writes nothing to
  // stderr, ExecError uses the tail of the *unredacted* stdout, so a secret printed on stdout
  // ends up in the error message. Fix: redact stdout too (or redact `tail` in ExecError).
  it('redacts secrets from a stdout tail used in the error message', async () => {
    const error = (await exec('/bin/sh', ['-c', 'echo "token=$S"; exit 4'], 'probe', {
      secrets: ['TOPSECRET'],
      env: { ...process.env, S: 'TOPSECRET' },
    }).catch((e: unknown) => e)) as Error;
    expect(error.message).toContain('exited with 4');
    expect(error.message).not.toContain('TOPSECRET');
  });
});
