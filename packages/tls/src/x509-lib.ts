import { createRequire } from 'node:module';
import type * as X509 from '@peculiar/x509';

let loaded: typeof X509 | undefined;

/**
 * @peculiar/x509, loaded on first use: it needs reflect-metadata, which patches the global `Reflect`.
 * Loading it lazily keeps that patch (and the X.509 stack) away from TLS users who never parse a
 * client certificate (no mTLS, no SPIFFE). The whole package is marked side-effect free, and this is
 * what makes that true. Synchronous (`require`), because `identityFromCertificate` is.
 */
export function x509(): typeof X509 {
  if (loaded === undefined) {
    const require = createRequire(import.meta.url);
    require('reflect-metadata');
    loaded = require('@peculiar/x509') as typeof X509;
  }
  return loaded;
}
