/**
 * The log while a cell runs: stopped with an unguessable token and resumed whatever way the
 * cell ends; build-cell's own warnings escaped; the outputs build-cell keeps as its own are
 * the ones action.yml declares.
 */
import { describe, expect, it } from 'vitest';
import { escapeData, warningCommand, withCommandsStopped } from '../../src/github/workflow-commands.js';
import { OWN_OUTPUTS } from '../../src/action/main-run.js';
import { readActionYml } from '../helpers/action-yml.js';
import { parseStepCommands } from '../helpers/runner-commands.js';

describe('withCommandsStopped', () => {
  it('stops commands around the cell with a fresh token and resumes them, also when the cell throws', async () => {
    const log: string[] = [];
    const write = (text: string) => log.push(text);
    expect(await withCommandsStopped(async () => (log.push('cell\n'), 7), write)).toBe(7);
    await expect(
      withCommandsStopped(async () => {
        log.push('::set-output name=exit-code::0\n');
        throw new Error('boom');
      }, write),
    ).rejects.toThrow('boom');
    const [stop1, , resume1, stop2, , resume2] = log;
    const token1 = /^::stop-commands::(build-cell-[0-9a-f]{32})\n$/.exec(stop1!)![1]!;
    const token2 = /^::stop-commands::(build-cell-[0-9a-f]{32})\n$/.exec(stop2!)![1]!;
    expect(token1).not.toBe(token2);
    expect(resume1).toBe(`::${token1}::\n`);
    expect(resume2).toBe(`::${token2}::\n`);
    // As the runner reads it: nothing in between is a command, and commands work again after.
    const commands = parseStepCommands([{ stream: 'stdout', text: `${log.join('')}::warning::after\n` }], 'main');
    expect(commands.map((c) => [c.command, c.message])).toEqual([['warning', 'after']]);
  });

  it("escapes a warning's data, so a path the cell chose is one line of data", () => {
    expect(escapeData('a%b\r\n::error::x')).toBe('a%25b%0D%0A::error::x');
    expect(warningCommand('x\n::set-output name=a::b')).toBe('::warning::x%0A::set-output name=a::b\n');
  });
});

describe("build-cell's own outputs", () => {
  it('are the outputs action.yml declares', () => {
    expect([...OWN_OUTPUTS].sort()).toEqual([...readActionYml().outputs].sort());
  });
});
