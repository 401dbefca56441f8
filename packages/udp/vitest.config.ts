import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'udp',
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
  },
});
