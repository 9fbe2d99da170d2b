import { defineConfig } from 'vitest/config';

// Unit tests (src/**) and the browser suite (e2e/**) both run in Node: the browser suite drives
// Debian's Chromium through playwright-core against the real built server.
export default defineConfig({
  test: {
    environment: 'node',
    include: ['src/**/*.test.ts', 'e2e/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 180_000,
  },
});
