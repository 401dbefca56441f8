import { sockTsup } from '../../tsup.shared';

// Two entry points: the dev PKI (and the X.509 library it needs) stays out of plain TLS users' imports.
// shims: `import.meta.url` for the lazy X.509 loader in the CJS build.
export default sockTsup({ entry: ['src/index.ts', 'src/pki.ts'], shims: true });
