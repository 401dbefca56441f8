/**
 * @packageDocumentation
 * Defences for @sock/core servers, as one pipeline plug-in, and the same decisions per datagram for
 * @sock/udp: IP/CIDR allow and deny lists (longest prefix wins, files reloaded on change), connection
 * limits, connection/message/byte rate limits, slowloris-proof deadlines, strikes and escalating bans,
 * PROXY protocol v1/v2 from trusted proxies, shadow mode, bounded per-key state.
 *
 * @example
 * ```ts
 * import { createServer } from '@sock/core';
 * import { createGuards } from '@sock/guards';
 *
 * const guards = createGuards({
 *   ip: { deny: ['203.0.113.0/24'] },
 *   connections: { max: 10_000, perKey: 20 },
 *   bans: { duration: '10m' },
 * }, { onBan: (e) => console.log('banned', e.key, e.durationMs) });
 * const server = createServer({ plugins: [guards.plugin], handler: async (conn) => {} });
 * ```
 */

export type { BanOutcome, BanRule, StrikeOutcome } from './ban-rules.js';
export {
  type CidrMatcher,
  type CidrMatcherOptions,
  type CidrRule,
  createCidrMatcher,
} from './cidr-matcher.js';
export {
  type ClusterPrimary,
  type ClusterPrimaryOptions,
  type ClusterStore,
  type ClusterStoreOptions,
  createClusterStore,
  serveClusterPrimary,
} from './cluster-store.js';
export {
  type BanEvent,
  createGuards,
  type Decision,
  GUARD_REASONS,
  GUARDS_PLUGIN,
  type GuardName,
  type Guards,
  type GuardsOptions,
  type GuardsSnapshot,
  type GuardsStats,
  type PluginOptions,
  type UnbanEvent,
} from './guards.js';
export { addressKey, type Cidr, canonicalAddress } from './ip.js';
export { type IpPolicyStats, parseIpList } from './ip-policy.js';
export type { OnFull, TableStats } from './lru-table.js';
export {
  type BanOptions,
  type ConnectionLimits,
  DEFAULT_STRIKE_WEIGHTS,
  type Duration,
  type ExceedAction,
  type GuardsPolicy,
  type IpPolicyOptions,
  loadPolicyFile,
  type ProxyOptions,
  type RateLimit,
  type RateLimits,
  type ResolvedPolicy,
  type ResolvedRate,
  resolvePolicy,
  type StoreOptions,
  type StrikeOptions,
  type TimeoutOptions,
} from './policy.js';
export { type PolicyWatch, type PolicyWatchOptions, watchPolicyFile } from './policy-watch.js';
export {
  type ProxyAddress,
  type ProxyHeader,
  parseProxyHeader,
  proxyV1Header,
  proxyV2Header,
} from './proxy-protocol.js';
export { GuardReason } from './reasons.js';
export { redisKeySlot } from './redis-scripts.js';
export {
  createRedisStore,
  type RedisClientLike,
  type RedisConnectionOptions,
  type RedisStore,
  type RedisStoreOptions,
} from './redis-store.js';
export type {
  OnStoreError,
  SharedGuardStore,
  SharedGuardStoreOptions,
} from './shared-store.js';
export {
  type AcquireResult,
  type BanListener,
  type BanRecord,
  createMemoryStore,
  type GuardStore,
  type MaybePromise,
  type MemoryStoreOptions,
  type SharedStoreStats,
  type StoreStats,
} from './store.js';
