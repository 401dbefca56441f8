import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'repo',
    include: ['**/*.test.ts'],
    // The packaging test packs and installs every package with npm.
    testTimeout: 180_000,
    hookTimeout: 180_000,
  },
});
