import { describe, expect, it } from 'vitest';
import {
  describePeerAlert,
  isPeerAlert,
  isVerifyCode,
  reasonForHandshakeError,
  reasonForVerifyCode,
  TlsReason,
} from './reasons.js';

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

  it('maps the alerts a refusing server sends, and describes them', () => {
    const alert = (code: string, n: number) =>
      Object.assign(new Error(`...:ssl3_read_bytes:tlsv1 alert:...:SSL alert number ${n}\n`), { code });
    const cases: Array<[string, number, TlsReason, string]> = [
      ['ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', 116, TlsReason.NO_CLIENT_CERT, 'certificate_required'],
      ['ERR_SSL_TLSV1_ALERT_UNKNOWN_CA', 48, TlsReason.UNKNOWN_CA, 'unknown_ca'],
      ['ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED', 45, TlsReason.CERT_EXPIRED, 'certificate_expired'],
      ['ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED', 44, TlsReason.CERT_REVOKED, 'certificate_revoked'],
      ['ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE', 42, TlsReason.CERT_INVALID, 'bad_certificate'],
      ['ERR_SSL_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE', 43, TlsReason.WRONG_PURPOSE, 'unsupported_certificate'],
      ['ERR_SSL_TLSV1_ALERT_ACCESS_DENIED', 49, TlsReason.UNAUTHORIZED, 'access_denied'],
    ];
    for (const [code, n, reason, name] of cases) {
      const err = alert(code, n);
      expect(isPeerAlert(err), code).toBe(true);
      expect(reasonForHandshakeError(err), code).toBe(reason);
      expect(describePeerAlert(err)).toMatch(new RegExp(`^the ${name} alert \\(${n}\\): \\w`));
    }
    // A generic alert names no cause.
    const generic = alert('ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE', 40);
    expect(reasonForHandshakeError(generic)).toBe(TlsReason.HANDSHAKE_FAILED);
    expect(describePeerAlert(generic)).toBe('the handshake_failure alert (40)');
    expect(isPeerAlert(Object.assign(new Error('x'), { code: 'ECONNRESET' }))).toBe(false);
  });
});
