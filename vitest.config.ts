import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Type-checked tests: `npm test` runs `tsc --noEmit` over test/ as well.
    testTimeout: 20_000,
  },
});
