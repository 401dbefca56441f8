import { fileURLToPath } from 'node:url';

/**
 * Tests import sibling packages from their sources, so a change in @sock/core is seen by @sock/guards'
 * tests without a rebuild. The built packages are checked by `pnpm lint:pkg` and the apps' tests.
 */
const names = ['core', 'guards', 'tls', 'udp', 'firewall', 'ssh'];
export const sockAliases = Object.fromEntries([
  // Subpath entries first: an alias also matches `@sock/core/...`, so the longer name must win.
  ['@sock/core/testing', fileURLToPath(new URL('./packages/core/src/testing/index.ts', import.meta.url))],
  ...names.map((name) => [
    `@sock/${name}`,
    fileURLToPath(new URL(`./packages/${name}/src/index.ts`, import.meta.url)),
  ]),
]);
