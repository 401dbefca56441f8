/**
 * @packageDocumentation
 * TCP server and client with framing limits, validated messages, backpressure, graceful shutdown, typed
 * errors, and the connection pipeline every other sock package plugs into.
 *
 * @example
 * ```ts
 * import { createServer, delimited, json } from '@sock/core';
 *
 * const server = createServer({
 *   framing: delimited({ maxFrameBytes: 4096 }),
 *   codec: json(),
 *   async handler(conn) {
 *     for await (const message of conn) await conn.send({ echo: message });
 *   },
 * });
 * const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
 * ```
 */
export type { BackoffOptions } from './backoff.js';
export { type ConnectOptions, connect, reconnect, tcp } from './client.js';
export type { Clock } from './clock.js';
export { bytes, type Codec, type JsonOptions, json, text } from './codec.js';
export type {
  Connection,
  ConnectionOptions,
  FrameTooLargePolicy,
  InvalidMessagePolicy,
  SendOptions,
} from './connection.js';
export { parseDuration } from './duration.js';
export {
  SockError,
  SockErrorCode,
  type SockErrorOptions,
  type SockIssue,
  type ToSockErrorOptions,
  toSockError,
} from './errors.js';
export { type DelimitedOptions, delimited } from './framing/delimited.js';
export {
  DEFAULT_MAX_FRAME_BYTES,
  type FrameDecoder,
  type FrameSink,
  type Framing,
} from './framing/framing.js';
export { type LengthPrefixedOptions, lengthPrefixed } from './framing/length-prefixed.js';
export { type RawOptions, raw } from './framing/raw.js';
export type { Observer, RejectEvent, SockEvent } from './observer.js';
export {
  type AdoptedPeer,
  type ClientTransport,
  type CloseInfo,
  type ConnectionControl,
  type ConnectionInfo,
  type ConnectionStats,
  type DialOptions,
  type PeerAddress,
  type Plugin,
  type Rejection,
  reject,
  type ServerTransport,
  type Stage,
  type Verdict,
  type Violation,
} from './pipeline.js';
export { SockReason } from './reasons.js';
export {
  type CloseOptions,
  createServer,
  type ListenOptions,
  type ServerAddress,
  type ServerOptions,
  type ServerStats,
  type SockServer,
} from './server.js';
export { validate } from './validate.js';
