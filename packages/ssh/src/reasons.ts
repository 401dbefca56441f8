import { SockError, SockErrorCode, toSockError } from '@sock/core';

/**
 * Reason codes this package reports: on errors (`error.reason`), through core's observer `reject`
 * events and `stats().rejected`, and to guards as strikes. Stable strings: alerts key on them.
 */
export const SshReason = {
  /** The server's host key is in no known_hosts entry and matches no pinned fingerprint. */
  HOST_KEY_UNKNOWN: 'ssh-host-key-unknown',
  /** known_hosts has a different key for this host (or the key is marked @revoked): possible interception. */
  HOST_KEY_MISMATCH: 'ssh-host-key-mismatch',
  /** The SSH server refused every authentication method we offered. */
  AUTH_REJECTED: 'ssh-auth-rejected',
  /** The SSH server refused to open the channel (destination not permitted, or unreachable). */
  CHANNEL_REFUSED: 'ssh-channel-refused',
  /** The SSH connection failed or closed (protocol error, peer went away). */
  CONNECTION_FAILED: 'ssh-connection-failed',
  /** Server side: a client failed to authenticate (counted as a strike by guards). */
  AUTH_FAILED: 'ssh-auth-failed',
  /** Server side: no successful authentication within `authTimeoutMs` (slowloris on the handshake). */
  AUTH_TIMEOUT: 'ssh-auth-timeout',
  /** Server side: the identification string or key exchange failed (not SSH, no common algorithm). */
  HANDSHAKE_FAILED: 'ssh-handshake-failed',
} as const;

export type SshReason = (typeof SshReason)[keyof typeof SshReason];

/** A SockError (`ERR_SOCK_REJECTED`) carrying one of the reasons above. */
export function sshError(reason: SshReason, message: string, cause?: unknown): SockError {
  return new SockError(SockErrorCode.REJECTED, `ssh: ${message}`, { reason, cause });
}

export function invalidOption(message: string): SockError {
  return new SockError(SockErrorCode.INVALID_OPTION, message);
}

/** The SockError core's retry logic understands, for a socket failure on the way to the SSH server. */
export function socketError(err: unknown, context: string): SockError {
  // On the way to the server a timeout is a connect timeout (retried); the rest is core's one mapping.
  const timedOut = (err as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT';
  return toSockError(err, context, timedOut ? { code: SockErrorCode.CONNECT_TIMEOUT } : {});
}
