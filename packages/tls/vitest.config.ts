import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'tls',
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
  },
});
