import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // One GPU device per worker; lavapipe uses the CPU cores itself, so keep workers few.
    maxWorkers: 2,
  },
});
