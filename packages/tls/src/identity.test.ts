import { createHash, X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { createCA, type DevCA, issueClientCert, issueServerCert } from './dev-pki.js';
import { EKU_CLIENT_AUTH, identityFromCertificate, normalizePin, spkiSha256 } from './identity.js';

let ca: DevCA;
beforeAll(async () => {
  ca = await createCA({ commonName: 'Id CA' });
});

describe('peer identity', () => {
  it('reads every field from the DER certificate', async () => {
    const leaf = await issueClientCert(ca, {
      commonName: 'svc',
      spiffeId: 'spiffe://td.test/svc',
      names: ['svc.td.test', '10.1.2.3'],
    });
    const cert = new X509Certificate(leaf.cert);
    const id = identityFromCertificate(cert.raw);
    expect(id).toMatchObject({
      subject: 'CN=svc',
      commonName: 'svc',
      issuerCommonName: 'Id CA',
      dnsNames: ['svc.td.test'],
      ipAddresses: ['10.1.2.3'],
      uris: ['spiffe://td.test/svc'],
      spiffeId: 'spiffe://td.test/svc',
      trustDomain: 'td.test',
      isCA: false,
      extendedKeyUsages: [EKU_CLIENT_AUTH],
      fingerprintSha256: cert.fingerprint256,
    });
    expect(id.issuer).toContain('CN=Id CA');
    expect(id.serialNumber.toLowerCase()).toBe(cert.serialNumber.toLowerCase());
    const spki = cert.publicKey.export({ type: 'spki', format: 'der' });
    expect(id.spkiSha256).toBe(createHash('sha256').update(spki).digest('base64'));
    expect(spkiSha256(cert)).toBe(id.spkiSha256);
    expect(id.notAfter.getTime()).toBe(Date.parse(cert.validTo));
    expect(Buffer.compare(id.raw, cert.raw)).toBe(0);
  });

  it('gives no SPIFFE ID to a CA or to a certificate with two URI SANs', async () => {
    const caId = identityFromCertificate(new X509Certificate(ca.cert).raw);
    expect(caId.isCA).toBe(true);
    expect(caId.spiffeId).toBeUndefined();
    const two = await issueServerCert(ca, { names: ['spiffe://td.test/a', 'spiffe://td.test/b'] });
    const id = identityFromCertificate(new X509Certificate(two.cert).raw);
    expect(id.uris.length).toBe(2);
    expect(id.spiffeId).toBeUndefined();
    const notSpiffe = await issueServerCert(ca, { names: ['https://td.test/a'] });
    expect(identityFromCertificate(new X509Certificate(notSpiffe.cert).raw).spiffeId).toBeUndefined();
  });

  it('normalises pins', () => {
    const pin = createHash('sha256').update('x').digest('base64');
    expect(normalizePin(`sha256//${pin}`)).toBe(pin);
    expect(normalizePin(`SHA256/${pin}`)).toBe(pin);
    expect(() => normalizePin(pin.slice(1))).toThrow(/base64 SHA-256/);
  });
});
