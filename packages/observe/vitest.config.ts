import { fileURLToPath } from 'node:url';
import { defineProject } from 'vitest/config';
import { sockAliases } from '../../vitest.shared.ts';

const src = fileURLToPath(new URL('./src/', import.meta.url));

export default defineProject({
  resolve: {
    // The README's example imports this package by name, subpaths included: from the sources here.
    alias: [
      { find: /^@sock\/observe$/, replacement: `${src}index.ts` },
      { find: /^@sock\/observe\/(prometheus|pino|otel|status)$/, replacement: `${src}$1.ts` },
      ...Object.entries(sockAliases).map(([find, replacement]) => ({ find, replacement })),
    ],
  },
  test: {
    name: 'observe',
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
  },
});
