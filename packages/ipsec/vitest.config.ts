import { fileURLToPath } from 'node:url';
import { defineProject } from 'vitest/config';
import { sockAliases } from '../../vitest.shared.ts';

export default defineProject({
  // The README example imports the package by its name: serve it from the sources too.
  resolve: {
    alias: { ...sockAliases, '@sock/ipsec': fileURLToPath(new URL('./src/index.ts', import.meta.url)) },
  },
  test: {
    name: 'ipsec',
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    // The integration suite starts two charons (and stops them: ~2 s each) in beforeAll/afterAll.
    hookTimeout: 30_000,
  },
});
