/**
 * Every error sock raises is a `SockError` with a stable `code`. Check with `SockError.isInstance(err)`
 * rather than `instanceof`: it works across duplicated copies of the package in one process.
 */
const marker = Symbol.for('sock.error');

export const SockErrorCode = {
  /** A frame (inbound header, inbound bytes without delimiter, or outbound payload) exceeds maxFrameBytes. */
  FRAME_TOO_LARGE: 'ERR_SOCK_FRAME_TOO_LARGE',
  /** An outbound payload cannot be framed (for example it contains the delimiter). */
  INVALID_FRAME: 'ERR_SOCK_INVALID_FRAME',
  /** A frame is not valid JSON (or not valid UTF-8 text). */
  INVALID_MESSAGE: 'ERR_SOCK_INVALID_MESSAGE',
  /** A decoded message failed Standard Schema validation; `issues` lists why. */
  VALIDATION_FAILED: 'ERR_SOCK_VALIDATION_FAILED',
  /** The peer does not read: queued outbound bytes would exceed maxWriteBufferBytes. */
  WRITE_BUFFER_FULL: 'ERR_SOCK_WRITE_BUFFER_FULL',
  /** send() or iteration on a connection that is closed or closing. */
  CONNECTION_CLOSED: 'ERR_SOCK_CONNECTION_CLOSED',
  /** The peer reset the connection (ECONNRESET, EPIPE). */
  CONNECTION_RESET: 'ERR_SOCK_CONNECTION_RESET',
  /** Nothing listens at the address (ECONNREFUSED). */
  CONNECTION_REFUSED: 'ERR_SOCK_CONNECTION_REFUSED',
  /** connect() did not complete within its timeout. */
  CONNECT_TIMEOUT: 'ERR_SOCK_CONNECT_TIMEOUT',
  /** A request got no reply within its timeout, after all its attempts (request/response over UDP). */
  REQUEST_TIMEOUT: 'ERR_SOCK_REQUEST_TIMEOUT',
  /** The operation was aborted through its AbortSignal. */
  ABORTED: 'ERR_SOCK_ABORTED',
  /** A pipeline plug-in (or core itself) rejected the connection; `reason` says why. */
  REJECTED: 'ERR_SOCK_REJECTED',
  /** An option has a wrong type or value; the message names it. */
  INVALID_OPTION: 'ERR_SOCK_INVALID_OPTION',
  /** The server is not listening, or already closed. */
  SERVER_NOT_RUNNING: 'ERR_SOCK_SERVER_NOT_RUNNING',
  /** The connection handler threw or rejected. */
  HANDLER_FAILED: 'ERR_SOCK_HANDLER_FAILED',
  /** Any other socket-level failure; `cause` carries the system error. */
  SOCKET_ERROR: 'ERR_SOCK_SOCKET_ERROR',
} as const;

export type SockErrorCode = (typeof SockErrorCode)[keyof typeof SockErrorCode];

export interface SockErrorOptions {
  cause?: unknown;
  /** The pipeline reason code when this error closes a connection (e.g. `frame-too-large`). */
  reason?: string;
  /** Validation issues for ERR_SOCK_VALIDATION_FAILED. */
  issues?: ReadonlyArray<SockIssue>;
}

/** One validation problem, as Standard Schema reports it. */
export interface SockIssue {
  readonly message: string;
  readonly path?: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined;
}

export class SockError extends Error {
  override readonly name: string = 'SockError';
  readonly code: SockErrorCode;
  readonly reason: string | undefined;
  readonly issues: ReadonlyArray<SockIssue> | undefined;
  readonly [marker] = true;

  constructor(code: SockErrorCode, message: string, options: SockErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.reason = options.reason;
    this.issues = options.issues;
  }

  /** True for any SockError, including one from another copy of this package. */
  static isInstance(value: unknown): value is SockError {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[marker] === true;
  }
}

/** How `toSockError` labels an error that is not already a SockError. */
export interface ToSockErrorOptions {
  /**
   * The code for an error that is not a SockError. Default: from a Node system error's code
   * (`ECONNREFUSED` → `ERR_SOCK_CONNECTION_REFUSED`, `ECONNRESET`/`EPIPE` → `ERR_SOCK_CONNECTION_RESET`,
   * `ABORT_ERR` → `ERR_SOCK_ABORTED`), else `ERR_SOCK_SOCKET_ERROR`.
   */
  code?: SockErrorCode;
  /** The pipeline reason, when the error closes a connection. */
  reason?: string;
}

/** What a Node system error's code means to a caller who may retry (given no explicit `code`). */
const SYSTEM_ERRORS: Readonly<Record<string, readonly [SockErrorCode, string]>> = {
  ECONNREFUSED: [SockErrorCode.CONNECTION_REFUSED, 'connection refused'],
  ECONNRESET: [SockErrorCode.CONNECTION_RESET, 'connection reset by peer'],
  EPIPE: [SockErrorCode.CONNECTION_RESET, 'connection reset by peer'],
  ABORT_ERR: [SockErrorCode.ABORTED, 'aborted'],
};

/**
 * Any failure as a SockError, the one way every sock package wraps what it caught: a SockError (from any
 * copy of core) is returned as it is; anything else becomes `code` (or what its system error code means)
 * with the message `context: what failed`, the original as `cause`.
 */
export function toSockError(err: unknown, context: string, options: ToSockErrorOptions = {}): SockError {
  if (SockError.isInstance(err)) return err;
  const system =
    options.code === undefined
      ? SYSTEM_ERRORS[(err as NodeJS.ErrnoException | undefined)?.code ?? '']
      : undefined;
  const code = system?.[0] ?? options.code ?? SockErrorCode.SOCKET_ERROR;
  const detail = system?.[1] ?? (err as Error | undefined)?.message ?? String(err);
  return new SockError(code, `${context}: ${detail}`, {
    cause: err,
    ...(options.reason === undefined ? {} : { reason: options.reason }),
  });
}
