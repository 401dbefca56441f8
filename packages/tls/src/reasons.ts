/**
 * Rejection reasons this package reports through core (observer `reject` events, `stats().rejected`,
 * guards' strikes). Stable strings: dashboards and alerts key on them.
 */
export const TlsReason = {
  /** TCP opened, TLS not finished within `handshakeTimeout`. */
  HANDSHAKE_TIMEOUT: 'tls-handshake-timeout',
  /** The peer offered only protocol versions we refuse (TLS 1.0/1.1, SSLv3). */
  PROTOCOL_VERSION: 'tls-protocol-version',
  /**
   * No cipher suite in common (CBC, static RSA, … offered only). A client whose suites match but whose
   * curves do not (a P-521-only client) is `tls-handshake-failed`: OpenSSL reports it as a generic
   * handshake failure.
   */
  NO_SHARED_CIPHER: 'tls-no-shared-cipher',
  /** The bytes are not TLS at all (plain TCP, HTTP, a port scan). */
  NOT_TLS: 'tls-not-tls',
  /**
   * The client offered ALPN protocols and none of the server's, or (with `alpnRequired`) offered no ALPN
   * at all.
   */
  ALPN_MISMATCH: 'tls-alpn-mismatch',
  /** Any other handshake failure; the message says which. */
  HANDSHAKE_FAILED: 'tls-handshake-failed',
  /** The peer closed the connection during the handshake. */
  PEER_CLOSED: 'tls-peer-closed',
  /** clientAuth `require`, or a policy, and no client certificate was sent. */
  NO_CLIENT_CERT: 'tls-no-client-cert',
  /** The client certificate does not chain to a `ca` anchor. */
  UNKNOWN_CA: 'tls-unknown-ca',
  CERT_EXPIRED: 'tls-cert-expired',
  CERT_NOT_YET_VALID: 'tls-cert-not-yet-valid',
  CERT_REVOKED: 'tls-cert-revoked',
  /** The certificate is not for client authentication (no clientAuth extended key usage). */
  WRONG_PURPOSE: 'tls-wrong-purpose',
  /** Any other certificate verification failure (bad signature, malformed, …). */
  CERT_INVALID: 'tls-cert-invalid',
  /** The certificate is valid, the `authorize` policy said no. */
  UNAUTHORIZED: 'tls-unauthorized',
  /**
   * The client tried to renegotiate (TLS 1.2). Renegotiation is refused outright (it costs the server a
   * full handshake per attempt, a CPU DoS); the connection is closed and the attempt is a violation that
   * guards strike.
   */
  RENEGOTIATION: 'tls-renegotiation',
  /** A TLS error after the handshake (a forged or corrupt record, a fatal alert): the connection is closed. */
  TLS_ERROR: 'tls-error',
} as const;

export type TlsReason = (typeof TlsReason)[keyof typeof TlsReason];

const VERIFY_CODES = new Set([
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'INVALID_PURPOSE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_CHAIN_TOO_LONG',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_CA',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'HOSTNAME_MISMATCH',
]);

/** True for OpenSSL verification codes as Node reports them (`CERT_HAS_EXPIRED`, …). */
export function isVerifyCode(code: string | undefined): boolean {
  return code !== undefined && VERIFY_CODES.has(code);
}

/** Map an OpenSSL verification code (Node's `authorizationError`) to a reason. */
export function reasonForVerifyCode(code: string | undefined): TlsReason {
  switch (code) {
    case 'CERT_HAS_EXPIRED':
      return TlsReason.CERT_EXPIRED;
    case 'CERT_NOT_YET_VALID':
      return TlsReason.CERT_NOT_YET_VALID;
    case 'CERT_REVOKED':
      return TlsReason.CERT_REVOKED;
    case 'INVALID_PURPOSE':
      return TlsReason.WRONG_PURPOSE;
    case 'UNABLE_TO_GET_ISSUER_CERT':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'CERT_UNTRUSTED':
    case 'CERT_REJECTED':
      return TlsReason.UNKNOWN_CA;
    default:
      return TlsReason.CERT_INVALID;
  }
}

/**
 * Alerts a @sock/tls server sends when it refuses a client, as Node names them on the receiving side.
 * TLS 1.2 has no certificate_required alert: a missing certificate is handshake_failure there.
 */
