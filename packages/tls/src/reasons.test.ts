import { describe, expect, it } from 'vitest';
import { isVerifyCode, reasonForHandshakeError, reasonForVerifyCode, TlsReason } from './reasons.js';

describe('reasons', () => {
  it('maps verification codes', () => {
    expect(reasonForVerifyCode('CERT_HAS_EXPIRED')).toBe(TlsReason.CERT_EXPIRED);
    expect(reasonForVerifyCode('UNABLE_TO_GET_ISSUER_CERT_LOCALLY')).toBe(TlsReason.UNKNOWN_CA);
    expect(reasonForVerifyCode('DEPTH_ZERO_SELF_SIGNED_CERT')).toBe(TlsReason.UNKNOWN_CA);
    expect(reasonForVerifyCode('INVALID_PURPOSE')).toBe(TlsReason.WRONG_PURPOSE);
    expect(reasonForVerifyCode('SOMETHING_NEW')).toBe(TlsReason.CERT_INVALID);
    expect(reasonForVerifyCode(undefined)).toBe(TlsReason.CERT_INVALID);
    expect(isVerifyCode('CERT_HAS_EXPIRED')).toBe(true);
    expect(isVerifyCode('ECONNRESET')).toBe(false);
  });

  it('maps handshake errors', () => {
    const err = (code: string, message = '') => Object.assign(new Error(message), { code });
    expect(reasonForHandshakeError(err('ERR_SSL_UNSUPPORTED_PROTOCOL'))).toBe(TlsReason.PROTOCOL_VERSION);
    expect(reasonForHandshakeError(err('ERR_SSL_NO_SHARED_CIPHER'))).toBe(TlsReason.NO_SHARED_CIPHER);
    expect(reasonForHandshakeError(err('ERR_SSL_HTTP_REQUEST'))).toBe(TlsReason.NOT_TLS);
    expect(reasonForHandshakeError(err('ECONNRESET'))).toBe(TlsReason.PEER_CLOSED);
    expect(reasonForHandshakeError(err('ERR_SSL_NO_APPLICATION_PROTOCOL'))).toBe(TlsReason.ALPN_MISMATCH);
    expect(reasonForHandshakeError(err('X', 'boom'))).toBe(TlsReason.HANDSHAKE_FAILED);
    expect(reasonForHandshakeError(undefined)).toBe(TlsReason.HANDSHAKE_FAILED);
  });
});
