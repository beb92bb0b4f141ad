#!/usr/bin/env -S node --max-semi-space-size=1 --liftoff-only
// The shebang's flags (bench/cli-flags.mjs says why, with the figures): a 1 MB young generation,
// so a million-case plan's flat ~11 MB live heap is not inflated to ~200 MB of RSS by 16 MB
// semi-spaces (bench S5), and Liftoff-only Wasm, so undici's HTTP parser costs ~30 MB less.

/**
 * The `stride` bin: runs src/cli/app.ts's `main` and sets the exit code.
 */

import { catchEarlySignals } from './signals.js';

// Before anything else loads: a Ctrl-C from here on is kept for the run session (signals.ts).
catchEarlySignals();
const { main } = await import('./app.js');

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
