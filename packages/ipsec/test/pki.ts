/**
 * The one place the tests take certificates from @sock/tls's dev PKI (a dev dependency only: the package
 * itself takes PEM text or paths and never needs @sock/tls at run time). The dev PKI is moving from the
 * root export to `@sock/tls/pki`; either is taken, the subpath first.
 */
interface Pem {
  cert: string;
  key: string;
}
interface DevPki {
  createCA(options: { commonName?: string }): Promise<Pem>;
  issueServerCert(ca: Pem, options: { names: string[] }): Promise<Pem>;
}

async function devPki(): Promise<DevPki> {
  const subpath = '@sock/tls/pki'; // a variable, so the type check does not need the subpath yet
  const found = (await import(/* @vite-ignore */ subpath).catch(() => undefined)) as
    | Partial<DevPki>
    | undefined;
  if (found?.createCA) return found as DevPki;
  return (await import('@sock/tls')) as unknown as DevPki;
}

export interface LabPki {
  ca: Pem;
  a: Pem;
  b: Pem;
}

/** A CA and one certificate per side, named a.ipsec.test and b.ipsec.test (their IKE identities). */
export async function labPki(): Promise<LabPki> {
  const { createCA, issueServerCert } = await devPki();
  const ca = await createCA({ commonName: 'sock ipsec test CA' });
  return {
    ca,
    a: await issueServerCert(ca, { names: ['a.ipsec.test'] }),
    b: await issueServerCert(ca, { names: ['b.ipsec.test'] }),
  };
}
