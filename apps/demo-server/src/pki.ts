import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  createCA,
  type DevCA,
  issueClientCert,
  issueServerCert,
  writeCA,
  writeCertificate,
} from '@sock/tls/pki';

/** The SPIFFE trust domain of the demo's users. */
export const TRUST_DOMAIN = 'sock.demo';
const USERS = ['alice', 'bob', 'mallory'] as const;

export interface DemoPki {
  dir: string;
  ca: string;
  server: { cert: string; key: string };
  user(name: string): { cert: string; key: string };
  created: boolean;
}

/**
 * The dev PKI in `<stateDir>/pki`, created on first run: a CA, a server certificate for localhost,
 * 127.0.0.1 and ::1, and client certificates with SPIFFE IDs spiffe://sock.demo/user/<name>.
 */
export async function ensurePki(stateDir: string): Promise<DemoPki> {
  const dir = join(stateDir, 'pki');
  const paths = (stem: string) => ({ cert: join(dir, `${stem}.crt`), key: join(dir, `${stem}.key`) });
  let created = false;
  let ca: DevCA;
  if (existsSync(join(dir, 'ca.key')) && existsSync(join(dir, 'ca.crt'))) {
    ca = {
      cert: await readFile(join(dir, 'ca.crt'), 'utf8'),
      key: await readFile(join(dir, 'ca.key'), 'utf8'),
    };
  } else {
    ca = await createCA({ commonName: 'sock demo CA' });
    await writeCA(dir, ca);
    created = true;
  }
  if (created || !existsSync(paths('server').cert)) {
    await writeCertificate(dir, await issueServerCert(ca, { names: ['localhost', '127.0.0.1', '::1'] }), {
      certFile: 'server.crt',
      keyFile: 'server.key',
    });
  }
  for (const name of USERS) {
    if (created || !existsSync(paths(name).cert)) {
      const material = await issueClientCert(ca, {
        commonName: name,
        spiffeId: `spiffe://${TRUST_DOMAIN}/user/${name}`,
      });
      await writeCertificate(dir, material, { certFile: `${name}.crt`, keyFile: `${name}.key` });
    }
  }
  return { dir, ca: join(dir, 'ca.crt'), server: paths('server'), user: paths, created };
}
