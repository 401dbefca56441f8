/**
 * Fuzz/property tests for tls's parsers: SPIFFE IDs, certificate identity (SANs read from the DER) on
 * corrupted certificates, and PEM bundles. `FUZZ_RUNS` sets the cases per property (see fuzz/harness.ts).
 */
import { X509Certificate } from 'node:crypto';
import { SockError } from '@sock/core';
import { identityFromCertificate, parseSpiffeId } from '@sock/tls';
import { createCA, issueClientCert, issueServerCert } from '@sock/tls/pki';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { check, expectTyped, FUZZ_RUNS, fuzzIt, mutate } from '../../../fuzz/harness.js';
import { parseCertificates } from '../src/material.js';

const segment = fc.stringMatching(/^[a-zA-Z0-9._-]{1,8}$/);
const spiffeText = fc.oneof(
  fc
    .tuple(fc.stringMatching(/^[a-z0-9._-]{1,12}$/), fc.array(segment, { maxLength: 4 }))
    .map(([td, segs]) => `spiffe://${td}${segs.map((s) => `/${s}`).join('')}`),
  fc.string({ maxLength: 40 }).map((s) => `spiffe://${s}`),
  fc.string({ maxLength: 40 }),
  fc.constantFrom(
    'SPIFFE://a/b',
    'spiffe://a/b/',
    'spiffe://a//b',
    'spiffe://a/./b',
    'spiffe://a:443/b',
    'spiffe://u@a/b',
  ),
);

fuzzIt(
  'tls/parseSpiffeId',
  'a SPIFFE ID whose parts rebuild the input, or ERR_SOCK_INVALID_OPTION',
  spiffeText,
  (text) => {
    try {
      const id = parseSpiffeId(text);
      check(`spiffe://${id.trustDomain}${id.path}` === text && id.id === text, 'parts do not rebuild the ID');
      check(!id.path.endsWith('/') && !id.path.includes('//') && !/\/\.\.?(\/|$)/.test(id.path), 'path');
      check(/^[a-z0-9._-]+$/.test(id.trustDomain), 'trust domain');
    } catch (err) {
      expectTyped(err, ['ERR_SOCK_INVALID_OPTION']);
    }
  },
);

const ders: Buffer[] = [];
const pems: string[] = [];
beforeAll(async () => {
  const ca = await createCA();
  const client = await issueClientCert(ca, { commonName: 'fuzz', spiffeId: 'spiffe://fuzz.test/ns/a/sa/b' });
  const server = await issueServerCert(ca, { names: ['fuzz.test', '*.fuzz.test', '127.0.0.1', '::1'] });
  for (const pem of [client.cert, server.cert, ca.cert]) {
    pems.push(pem);
    ders.push(new X509Certificate(pem).raw);
  }
}, 60_000);

const edits = fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 });

fuzzIt(
  'tls/identityFromCertificate',
  'corrupted or truncated DER: an identity or ERR_SOCK_INVALID_OPTION, never another error',
  fc.tuple(fc.nat(2), edits, fc.nat(), fc.boolean()),
  ([which, x, cut, truncate]) => {
    const der = ders[which]!;
    const input = truncate ? der.subarray(0, cut % der.length) : mutate(der, x);
    try {
      const id = identityFromCertificate(input);
      check(
        Array.isArray(id.dnsNames) && Array.isArray(id.uris) && typeof id.spkiSha256 === 'string',
        'shape',
      );
      if (id.spiffeId !== undefined) check(parseSpiffeId(id.spiffeId).id === id.spiffeId, 'spiffe');
    } catch (err) {
      expectTyped(err, ['ERR_SOCK_INVALID_OPTION']);
    }
  },
  // Node's X509 parser plus @peculiar/x509 cost ~1–2.5 ms a certificate: a million cases would take
  // most of an hour on two cores, so this parser gets at most 50,000.
  { runs: Math.min(FUZZ_RUNS, 50_000), perCaseMs: 3 },
);

fuzzIt(
  'tls/identityFromCertificate',
  'intact certificates: SANs as issued',
  fc.nat(2),
  (which) => {
    const id = identityFromCertificate(ders[which]!);
    if (which === 0)
      check(id.spiffeId === 'spiffe://fuzz.test/ns/a/sa/b' && id.trustDomain === 'fuzz.test', 'svid');
    if (which === 1) {
      check(id.dnsNames.join() === 'fuzz.test,*.fuzz.test', `dns ${id.dnsNames.join()}`);
      check(id.ipAddresses.length === 2, `ips ${id.ipAddresses.join()}`);
    }
  },
  { runs: Math.min(FUZZ_RUNS, 200), perCaseMs: 6 },
);

const BEGIN = '-----BEGIN CERTIFICATE-----';
const END = '-----END CERTIFICATE-----';

fuzzIt(
  'tls/pem-bundle',
  'any bundle text: certificates or ERR_SOCK_INVALID_OPTION (tls-cert-invalid)',
  fc.oneof(
    fc.string({ maxLength: 80 }),
    fc
      .array(
        fc.oneof(
          fc.nat(2).map((i) => pems[i] ?? ''),
          fc.constantFrom(BEGIN, END, '\n', 'junk', 'MIIB'),
          fc.tuple(fc.nat(2), fc.nat()).map(([i, n]) => (pems[i] ?? '').slice(0, n % 600)),
          fc
            .tuple(fc.nat(2), edits)
            .map(([i, x]) => mutate(Buffer.from(pems[i] ?? ''), x).toString('latin1')),
        ),
        { maxLength: 4 },
      )
      .map((parts) => parts.join('')),
  ),
  (text) => {
    try {
      const certs = parseCertificates(Buffer.from(text, 'latin1'), 'fuzz');
      check(certs.length === text.split(BEGIN).length - 1, 'one certificate per block');
    } catch (err) {
      expectTyped(err, ['ERR_SOCK_INVALID_OPTION']);
      check((err as SockError).reason === 'tls-cert-invalid', `reason ${(err as SockError).reason}`);
    }
  },
  { runs: Math.ceil(FUZZ_RUNS / 4), perCaseMs: 1 },
);

describe('regressions found by fuzzing', () => {
  it('every single-byte corruption of a certificate is an identity or a typed error', () => {
    // A byte flipped inside the public key passed the outer parse and threw a raw OpenSSL error.
    const der = ders[0]!;
    let typed = 0;
    for (let i = 0; i < der.length; i++) {
      try {
        identityFromCertificate(mutate(der, [[i, 1]]));
      } catch (err) {
        expect(SockError.isInstance(err) && err.reason).toBe('tls-cert-invalid');
        typed++;
      }
    }
    expect(typed).toBeGreaterThan(0);
  }, 30_000);
});
