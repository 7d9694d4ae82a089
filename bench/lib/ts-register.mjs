// `node --import ./bench/lib/ts-register.mjs driver.mjs`: registers ts-hooks.mjs (see there).
import { register } from 'node:module';

register('./ts-hooks.mjs', import.meta.url);
