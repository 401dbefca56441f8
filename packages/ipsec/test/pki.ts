/**
 * The one place the tests take certificates from @sock/tls's dev PKI (a dev dependency only: the package
 * itself takes PEM text or paths and never needs @sock/tls at run time). When the dev PKI moves behind
 * `@sock/tls/pki`, only this import changes.
 */
import { createCA, issueServerCert } from '@sock/tls';

export interface LabPki {
  ca: { cert: string; key: string };
  a: { cert: string; key: string };
  b: { cert: string; key: string };
}

/** A CA and one certificate per side, named a.ipsec.test and b.ipsec.test (their IKE identities). */
export async function labPki(): Promise<LabPki> {
  const ca = await createCA({ commonName: 'sock ipsec test CA' });
  return {
    ca,
    a: await issueServerCert(ca, { names: ['a.ipsec.test'] }),
    b: await issueServerCert(ca, { names: ['b.ipsec.test'] }),
  };
}
