import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Builds dist/ when stale and installs (or names) the system programs the suite drives, so
    // a bare `npx vitest run` works on a fresh machine too (test/setup/global.ts).
    globalSetup: ['test/setup/global.ts'],
    // Type-checked tests: `npm test` runs `tsc --noEmit` over test/ as well.
    testTimeout: 20_000,
  },
});
