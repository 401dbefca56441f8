import { fileURLToPath } from 'node:url';

/**
 * Tests import sibling packages from their sources, so a change in @sock/core is seen by @sock/guards'
 * tests without a rebuild. The built packages are checked by `pnpm lint:pkg` and the apps' tests.
 */
const names = ['core', 'guards', 'tls', 'udp', 'firewall', 'ssh', 'ipsec', 'observe'];
/** Subpath exports, listed first: an alias also matches every path below it, and the first match wins. */
const subpaths: Record<string, string> = {
  '@sock/core/testing': 'core/src/testing/index.ts',
  '@sock/core/internal': 'core/src/internal.ts',
  '@sock/tls/pki': 'tls/src/pki.ts',
  '@sock/observe/prometheus': 'observe/src/prometheus.ts',
  '@sock/observe/pino': 'observe/src/pino.ts',
  '@sock/observe/otel': 'observe/src/otel.ts',
  '@sock/observe/status': 'observe/src/status.ts',
};
export const sockAliases = Object.fromEntries([
  ...Object.entries(subpaths).map(([name, file]) => [
    name,
    fileURLToPath(new URL(`./packages/${file}`, import.meta.url)),
  ]),
  ...names.map((name) => [
    `@sock/${name}`,
    fileURLToPath(new URL(`./packages/${name}/src/index.ts`, import.meta.url)),
  ]),
]);
