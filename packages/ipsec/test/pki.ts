/**
 * The one place the tests take certificates from @sock/tls's dev PKI (a dev dependency only: the package
 * itself takes PEM text or paths and never needs @sock/tls at run time).
 */
import { createCA, issueServerCert } from '@sock/tls/pki';

interface Pem {
  cert: string;
  key: string;
}

export interface LabPki {
  ca: Pem;
  a: Pem;
  b: Pem;
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
