import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { createCA, type DevCertificate, issueServerCert } from './dev-pki.js';
import { identityFromCertificate } from './identity.js';
import { checkPair, parseCertificates, readPem, readPemSync, sourceDirs } from './material.js';

let leaf: DevCertificate;
let other: DevCertificate;
beforeAll(async () => {
  const ca = await createCA();
  [leaf, other] = await Promise.all([
    issueServerCert(ca, { names: ['a.test'] }),
    issueServerCert(ca, { names: ['b.test'] }),
  ]);
});

describe('certificate material', () => {
  it('reads PEM text and files, and says when a string looks like a path', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sock-pem-'));
    try {
      const path = join(dir, 'tls.crt');
      await writeFile(path, leaf.cert);
      expect(readPemSync({ path }, 'cert').toString()).toBe(leaf.cert);
      expect((await readPem({ path }, 'cert')).toString()).toBe(leaf.cert);
      expect(readPemSync(leaf.cert, 'cert').toString()).toBe(leaf.cert);
      expect(() => readPemSync(path, 'cert')).toThrow(/pass \{ path/);
      await expect(readPem({ path: join(dir, 'missing') }, 'cert')).rejects.toMatchObject({
        reason: 'tls-cert-unreadable',
      });
      expect(sourceDirs([{ path }, leaf.cert, undefined, { path: join(dir, 'tls.key') }])).toEqual([dir]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses truncated bundles, mismatched keys and dates out of range', () => {
    const now = Date.now();
    expect(checkPair(Buffer.from(leaf.cert), Buffer.from(leaf.key), undefined, 'x', now).leaf.subject).toBe(
      'CN=a.test',
    );
    const chain = Buffer.from(leaf.cert + other.cert);
    expect(parseCertificates(chain, 'chain').length).toBe(2);
    const cut = Buffer.from(leaf.cert + other.cert.slice(0, 100));
    expect(() => parseCertificates(cut, 'chain')).toThrow(/truncated/);
    expect(() => checkPair(Buffer.from(leaf.cert), Buffer.from(other.key), undefined, 'x', now)).toThrow(
      expect.objectContaining({ reason: 'tls-key-mismatch' }),
    );
    expect(() =>
      checkPair(Buffer.from(leaf.cert), Buffer.from(leaf.key.slice(0, 80)), undefined, 'x', now),
    ).toThrow(expect.objectContaining({ reason: 'tls-key-invalid' }));
    expect(() =>
      checkPair(Buffer.from(leaf.cert), Buffer.from(leaf.key), undefined, 'x', now + 5 * 365 * 86_400_000),
    ).toThrow(expect.objectContaining({ reason: 'tls-cert-expired' }));
    expect(() =>
      checkPair(Buffer.from(leaf.cert), Buffer.from(leaf.key), undefined, 'x', now - 86_400_000),
    ).toThrow(expect.objectContaining({ reason: 'tls-cert-not-yet-valid' }));
  });

  it('parses any input to certificates or a SockError, never anything else (property)', () => {
    const begin = '-----BEGIN CERTIFICATE-----\n';
    const end = '\n-----END CERTIFICATE-----\n';
    const body = leaf.cert.slice(begin.length, leaf.cert.indexOf('-----END'));
    const pieces = fc.constantFrom(begin, end, body, body.slice(0, 40), leaf.cert, 'junk', '\n');
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.array(pieces, { maxLength: 6 }).map((a) => a.join('')),
        ),
        (text) => {
          try {
            const certs = parseCertificates(Buffer.from(text), 'x');
            expect(certs.length).toBeGreaterThan(0);
          } catch (err) {
            expect((err as { reason?: string }).reason).toBe('tls-cert-invalid');
          }
        },
      ),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        try {
          identityFromCertificate(bytes);
        } catch (err) {
          expect((err as { reason?: string }).reason).toBe('tls-cert-invalid');
        }
      }),
      { numRuns: 300 },
    );
  });
});
