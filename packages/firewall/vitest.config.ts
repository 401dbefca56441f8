import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'firewall',
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
  },
});
