#!/usr/bin/env -S -u NODE_EXTRA_CA_CERTS node
// The launcher drops NODE_EXTRA_CA_CERTS: Node parses that file at every start (~30 ms for a
// distribution's bundle), and the CLI makes no TLS connection of its own (skopeo reaches the
// registries, with the system's certificate store).
// The `build-cell` command. All logic lives in cli/main.ts.
import { main } from './cli/main.js';

void main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
