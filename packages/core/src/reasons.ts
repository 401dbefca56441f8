/**
 * The reasons core itself closes or reports a connection with (observer `reject` events, `CloseInfo`,
 * `SockError.reason`, `stats().rejected`, guards' strikes). Stable strings: dashboards, alerts and strike
 * weights key on them. Plug-ins bring their own (guards' `GuardReason`, TLS's `TlsReason`).
 */
export const SockReason = {
  /** A frame exceeded `maxFrameBytes` (the peer's fault: it is struck). */
  FRAME_TOO_LARGE: 'frame-too-large',
  /** A frame failed to decode (not JSON, not UTF-8, …). */
  INVALID_MESSAGE: 'invalid-message',
  /** A decoded message failed its Standard Schema. */
  VALIDATION_FAILED: 'validation-failed',
  /** The socket failed (reset, broken pipe) or could not listen. */
  SOCKET_ERROR: 'socket-error',
  /** The transport's handshake (TLS, …) failed without a reason of its own. */
  HANDSHAKE_FAILED: 'handshake-failed',
  /** The peer ended the connection. */
  PEER_CLOSED: 'peer-closed',
  /** We closed it (`conn.close()`, the handler returned). */
  CLOSED: 'closed',
  /** The server is shutting down. */
  SERVER_CLOSING: 'server-closing',
  /** `close({ drainMs })` ran out of time; what was left was cut. */
  DRAIN_TIMEOUT: 'drain-timeout',
  /** The handler (or `onMessage`) threw: our fault, never the peer's. */
  HANDLER_ERROR: 'handler-error',
  /** Our own message could not be encoded or framed. */
  ENCODE_FAILED: 'encode-failed',
  /** The peer does not read: what we queued for it passed `maxWriteBufferBytes`. */
  WRITE_BUFFER_FULL: 'write-buffer-full',
  /** A plug-in hook threw: the operator's bug (`fault: 'server'`), never the peer's. */
  PLUGIN_ERROR: 'plugin-error',
} as const;

/** One of core's own reasons. */
export type SockReason = (typeof SockReason)[keyof typeof SockReason];