const ALERT_REASONS: Readonly<Record<string, TlsReason>> = {
  ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED: TlsReason.NO_CLIENT_CERT,
  ERR_SSL_TLSV1_ALERT_UNKNOWN_CA: TlsReason.UNKNOWN_CA,
  ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED: TlsReason.CERT_EXPIRED,
  ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE: TlsReason.CERT_INVALID,
  ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED: TlsReason.CERT_REVOKED,
  ERR_SSL_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE: TlsReason.WRONG_PURPOSE,
  ERR_SSL_TLSV1_ALERT_ACCESS_DENIED: TlsReason.UNAUTHORIZED,
  ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL: TlsReason.ALPN_MISMATCH,
  ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION: TlsReason.PROTOCOL_VERSION,
};

/** What a refusal means for the client that receives it, by reason. */
const REFUSAL_MEANING: Readonly<Record<string, string>> = {
  [TlsReason.NO_CLIENT_CERT]: 'it requires a client certificate (give cert and key)',
  [TlsReason.UNKNOWN_CA]: 'it does not trust the CA that issued the client certificate',
  [TlsReason.CERT_EXPIRED]: 'the client certificate has expired or is not valid yet',
  [TlsReason.CERT_REVOKED]: 'the client certificate is revoked',
  [TlsReason.WRONG_PURPOSE]:
    'the client certificate is not for client authentication (no clientAuth extended key usage)',
  [TlsReason.CERT_INVALID]:
    'it cannot verify the client certificate (a bad signature or a malformed certificate)',
  [TlsReason.UNAUTHORIZED]:
    'the certificate is valid, but its authorization policy does not admit this client',
  [TlsReason.ALPN_MISMATCH]: 'no ALPN protocol in common',
  [TlsReason.PROTOCOL_VERSION]: 'no TLS version in common',
};

/**
 * A one-line description of a fatal alert the server sent, for error messages: its name, its number
 * and what it means ("the unknown_ca alert (48): it does not trust the CA that issued the client
 * certificate"), instead of OpenSSL's error-queue line.
 */
export function describePeerAlert(err: unknown): string {
  const code = String((err as NodeJS.ErrnoException | undefined)?.code ?? '');
  const message = String((err as Error | undefined)?.message ?? '');
  const name = /_ALERT_(\w+)$/.exec(code)?.[1]?.toLowerCase() ?? 'an';
  const number = /SSL alert number (\d+)/.exec(message)?.[1];
  const meaning = REFUSAL_MEANING[reasonForHandshakeError(err)];
  return `the ${name} alert${number ? ` (${number})` : ''}${meaning ? `: ${meaning}` : ''}`;
}

/** True when a TLS error is a fatal alert the peer sent (the peer refused us and said why). */
export function isPeerAlert(err: unknown): boolean {
  const code = String((err as NodeJS.ErrnoException | undefined)?.code ?? '');
  return /^ERR_SSL_(SSLV3|TLSV1|TLSV13)_ALERT_/.test(code);
}

/** Map a handshake error (Node's `ERR_SSL_*` codes) to a reason. */
export function reasonForHandshakeError(err: unknown): TlsReason {
  const code = String((err as NodeJS.ErrnoException | undefined)?.code ?? '');
  const message = String((err as Error | undefined)?.message ?? '');
  if (code === 'ECONNRESET' || code === 'EPIPE') return TlsReason.PEER_CLOSED;
  if (
    code === 'ERR_SSL_UNSUPPORTED_PROTOCOL' ||
    code === 'ERR_SSL_VERSION_TOO_LOW' ||
    code === 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION' ||
    /unsupported protocol|version too low|wrong ssl version/i.test(message)
  ) {
    return TlsReason.PROTOCOL_VERSION;
  }
  if (code === 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE') return TlsReason.NO_CLIENT_CERT;
  const alert = ALERT_REASONS[code];
  if (alert !== undefined) return alert;
  if (code === 'ERR_SSL_NO_SHARED_CIPHER' || /no shared cipher/i.test(message))
    return TlsReason.NO_SHARED_CIPHER;
  if (code === 'ERR_SSL_NO_APPLICATION_PROTOCOL' || /no application protocol/i.test(message)) {
    return TlsReason.ALPN_MISMATCH;
  }
  if (
    code === 'ERR_SSL_WRONG_VERSION_NUMBER' ||
    code === 'ERR_SSL_HTTP_REQUEST' ||
    /http request/i.test(message)
  ) {
    return TlsReason.NOT_TLS;
  }
  return TlsReason.HANDSHAKE_FAILED;
}
