/**
 * @packageDocumentation
 * @sock/observe: metrics and logs for sock servers. One collector reads core's observer events, a timing
 * plug-in and every component's `stats()`; `@sock/observe/prometheus` and `@sock/observe/otel` render
 * it, `@sock/observe/pino` writes rate-limited decision logs, `@sock/observe/status` serves a live page.
 *
 * ```ts
 * import { createSockMetrics } from '@sock/observe';
 * const metrics = createSockMetrics({ components: { guards } });
 * createServer({ observers: [metrics.observer()], plugins: [guards.plugin, metrics.plugin()], handler });
 * ```
 */
export {
  createSockMetrics,
  type HistogramInfo,
  type ListenerFigures,
  type Observation,
  type SockMetrics,
  type SockMetricsOptions,
} from './collector.js';
export type {
  ComponentStats,
  Components,
  FirewallBridgeStats,
  GuardsBanSnapshot,
  GuardsSource,
  GuardsStats,
  SshStats,
  StatsSource,
  TlsStats,
  UdpStats,
} from './components.js';
export type { FamilyInfo, MetricFamily, MetricType, MetricValue } from './families.js';
export { createRing, type Ring } from './status/ring.js';
export type { TopKey, TopKeys } from './top-keys.js';
