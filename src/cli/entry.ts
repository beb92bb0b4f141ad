/**
 * The CLI's body: takes the signals, loads the program, runs it and sets the exit code. The bin
 * (main.ts) starts it from the bundle (dist/cli/stride.cjs, built from this file by
 * scripts/bundle.mjs) or, without one, from dist/ as it is (bundle.ts says when).
 */

import { catchEarlySignals } from './signals.js';

// Before the program loads: a Ctrl-C from here on is kept for the run session (signals.ts).
catchEarlySignals();

// A dynamic import, not a static one, so app.ts and what it imports load after the gate is up
// (in the bundle too: esbuild keeps an `import()` lazy).
import('./app.js')
  .then(({ main }) => main(process.argv.slice(2)))
  .then((code) => {
    process.exitCode = code;
  });
