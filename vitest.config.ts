import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Builds dist/ when stale and installs (or names) the system programs the suite drives, so
    // a bare `npx vitest run` works on a fresh machine too (test/setup/global.ts).
    globalSetup: ['test/setup/global.ts'],
    // Type-checked tests: `npm test` runs `tsc --noEmit` over test/ as well.
    // A guard against a hang, not a measure: under `npm run test:stress` (CPU hogs on every
    // core) a property test that takes 3 s idle took 22 s.
    testTimeout: 60_000,
    // Most test files wait on child processes, sockets and Redis rather than compute, so three
    // workers on a 2-core machine cut the idle suite from 305 s to 141 s (one worker each core
    // left the cores half idle). Measured in docs/testing.md.
    maxWorkers: 3,
  },
});
