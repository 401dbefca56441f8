import { defineProject } from 'vitest/config';
import { sockAliases } from '../../vitest.shared.ts';

export default defineProject({
  resolve: { alias: sockAliases },
  test: {
    name: 'firewall',
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
  },
});
