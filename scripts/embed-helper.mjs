// Embeds src/cell/helper.sh into src/cell/helper-script.ts, so that the bundle carries the
// helper as a string and needs no asset files. `npm run build` and `npm test` run this first;
// a unit test checks the two are in sync.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';

const here = new URL('../src/cell/', import.meta.url);
const script = readFileSync(new URL('helper.sh', here), 'utf8');
const header = readFileSync(new URL('helper-script.header.txt', here), 'utf8');
const hash = createHash('sha256').update(script).digest('hex').slice(0, 16);
const out = `${header}export const HELPER_SCRIPT = ${JSON.stringify(script)};\n/** The first 16 hex digits of the script's sha256: its installed name (computed at build time). */\nexport const HELPER_HASH = ${JSON.stringify(hash)};\n`;
const target = new URL('helper-script.ts', here);
let current = '';
try {
  current = readFileSync(target, 'utf8');
} catch {
  // No file yet: write it.
}
if (current !== out) writeFileSync(target, out);
