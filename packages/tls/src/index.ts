/**
 * @packageDocumentation
 * TLS and mutual TLS for @sock/core: Mozilla intermediate defaults, client-certificate verification with
 * reported reasons, authorization from certificates (SPIFFE, DNS, CN, SPKI pins), hot reload, SNI, ALPN,
 * a handshake deadline, a verifying client. The development PKI is `@sock/tls/pki`.
 *
 * @example
 * ```ts
 * import { createServer } from '@sock/core';
 * import { tlsTransport } from '@sock/tls';
import { createCA, issueServerCert } from '@sock/tls/pki';
 *
 * const ca = await createCA();
 * const { cert, key } = await issueServerCert(ca, { names: ['localhost', '127.0.0.1'] });
 * const server = createServer({
 *   transport: tlsTransport({ cert, key }),
 *   async handler(conn) {
 *     for await (const message of conn) await conn.send(message);
 *   },
 * });
 * await server.listen({ port: 0 });
 * ```
 */
export { spkiPin, type TlsClientOptions, type TlsClientTransport, tlsClient } from './client.js';
export { identityFromCertificate, type PeerIdentity } from './identity.js';
export type { KeyPair, PemSource } from './material.js';
export type { OcspStaplingOptions } from './ocsp.js';
export type { AuthorizationPolicy, AuthorizationRule, AuthorizeFunction } from './policy.js';
export {
  CURVES,
  INTERMEDIATE_TLS12_CIPHERS,
  type ProfileOptions,
  type ProtocolOptions,
  protocolOptions,
  TLS13_CIPHERSUITES,
  type TlsProfile,
} from './profile.js';
export { TlsReason } from './reasons.js';
export { parseSpiffeId, type SpiffeId } from './spiffe.js';
export { type SessionTicketOptions, type SharedTicketKeys, shareTicketKeys } from './ticket-keys.js';
export {
  type CertificateInfo,
  type ClientAuth,
  peerIdentity,
  type ReloadInfo,
  type ReloadOptions,
  type TlsServerTransport,
  type TlsTransportOptions,
  type TlsTransportStats,
  tlsTransport,
} from './transport.js';
