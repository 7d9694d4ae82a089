// Embeds src/cell/helper.sh into src/cell/helper-script.ts, so that the bundle carries the
// helper as a string and needs no asset files. `npm run build` and `npm test` run this first;
// a unit test checks the two are in sync.
import { readFileSync, writeFileSync } from 'node:fs';

const here = new URL('../src/cell/', import.meta.url);
const script = readFileSync(new URL('helper.sh', here), 'utf8');
const header = readFileSync(new URL('helper-script.header.txt', here), 'utf8');
const out = `${header}export const HELPER_SCRIPT = ${JSON.stringify(script)};\n`;
const target = new URL('helper-script.ts', here);
let current = '';
try { current = readFileSync(target, 'utf8'); } catch {}
if (current !== out) writeFileSync(target, out);
