import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'cli',
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    // Every test spawns node processes (≈0.5 s each on a busy 2-core machine).
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
