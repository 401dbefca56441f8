import { DEFAULT_CIPHERS, type SecureContextOptions, type SecureVersion } from 'node:tls';
import { SockError, SockErrorCode } from '@sock/core';
import { warnOnce } from './warn.js';

/**
 * `intermediate` (default): Mozilla's server-side TLS guidelines 6.0, intermediate — TLS 1.2 and 1.3,
 * TLS 1.2 limited to ECDHE with AES-GCM or ChaCha20-Poly1305. `modern`: TLS 1.3 only.
 */
export type TlsProfile = 'intermediate' | 'modern';

/** The TLS 1.3 suites (OpenSSL's default set, as Mozilla lists them). */
export const TLS13_CIPHERSUITES =
  'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256';

/** Mozilla intermediate's six TLS 1.2 suites: forward secret, AEAD only. No CBC, no static RSA. */
export const INTERMEDIATE_TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

/** X25519, P-256, P-384 (X25519MLKEM768 is not in Node 20's OpenSSL). */
export const CURVES = 'X25519:P-256:P-384';

/** Which Mozilla profile a server or client uses, and the loud opt-in for legacy protocols. */
export interface ProfileOptions {
  /** Default `intermediate`. */
  profile?: TlsProfile | undefined;
  /**
   * Also accept TLS 1.0 and 1.1 and Node's own (CBC, SHA-1, static RSA) cipher list, at OpenSSL security
   * level 0. Only for talking to legacy peers you cannot upgrade; warns once per process.
   */
  insecureAllowLegacyProtocols?: boolean | undefined;
}

/** The `node:tls` secure-context options a profile sets: versions, ciphers, curves, cipher order. */
export type ProtocolOptions = Pick<
  SecureContextOptions,
  'minVersion' | 'maxVersion' | 'ciphers' | 'ecdhCurve' | 'honorCipherOrder'
>;

/** The protocol half of a secure context (versions, suites, curves, cipher order) for a profile. */
export function protocolOptions(options: ProfileOptions = {}): ProtocolOptions {
  const profile = options.profile ?? 'intermediate';
  if (profile !== 'intermediate' && profile !== 'modern') {
    throw new SockError(
      SockErrorCode.INVALID_OPTION,
      `profile must be "intermediate" or "modern", got ${JSON.stringify(profile)}`,
    );
  }
  if (options.insecureAllowLegacyProtocols === true) {
    if (profile === 'modern') {
      throw new SockError(
        SockErrorCode.INVALID_OPTION,
        'insecureAllowLegacyProtocols contradicts profile "modern"; drop one of them',
      );
    }
    warnOnce(
      'legacy-protocols',
      'insecureAllowLegacyProtocols: TLS 1.0/1.1, CBC and static-RSA suites are enabled; these are broken or deprecated (RFC 8996)',
    );
    return {
      minVersion: 'TLSv1' as SecureVersion,
      maxVersion: 'TLSv1.3',
      ciphers: `${DEFAULT_CIPHERS}:@SECLEVEL=0`,
      ecdhCurve: CURVES,
      honorCipherOrder: false,
    };
  }
  if (profile === 'modern') {
    return {
      minVersion: 'TLSv1.3',
      maxVersion: 'TLSv1.3',
      ciphers: TLS13_CIPHERSUITES,
      ecdhCurve: CURVES,
      honorCipherOrder: false,
    };
  }
  return {
    minVersion: 'TLSv1.2',
    maxVersion: 'TLSv1.3',
    ciphers: `${TLS13_CIPHERSUITES}:${INTERMEDIATE_TLS12_CIPHERS}`,
    ecdhCurve: CURVES,
    honorCipherOrder: false,
  };
}
