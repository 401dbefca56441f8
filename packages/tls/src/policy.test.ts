import { X509Certificate } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { createCA, issueClientCert } from './dev-pki.js';
import { identityFromCertificate, normalizePin, type PeerIdentity } from './identity.js';
import { compilePolicy, normalizeDn } from './policy.js';

const conn = { id: 1 } as never;
let worker: PeerIdentity;
let web: PeerIdentity;

beforeAll(async () => {
  const ca = await createCA({ commonName: 'Internal CA', organization: 'Example' });
  const a = await issueClientCert(ca, {
    commonName: 'worker',
    spiffeId: 'spiffe://prod.example.org/ns/a/sa/worker',
  });
  const b = await issueClientCert(ca, {
    commonName: 'web',
    names: ['web.svc.example.org', 'spiffe://x.org/1', 'spiffe://x.org/2'],
  });
  worker = identityFromCertificate(new X509Certificate(a.cert).raw);
  web = identityFromCertificate(new X509Certificate(b.cert).raw);
});

describe('authorization policy', () => {
  it('matches single fields', () => {
    const allow = (rule: Parameters<typeof compilePolicy>[0], id: PeerIdentity) =>
      compilePolicy(rule)(id, conn);
    expect(allow({ spiffeId: 'spiffe://prod.example.org/ns/a/sa/worker' }, worker)).toBe(true);
    expect(allow({ spiffeId: 'spiffe://prod.example.org/ns/a/sa/other' }, worker)).toBe(false);
    expect(allow({ trustDomain: 'prod.example.org' }, worker)).toBe(true);
    expect(allow({ trustDomain: 'example.org' }, worker)).toBe(false);
    expect(allow({ commonName: 'worker' }, worker)).toBe(true);
    expect(allow({ dnsName: 'web.svc.example.org' }, web)).toBe(true);
    expect(allow({ dnsName: '*.svc.example.org' }, web)).toBe(true);
    expect(allow({ dnsName: '*.example.org' }, web)).toBe(false);
    expect(allow({ spkiSha256: worker.spkiSha256 }, worker)).toBe(true);
    expect(allow({ spkiSha256: `sha256/${worker.spkiSha256}` }, worker)).toBe(true);
    expect(allow({ spkiSha256: web.spkiSha256 }, worker)).toBe(false);
    expect(allow({ issuer: 'cn=Internal CA,o=Example' }, worker)).toBe(true);
    expect(allow({ issuer: 'CN=Other CA, O=Example' }, worker)).toBe(false);
  });

  it('requires a valid X509-SVID for SPIFFE rules (exactly one URI SAN)', () => {
    expect(web.uris.length).toBe(2);
    expect(web.spiffeId).toBeUndefined();
    expect(compilePolicy({ trustDomain: 'x.org' })(web, conn)).toBe(false);
  });

  it('ANDs fields within a rule and ORs rules', () => {
    const both = compilePolicy({ commonName: 'worker', trustDomain: 'prod.example.org' });
    expect(both(worker, conn)).toBe(true);
    expect(compilePolicy({ commonName: 'web', trustDomain: 'prod.example.org' })(worker, conn)).toBe(false);
    const either = compilePolicy([{ commonName: 'web' }, { trustDomain: 'prod.example.org' }]);
    expect(either(worker, conn)).toBe(true);
    expect(either(web, conn)).toBe(true);
  });

  it('refuses rules that cannot mean what they say', () => {
    expect(() => compilePolicy({})).toThrow(/empty rule/);
    expect(() => compilePolicy([])).toThrow(/refuse everyone/);
    expect(() => compilePolicy({ spifeId: 'x' } as never)).toThrow(/unknown rule field/);
    expect(() => compilePolicy({ spiffeId: 'spiffe://Bad' })).toThrow(/SPIFFE/);
    expect(() => compilePolicy({ spkiSha256: 'abc' })).toThrow(/base64 SHA-256/);
  });

  it('normalises DNs and pins (property)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(fc.constantFrom('cn', 'o', 'OU', 'C'), fc.stringMatching(/^[A-Za-z0-9 .-]{1,12}$/)),
          { minLength: 1, maxLength: 4 },
        ),
        (attrs) => {
          const spaced = attrs.map(([k, v]) => ` ${k} = ${v.trim()} `).join(',');
          const tight = attrs.map(([k, v]) => `${k.toUpperCase()}=${v.trim()}`).join(', ');
          expect(normalizeDn(spaced)).toBe(normalizeDn(tight));
        },
      ),
    );
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (bytes) => {
        const b64 = Buffer.from(bytes).toString('base64');
        expect(normalizePin(b64)).toBe(b64);
        expect(normalizePin(`sha256//${b64}`)).toBe(b64);
      }),
    );
    fc.assert(
      fc.property(fc.string(), (s) => {
        try {
          expect(Buffer.from(normalizePin(s), 'base64').length).toBe(32);
        } catch (err) {
          expect((err as Error).name).toBe('SockError');
        }
      }),
    );
  });
});
