import { createSecureContext } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { INTERMEDIATE_TLS12_CIPHERS, protocolOptions } from './profile.js';
import { resetWarnings } from './warn.js';

afterEach(() => resetWarnings());

describe('protocol profiles', () => {
  it('intermediate: TLS 1.2-1.3, six AEAD ECDHE suites, three curves, client cipher order', () => {
    const p = protocolOptions();
    expect(p).toMatchObject({
      minVersion: 'TLSv1.2',
      maxVersion: 'TLSv1.3',
      ecdhCurve: 'X25519:P-256:P-384',
      honorCipherOrder: false,
    });
    expect(INTERMEDIATE_TLS12_CIPHERS.split(':')).toEqual([
      'ECDHE-ECDSA-AES128-GCM-SHA256',
      'ECDHE-RSA-AES128-GCM-SHA256',
      'ECDHE-ECDSA-AES256-GCM-SHA384',
      'ECDHE-RSA-AES256-GCM-SHA384',
      'ECDHE-ECDSA-CHACHA20-POLY1305',
      'ECDHE-RSA-CHACHA20-POLY1305',
    ]);
    // OpenSSL accepts the strings (the suites actually negotiated are checked with openssl s_client).
    expect(() => createSecureContext(p)).not.toThrow();
  });

  it('modern: TLS 1.3 only', () => {
    expect(protocolOptions({ profile: 'modern' })).toMatchObject({
      minVersion: 'TLSv1.3',
      maxVersion: 'TLSv1.3',
    });
  });

  it('legacy only by its loud name, and never with modern', async () => {
    const warnings: Error[] = [];
    const on = (w: Error) => warnings.push(w);
    process.on('warning', on);
    try {
      expect(protocolOptions({ insecureAllowLegacyProtocols: true }).minVersion).toBe('TLSv1');
      expect(() => protocolOptions({ profile: 'modern', insecureAllowLegacyProtocols: true })).toThrow(
        /contradicts/,
      );
      expect(() => protocolOptions({ profile: 'old' as never })).toThrow(/intermediate/);
      protocolOptions({ insecureAllowLegacyProtocols: true });
      await new Promise((r) => setImmediate(r));
      expect(warnings.filter((w) => /insecureAllowLegacyProtocols/.test(w.message)).length).toBe(1);
    } finally {
      process.off('warning', on);
    }
  });
});
