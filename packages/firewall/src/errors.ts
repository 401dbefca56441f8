/**
 * Every failure a caller may handle differently has its own stable code. Codes never change meaning;
 * new ones may be added.
 */
export const FirewallErrorCode = {
  /** An address or CIDR could not be parsed (hostile or malformed input included). */
  INVALID_ADDRESS: 'ERR_SOCK_FW_INVALID_ADDRESS',
  /** A CIDR prefix broader than /8 (IPv4) or /32 (IPv6) without `force: 'broad-prefix'`. */
  PREFIX_TOO_BROAD: 'ERR_SOCK_FW_PREFIX_TOO_BROAD',
  /** A port is not an integer in 1..65535. */
  INVALID_PORT: 'ERR_SOCK_FW_INVALID_PORT',
  /** A protocol is not `tcp` or `udp`. */
  INVALID_PROTOCOL: 'ERR_SOCK_FW_INVALID_PROTOCOL',
  /** A duration is not a positive number of ms or a string such as `'10m'`. */
  INVALID_DURATION: 'ERR_SOCK_FW_INVALID_DURATION',
  /** An option (table name, netns name, binary path, …) is invalid. */
  INVALID_OPTION: 'ERR_SOCK_FW_INVALID_OPTION',
  /** The ban would cut off loopback, this host, the SSH peer or an admin CIDR. */
  LOCKOUT: 'ERR_SOCK_FW_LOCKOUT',
  /** A CIDR ban overlaps a CIDR that is already banned. */
  OVERLAP: 'ERR_SOCK_FW_OVERLAP',
  /** No backend is usable (auto-detection): see `cause` for each reason. */
  NO_BACKEND: 'ERR_SOCK_FW_NO_BACKEND',
  /** Not root and no CAP_NET_ADMIN, or the kernel refused permission. */
  NOT_PERMITTED: 'ERR_SOCK_FW_NOT_PERMITTED',
  /** A required binary (nft, iptables-restore, ipset, …) was not found. */
  BINARY_MISSING: 'ERR_SOCK_FW_BINARY_MISSING',
  /** An external command exited non-zero, timed out, or could not be started. */
  COMMAND_FAILED: 'ERR_SOCK_FW_COMMAND_FAILED',
  /** The state file is unreadable, malformed, or could not be written. */
  STATE_FILE: 'ERR_SOCK_FW_STATE_FILE',
  /** `restore()` was asked to restore from a state file that does not exist. */
  STATE_MISSING: 'ERR_SOCK_FW_STATE_MISSING',
  /** A change failed half-way (or its state could not be written) and putting the kernel back failed too. */
  ROLLBACK_FAILED: 'ERR_SOCK_FW_ROLLBACK_FAILED',
  /** An address no kernel set can hold or no packet comes from (0.0.0.0, ::, multicast, broadcast). */
  UNBANNABLE: 'ERR_SOCK_FW_UNBANNABLE',
  /**
   * nftables: `allowPort` cannot open the port because another table drops the traffic at the same hook
   * (an accept in our table does not stop another table's drop). The message names table and chain.
   */
  ALLOW_SHADOWED: 'ERR_SOCK_FW_ALLOW_SHADOWED',
  /** The ban bridge dropped a ban because too many were waiting. */
  RATE_LIMITED: 'ERR_SOCK_FW_RATE_LIMITED',
  /** The operation was aborted through its `signal`. */
  ABORTED: 'ERR_SOCK_FW_ABORTED',
} as const;

/** One of the stable `ERR_SOCK_FW_*` codes. */
export type FirewallErrorCode = (typeof FirewallErrorCode)[keyof typeof FirewallErrorCode];

/**
 * Its own marker, not core's `sock.error`: a FirewallError is not a SockError (no `reason`, no `issues`),
 * so `SockError.isInstance` must not accept it. Shared across copies of this package through the registry.
 */
const MARKER = Symbol.for('sock.firewall-error');

/** Options of a {@link FirewallError}. */
export interface FirewallErrorOptions {
  cause?: unknown;
  /** Extra structured detail (the offending input, the failing element, the command…). */
  details?: Record<string, unknown>;
}

/**
 * The only error this package throws. Check with `FirewallError.isInstance(err)` (works across
 * duplicated copies of the package) and branch on `err.code`.
 */
export class FirewallError extends Error {
  override readonly name = 'FirewallError';
  readonly code: FirewallErrorCode;
  readonly details: Record<string, unknown>;
  readonly [MARKER] = true;

  constructor(code: FirewallErrorCode, message: string, options: FirewallErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details ?? {};
  }

  /** True for a FirewallError, even from another copy of this package. */
  static isInstance(value: unknown): value is FirewallError {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[MARKER] === true;
  }
}

/** Show user input safely inside an error message: quoted, escaped, truncated. */
export function quote(input: unknown): string {
  let text: string;
  try {
    text = typeof input === 'string' ? input : String(input);
  } catch {
    // Objects without a usable toString (Object.create(null), { toString: undefined }) or one that throws.
    text = Object.prototype.toString.call(input);
  }
  const shown = text.length > 80 ? `${text.slice(0, 80)}…` : text;
  return JSON.stringify(shown);
}

/** Throw ABORTED if the signal has fired. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw new FirewallError(
      FirewallErrorCode.ABORTED,
      'operation aborted by its signal; nothing more was run',
      {
        cause: signal.reason,
      },
    );
  }
}
