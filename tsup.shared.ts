import { defineConfig, type Options } from 'tsup';

/**
 * The one place for build options: every package's tsup.config.ts calls this, so a later move to
 * another bundler touches one file.
 */
export function sockTsup(overrides: Partial<Options> = {}) {
  return defineConfig({
    entry: ['src/index.ts'],
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    clean: true,
    target: 'node20',
    platform: 'node',
    splitting: false,
    treeshake: true,
    ...overrides,
  });
}
