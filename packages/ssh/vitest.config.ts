import { defineProject } from 'vitest/config';
import { sockAliases } from '../../vitest.shared.ts';

export default defineProject({
  resolve: { alias: sockAliases },
  test: {
    name: 'ssh',
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
  },
});
