#!/usr/bin/env -S node --max-semi-space-size=1 --liftoff-only
// The shebang's flags (bench/cli-flags.mjs says why, with the figures): a 1 MB young generation,
// so a million-case plan's flat ~11 MB live heap is not inflated to ~200 MB of RSS by 16 MB
// semi-spaces (bench S5), and Liftoff-only Wasm, so undici's HTTP parser costs ~30 MB less.

/**
 * The `stride` bin: runs the CLI (entry.ts) from its bundle with V8's code cache when the build
 * made one (bundle.ts: about 1.5x faster to start), else from dist/'s files.
 */

import { runBundle } from './bundle.js';

if (!runBundle()) await import('./entry.js');
