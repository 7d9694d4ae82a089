// The `build-cell` command, run by its launcher (src/launcher/cli-launcher.cjs). All logic
// lives in cli/main.ts.
import { main } from './cli/main.js';

void main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
