#!/usr/bin/env -S node --max-semi-space-size=1
// The shebang's flag keeps V8's young generation at 1 MB: a million-case plan streams with a
// flat ~11 MB live heap, and the default 16 MB semi-spaces only inflated peak RSS (bench S5:
// ~190 MB -> ~145 MB) at no throughput cost. bench/run.mjs measures with the same flag.

/**
 * The `stride` bin: runs src/cli/app.ts's `main` and sets the exit code.
 */

import { main } from './app.js';

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
