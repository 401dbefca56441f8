import { defineProject } from 'vitest/config';
import { sockAliases } from '../../vitest.shared.ts';

export default defineProject({
  resolve: { alias: sockAliases },
  test: {
    name: 'guards',
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    // Type tests (*.test-d.ts): checked by the compiler, not run.
    typecheck: { enabled: true, include: ['test/**/*.test-d.ts'], tsconfig: './tsconfig.json' },
  },
});
