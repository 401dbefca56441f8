import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'examples',
    // test/: every example runs as a program; the plug-in examples bring their own tests.
    include: ['test/**/*.test.ts', 'message-quota/**/*.test.ts'],
    testTimeout: 60_000,
  },
});
