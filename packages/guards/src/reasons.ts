import type { GuardName } from './guard-context.js';

/**
 * Every reason guards decide or report with: rejections (observer `reject` events, `stats().rejected`,
 * strike weights), ban and unban events, and the `reason` of their errors. Stable strings: dashboards,
 * alerts and policies (`strikes.weights`) key on them. Core's own reasons are `SockReason` in `@sock/core`.
 */
export const GuardReason = {
  /** The IP policy denies the peer. */
  IP_DENIED: 'ip-denied',
  /** The peer's address is not an IP address (gone before it was read). */
  INVALID_ADDRESS: 'invalid-address',
  /** The peer (or a range holding it) is banned. */
  BANNED: 'banned',
  /** `connections.max` connections are open. */
  CONN_LIMIT: 'conn-limit',
  /** `connections.perKey` connections are open from the peer's key. */
  CONN_LIMIT_IP: 'conn-limit-ip',
  /** A bounded table is full and `store.onFull` is `reject` (fail-closed). */
  TABLE_FULL: 'table-full',
  RATE_CONNECTIONS: 'rate-connections',
  RATE_MESSAGES: 'rate-messages',
  RATE_BYTES: 'rate-bytes',
  RATE_MESSAGES_IP: 'rate-messages-ip',
  RATE_BYTES_IP: 'rate-bytes-ip',
  RATE_DATAGRAMS: 'rate-datagrams',
  RATE_DATAGRAM_BYTES: 'rate-datagram-bytes',
  /** Over a rate with `onExceed: 'pause'`: reading paused until the budget returns (reported, not closed). */
  THROTTLED: 'throttled',
  /** No complete first frame within `timeouts.firstFrame` (the old name is kept: metrics key on it). */
  HANDSHAKE_TIMEOUT: 'handshake-timeout',
  IDLE_TIMEOUT: 'idle-timeout',
  LIFETIME: 'lifetime',
  /** A frame trickled below `timeouts.minRate` (slowloris). */
  MIN_RATE: 'min-rate',
  PROXY_UNTRUSTED: 'proxy-untrusted',
  PROXY_INVALID: 'proxy-invalid',
  PROXY_TIMEOUT: 'proxy-timeout',
  /** A shared store could not decide and fails closed. */
  STORE_UNAVAILABLE: 'store-unavailable',
  /** A ban or unban made by `ban()` / `unban()`. */
  MANUAL: 'manual',
  /** A ban heard from another node without a reason. */
  REMOTE: 'remote',
  /** A ban found when a shared store resynced. */
  RESYNC: 'resync',
  /** A ban that could not be stored: the table is full of bans in force (an error's reason). */
  BAN_STORE_FULL: 'ban-store-full',
  /** A policy that does not validate (an error's reason). */
  POLICY_INVALID: 'policy-invalid',
  /** An IP list or policy file that does not parse (an error's reason; the old lists stay). */
  POLICY_FILE_INVALID: 'policy-file-invalid',
} as const;

/** One of guards' reasons. */
export type GuardReason = (typeof GuardReason)[keyof typeof GuardReason];

/** The rejection reasons guards decide with, and the guard each belongs to. */
export const GUARD_REASONS: Readonly<Record<string, GuardName>> = {
  [GuardReason.IP_DENIED]: 'ip',
  [GuardReason.INVALID_ADDRESS]: 'ip',
  [GuardReason.BANNED]: 'bans',
  [GuardReason.CONN_LIMIT]: 'connections',
  [GuardReason.CONN_LIMIT_IP]: 'connections',
  [GuardReason.TABLE_FULL]: 'connections',
  [GuardReason.RATE_CONNECTIONS]: 'rates',
  [GuardReason.RATE_MESSAGES]: 'rates',
  [GuardReason.RATE_BYTES]: 'rates',
  [GuardReason.RATE_MESSAGES_IP]: 'rates',
  [GuardReason.RATE_BYTES_IP]: 'rates',
  [GuardReason.RATE_DATAGRAMS]: 'rates',
  [GuardReason.RATE_DATAGRAM_BYTES]: 'rates',
  [GuardReason.THROTTLED]: 'rates',
  [GuardReason.HANDSHAKE_TIMEOUT]: 'timeouts',
  [GuardReason.IDLE_TIMEOUT]: 'timeouts',
  [GuardReason.LIFETIME]: 'timeouts',
  [GuardReason.MIN_RATE]: 'timeouts',
  [GuardReason.PROXY_UNTRUSTED]: 'proxy',
  [GuardReason.PROXY_INVALID]: 'proxy',
  [GuardReason.PROXY_TIMEOUT]: 'proxy',
  [GuardReason.STORE_UNAVAILABLE]: 'connections',
};
