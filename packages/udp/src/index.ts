/**
 * @packageDocumentation
 * UDP for sock: datagram sockets with size limits and codecs, per-datagram guards, request/response with
 * retries and duplicate suppression, anti-amplification (QUIC's 3× rule) and stateless address-validation
 * cookies, all reported through core's observer.
 *
 * @example
 * ```ts
 * import { createUdpClient, createUdpServer } from '@sock/udp';
 * import { json } from '@sock/core';
 *
 * const server = createUdpServer({ codec: json(), cookies: {}, handler: (req) => ({ echo: req }) });
 * const { port } = await server.bind({ host: '127.0.0.1', port: 0 });
 * const client = createUdpClient({ host: '127.0.0.1', port, codec: json() });
 * console.log(await client.request({ hello: 'world' })); // { echo: { hello: 'world' } }
 * ```
 */
export type {
  DatagramChecker,
  DatagramGuard,
  DatagramSource,
  DatagramViolation,
} from './admission.js';
export type { AmplificationOptions } from './amplification.js';
export {
  createUdpClient,
  type UdpClient,
  type UdpClientOptions,
  type UdpClientStats,
  type UdpRequestOptions,
} from './client.js';
export {
  type AddressCookieOptions,
  type AddressCookies,
  addressCookies,
  type CookieCheck,
} from './cookie.js';
export type { EndpointOptions, UdpAddress, UdpBindOptions, UdpStats } from './endpoint.js';
export {
  type Envelope,
  EnvelopeKind,
  encodeEnvelope,
  parseEnvelope,
} from './envelope.js';
export { DEFAULT_MAX_PAYLOAD_BYTES, MAX_UDP_PAYLOAD_BYTES } from './limits.js';
export {
  createUdpServer,
  type ResponseCacheOptions,
  type UdpRequestContext,
  type UdpServer,
  type UdpServerOptions,
  type UdpServerStats,
} from './server.js';
export {
  createUdpSocket,
  type Datagram,
  type UdpConnectOptions,
  type UdpSendOptions,
  type UdpSocket,
  type UdpSocketOptions,
} from './socket.js';
export type { UnvalidatedLimitOptions } from './unvalidated-limit.js';
