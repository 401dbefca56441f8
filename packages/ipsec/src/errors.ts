/**
 * Every failure a caller may handle differently has its own stable code. Codes never change meaning;
 * new ones may be added.
 */
export const IpsecErrorCode = {
  /** A connection name, address, CIDR, identity, proposal, path or option is invalid; the message names it. */
  INVALID_OPTION: 'ERR_SOCK_IPSEC_INVALID_OPTION',
  /** A proposal or setting below the safe defaults was asked for without its loudly named opt-in. */
  INSECURE: 'ERR_SOCK_IPSEC_INSECURE',
  /** The VICI socket could not be reached (missing, refused, not permitted). */
  CONNECT_FAILED: 'ERR_SOCK_IPSEC_CONNECT_FAILED',
  /** The daemon closed the VICI socket while a command or event registration was in flight. */
  DISCONNECTED: 'ERR_SOCK_IPSEC_DISCONNECTED',
  /** A command got no complete answer within its timeout. */
  TIMEOUT: 'ERR_SOCK_IPSEC_TIMEOUT',
  /** The daemon sent a packet that breaks the VICI wire format (bad type, element, truncation…). */
  PROTOCOL: 'ERR_SOCK_IPSEC_PROTOCOL',
  /** A packet announced more bytes than `maxMessageBytes`: the connection was closed before buffering it. */
  MESSAGE_TOO_LARGE: 'ERR_SOCK_IPSEC_MESSAGE_TOO_LARGE',
  /** A message nests sections or lists deeper than `maxDepth`. */
  TOO_DEEP: 'ERR_SOCK_IPSEC_TOO_DEEP',
  /** A message to send cannot be encoded (key over 255 bytes, value over 65535 bytes, list in a list…). */
  ENCODE: 'ERR_SOCK_IPSEC_ENCODE',
  /** The daemon does not know the command or event (CMD_UNKNOWN / EVENT_UNKNOWN). */
  UNKNOWN_COMMAND: 'ERR_SOCK_IPSEC_UNKNOWN_COMMAND',
  /** The daemon answered `success = no`; `details.errmsg` holds its reason. */
  COMMAND_FAILED: 'ERR_SOCK_IPSEC_COMMAND_FAILED',
  /** An external command (`ip`) failed or could not be started. */
  EXEC_FAILED: 'ERR_SOCK_IPSEC_EXEC_FAILED',
  /** A subscriber did not read its events and more than `maxQueuedEvents` waited. */
  EVENTS_OVERFLOW: 'ERR_SOCK_IPSEC_EVENTS_OVERFLOW',
  /** The client was closed. */
  CLOSED: 'ERR_SOCK_IPSEC_CLOSED',
  /** The operation was aborted through its `signal`. */
  ABORTED: 'ERR_SOCK_IPSEC_ABORTED',
} as const;

/** One of the stable `ERR_SOCK_IPSEC_*` codes. */
export type IpsecErrorCode = (typeof IpsecErrorCode)[keyof typeof IpsecErrorCode];

/**
 * Its own marker, not core's `sock.error`: an IpsecError is not a SockError (no `reason`, no `issues`), so
 * `SockError.isInstance` must not accept it. Shared across copies of this package through the registry.
 */
const MARKER = Symbol.for('sock.ipsec-error');

/** Options of an {@link IpsecError}. */
export interface IpsecErrorOptions {
  cause?: unknown;
  /** Extra structured detail (the field, the daemon's errmsg, the command…). */
  details?: Record<string, unknown>;
}

/**
 * The only error this package throws. Check with `IpsecError.isInstance(err)` (works across duplicated
 * copies of the package) and branch on `err.code`.
 */
export class IpsecError extends Error {
  override readonly name = 'IpsecError';
  readonly code: IpsecErrorCode;
  readonly details: Record<string, unknown>;
  readonly [MARKER] = true;

  constructor(code: IpsecErrorCode, message: string, options: IpsecErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details ?? {};
  }

  /** True for an IpsecError, even from another copy of this package. */
  static isInstance(value: unknown): value is IpsecError {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[MARKER] === true;
  }
}

/** Show user input safely inside an error message: quoted, escaped, truncated. */
export function quote(input: unknown): string {
  let text: string;
  try {
    text = typeof input === 'string' ? input : String(input);
  } catch {
    text = Object.prototype.toString.call(input);
  }
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text);
}

/** Throw ABORTED if the signal has fired. */
export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted)
    throw new IpsecError(IpsecErrorCode.ABORTED, `${what}: aborted by its signal`, { cause: signal.reason });
}
