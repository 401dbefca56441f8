import { type ComponentStats, type Components, type GuardsStats, num } from './components.js';
import type { LabelCap } from './label-cap.js';

/**
 * Every metric the adapters export, in one list: Prometheus and OpenTelemetry are two renderings of it.
 * Names are given without the prefix (`sock_` by default).
 */
export type MetricType = 'counter' | 'gauge' | 'histogram';

export interface FamilyInfo {
  readonly name: string;
  readonly help: string;
  readonly type: MetricType;
  readonly labelNames: readonly string[];
  /** OpenTelemetry unit (UCUM): `s`, `By`, `{connection}`, … */
  readonly unit: string;
  /** For families read from a component's `stats()`: which component. */
  readonly component?: keyof Components;
}

export interface MetricValue {
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface MetricFamily extends FamilyInfo {
  readonly values: readonly MetricValue[];
}

/** Families counted from observer events and the timing plug-in. */
export const EVENT_FAMILIES = {
  opened: counter(
    'connections_opened_total',
    'Connections that reached the handler',
    ['listener', 'transport'],
    '{connection}',
  ),
  closed: counter(
    'connections_closed_total',
    'Connections closed, by reason',
    ['listener', 'reason'],
    '{connection}',
  ),
  open: gauge(
    'connections_open',
    'Connections open now (reached the handler, not yet closed)',
    ['listener'],
    '{connection}',
  ),
  rejections: counter(
    'rejections_total',
    'Decisions against connections, frames or datagrams, by reason, stage and deciding plug-in; closed="false" only reported (shadow mode, throttling)',
    ['listener', 'reason', 'stage', 'plugin', 'closed'],
    '{decision}',
  ),
  errors: counter(
    'errors_total',
    'Handler, plug-in and socket errors, by SockError code',
    ['listener', 'code'],
    '{error}',
  ),
  bytesIn: counter(
    'received_bytes_total',
    'Bytes received on connections, counted when they close',
    ['listener', 'transport'],
    'By',
  ),
  bytesOut: counter(
    'sent_bytes_total',
    'Bytes sent on connections, counted when they close',
    ['listener', 'transport'],
    'By',
  ),
  framesIn: counter(
    'received_frames_total',
    'Frames received on connections, counted when they close',
    ['listener', 'transport'],
    '{frame}',
  ),
  readErrors: counter(
    'observe_read_errors_total',
    "Collections where a component's stats() threw (its figures were skipped)",
    ['component'],
    '{error}',
  ),
  framesOut: counter(
    'sent_frames_total',
    'Frames sent on connections, counted when they close',
    ['listener', 'transport'],
    '{frame}',
  ),
} as const satisfies Record<string, FamilyInfo>;

export const HISTOGRAM_FAMILIES = {
  handshake: {
    ...info(
      'handshake_duration_seconds',
      'Time from accept to the end of the transport handshake (TLS; about 0 on plain TCP)',
      'histogram',
      ['listener', 'transport'],
      's',
    ),
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  },
  message: {
    ...info(
      'message_duration_seconds',
      'Time the handler took for one message (from startMessage() to its end)',
      'histogram',
      ['listener'],
      's',
    ),
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
  },
} as const;

export interface ComponentFamily extends FamilyInfo {
  readonly component: keyof Components;
  read(stats: never, context: ReadContext): MetricValue[];
}

export interface ReadContext {
  readonly now: number;
  /** Bounds certificate subjects, store kinds and ipsec field names. */
  readonly caps: { readonly certificate: LabelCap; readonly store: LabelCap; readonly field: LabelCap };
}

type StatsOf<K extends keyof Components> = ComponentStats[K];

/** One family read from component `kind`'s stats. */
function comp<K extends keyof Components>(
  family: FamilyInfo,
  kind: K,
  read: (stats: StatsOf<K>, context: ReadContext) => MetricValue[],
): ComponentFamily {
  return { ...family, component: kind, read: read as ComponentFamily['read'] };
}

/** A plain number field, no labels. */
function field<T>(get: (s: T) => unknown): (s: T) => MetricValue[] {
  return (s) => {
    const v = num(get(s));
    return v === undefined ? [] : [{ labels: {}, value: v }];
  };
}

function storeField(get: (s: NonNullable<GuardsStats['store']>) => unknown) {
  return (s: GuardsStats, c: ReadContext): MetricValue[] => {
    const v = s.store ? num(get(s.store)) : undefined;
    return v === undefined ? [] : [{ labels: { store: c.caps.store(s.store?.kind) }, value: v }];
  };
}

/** Families read from components' `stats()` at each collection. */
export const COMPONENT_FAMILIES: readonly ComponentFamily[] = [
  comp(
    gauge('guards_keys', "Keys (addresses or prefixes) in guards' tables now", [], '{key}'),
    'guards',
    field((s) => s.keys),
  ),
  comp(
    gauge('guards_keys_max', "Largest number of keys guards' tables hold", [], '{key}'),
    'guards',
    field((s) => s.maxKeys),
  ),
  comp(
    counter('guards_evictions_total', 'Keys evicted from full guards tables', [], '{key}'),
    'guards',
    field((s) => s.evictions),
  ),
  comp(
    counter('guards_strikes_total', 'Strikes counted by guards', [], '{strike}'),
    'guards',
    field((s) => s.strikes),
  ),
  comp(
    counter('guards_bans_issued_total', 'Bans issued by guards', [], '{ban}'),
    'guards',
    field((s) => s.bansIssued),
  ),
  comp(
    gauge('guards_bans_active', 'Keys banned now', [], '{ban}'),
    'guards',
    field((s) => s.bansActive),
  ),
  comp(
    counter('guards_ban_store_failures_total', 'Bans the store failed to record', [], '{ban}'),
    'guards',
    field((s) => s.banStoreFailures),
  ),
  comp(
    gauge(
      'guards_store_healthy',
      "1 when guards' store answers (a shared store: Redis or the cluster primary), else 0",
      ['store'],
      '1',
    ),
    'guards',
    storeField((st) => (st.healthy === undefined ? undefined : st.healthy ? 1 : 0)),
  ),
  comp(
    counter(
      'guards_store_fallback_decisions_total',
      'Decisions taken on local state while the shared store was unavailable',
      ['store'],
      '{decision}',
    ),
    'guards',
    storeField((st) => st.fallbackDecisions),
  ),
  comp(
    counter('guards_store_errors_total', "Errors from guards' store", ['store'], '{error}'),
    'guards',
    storeField((st) => st.errors),
  ),
  comp(
    counter('tls_handshakes_total', 'TLS handshakes completed', [], '{handshake}'),
    'tls',
    field((s) => s.handshakes),
  ),
  comp(
    counter('tls_handshake_failures_total', 'TLS handshakes that failed', [], '{handshake}'),
    'tls',
    field((s) => s.handshakeFailures),
  ),
  comp(
    counter('tls_reloads_total', 'Certificate reloads applied', [], '{reload}'),
    'tls',
    field((s) => s.reloads),
  ),
  comp(
    counter(
      'tls_reload_failures_total',
      'Certificate reloads refused (the old certificate stays)',
      [],
      '{reload}',
    ),
    'tls',
    field((s) => s.reloadFailures),
  ),
  comp(
    counter('tls_renegotiation_attempts_total', 'TLS renegotiation attempts refused', [], '{attempt}'),
    'tls',
    field((s) => s.renegotiationAttempts),
  ),
  comp(
    gauge(
      'tls_certificate_expiry_seconds',
      'Seconds until the served certificate expires (negative: expired)',
      ['certificate'],
      's',
    ),
    'tls',
    (s, c) =>
      (s.certificates ?? []).flatMap((cert) => {
        const after = num(cert.notAfter);
        return after === undefined
          ? []
          : [
              {
                labels: { certificate: c.caps.certificate(cert.subject) },
                value: Math.round((after - c.now) / 1000),
              },
            ];
      }),
  ),
  comp(
    counter('udp_received_datagrams_total', 'UDP datagrams received', [], '{datagram}'),
    'udp',
    field((s) => s.datagramsIn),
  ),
  comp(
    counter('udp_sent_datagrams_total', 'UDP datagrams sent', [], '{datagram}'),
    'udp',
    field((s) => s.datagramsOut),
  ),
  comp(
    counter('udp_received_bytes_total', 'UDP payload bytes received', [], 'By'),
    'udp',
    field((s) => s.bytesIn),
  ),
  comp(
    counter('udp_sent_bytes_total', 'UDP payload bytes sent', [], 'By'),
    'udp',
    field((s) => s.bytesOut),
  ),
  comp(
    counter(
      'udp_dropped_datagrams_total',
      'UDP datagrams dropped (too large, refused, undecodable)',
      [],
      '{datagram}',
    ),
    'udp',
    field((s) => s.dropped),
  ),
  comp(
    counter(
      'udp_amplification_refusals_total',
      'Replies not sent because they would exceed the anti-amplification budget',
      [],
      '{datagram}',
    ),
    'udp',
    field((s) => s.amplificationRefusals),
  ),
  comp(
    counter(
      'udp_unvalidated_datagrams_total',
      'Datagrams from sources that had not proven their address',
      [],
      '{datagram}',
    ),
    'udp',
    field((s) => s.unvalidated),
  ),
  comp(
    counter('firewall_batches_total', 'Firewall transactions the ban bridge ran', [], '{batch}'),
    'firewall',
    field((s) => s.batches),
  ),
  comp(
    counter('firewall_bans_applied_total', 'Bans applied in the kernel firewall', [], '{ban}'),
    'firewall',
    field((s) => s.applied),
  ),
  comp(
    counter('firewall_failures_total', 'Bans the firewall bridge failed to apply', [], '{ban}'),
    'firewall',
    field((s) => s.failed),
  ),
  comp(
    gauge('firewall_pending_bans', 'Bans waiting for the next firewall transaction', [], '{ban}'),
    'firewall',
    field((s) => s.pending),
  ),
  comp(
    counter('ssh_handshakes_total', 'SSH handshakes completed', [], '{handshake}'),
    'ssh',
    field((s) => s.handshakes),
  ),
  comp(
    counter('ssh_auth_failures_total', 'SSH authentication failures', [], '{failure}'),
    'ssh',
    field((s) => s.authFailures),
  ),
  comp(
    gauge('ssh_channels_open', 'SSH channels open now', [], '{channel}'),
    'ssh',
    field((s) => s.channelsOpen),
  ),
  comp(
    counter('ssh_channels_opened_total', 'SSH channels opened', [], '{channel}'),
    'ssh',
    field((s) => s.channelsTotal),
  ),
  comp(
    gauge('ipsec_stat', "Numeric fields of the IPsec component's stats(), by field name", ['field'], '1'),
    'ipsec',
    (s, c) =>
      Object.entries(s).flatMap(([k, v]) => {
        const n = num(v);
        return n === undefined ? [] : [{ labels: { field: c.caps.field(k) }, value: n }];
      }),
  ),
];

function info(
  name: string,
  help: string,
  type: MetricType,
  labelNames: readonly string[],
  unit: string,
): FamilyInfo {
  return { name, help, type, labelNames, unit };
}
function counter(name: string, help: string, labelNames: readonly string[], unit: string): FamilyInfo {
  return info(name, help, 'counter', labelNames, unit);
}
function gauge(name: string, help: string, labelNames: readonly string[], unit: string): FamilyInfo {
  return info(name, help, 'gauge', labelNames, unit);
}
