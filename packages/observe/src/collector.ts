import { type Observer, type Plugin, SockError, SockErrorCode, type SockEvent } from '@sock/core';
import { type Components, readStats } from './components.js';
import {
  COMPONENT_FAMILIES,
  EVENT_FAMILIES,
  type FamilyInfo,
  HISTOGRAM_FAMILIES,
  type MetricFamily,
  type MetricValue,
  type ReadContext,
} from './families.js';
import { labelCap } from './label-cap.js';
import { createTopKeys, type TopKey } from './top-keys.js';

/**
 * Options of `createSockMetrics`; every bound has a default. `maxLabelValues` and `maxSeries` must be
 * positive integers and `topKeys` an integer ≥ 0, else SockError INVALID_OPTION.
 */
export interface SockMetricsOptions {
  /** Components whose `stats()` are read at each collection; more can be added with `add()`. */
  components?: Components;
  /** Distinct values one label may take before new ones read `other`. Default 64. */
  maxLabelValues?: number;
  /** Label sets one family may hold before new ones are counted under all-`other` labels. Default 1000. */
  maxSeries?: number;
  /** Refused keys tracked for `topKeys()` (bounded, Space-Saving). Default 100; 0 turns it off. */
  topKeys?: number;
  /** Clock (ms), for tests. Default `Date.now`. */
  now?: () => number;
}

/** A histogram family as exporters create it. */
export interface HistogramInfo extends FamilyInfo {
  readonly buckets: readonly number[];
}

/** One histogram observation, pushed to subscribers as it happens. */
export interface Observation {
  readonly family: HistogramInfo;
  readonly labels: Readonly<Record<string, string>>;
  /** Seconds. */
  readonly value: number;
}

/** One listener's figures since start (from its observer's events), as the status page shows them. */
export interface ListenerFigures {
  /** The listener's name (the label given to `observer()`, capped like every label). */
  readonly listener: string;
  /** Connections that reached the handler. */
  readonly opened: number;
  /** Connections open now. */
  readonly open: number;
  /** Connections closed. */
  readonly closed: number;
  /** Refusals that closed a connection or dropped a datagram. */
  readonly rejected: number;
  /** Refusals only reported (shadow mode, throttling): nothing was closed. */
  readonly reported: number;
  /** Bytes received on connections that have closed. */
  readonly bytesIn: number;
  /** Bytes sent on connections that have closed. */
  readonly bytesOut: number;
}

/**
 * The one source of truth for every sock number: observer events, the handshake-timing plug-in, message
 * timings and components' `stats()`. The Prometheus, OpenTelemetry and status-page adapters only render
 * what it collects.
 */
export interface SockMetrics {
  /** An observer for a server's (or UDP socket's) `observers`; `listener` labels its figures. */
  observer(listener?: string): Observer;
  /** A plug-in measuring accept → handshake done (the `handshake_duration_seconds` histogram). */
  plugin(listener?: string): Plugin;
  /** Start timing one message; call the returned function once it has been handled. */
  startMessage(listener?: string): () => void;
  /** Read these components too (guards, tls, udp, firewall, ssh, ipsec); exporters add their families. */
  add(components: Components): void;
  /** Called after each `add()` (exporters register the new families); returns an unsubscribe function. */
  onAdd(listener: () => void): () => void;
  readonly components: Readonly<Components>;
  /** Every counter and gauge family with its values now (counters are cumulative). */
  collect(): MetricFamily[];
  /**
   * The families `collect()` returns, without values: every event family, and the component families of
   * the components given so far (exporters create their instruments from it, so add components first).
   */
  readonly families: readonly FamilyInfo[];
  readonly histograms: readonly HistogramInfo[];
  /** Receive every histogram observation from now on; returns an unsubscribe function. */
  subscribe(sink: (observation: Observation) => void): () => void;
  /** The keys refused most (bounded; addresses are fine here, never in labels). */
  topKeys(n?: number): TopKey[];
  /** Figures per listener, for the status page. */
  listeners(): ListenerFigures[];
  /** Refusals since start by reason (closed connections and dropped datagrams; reported ones not). */
  refusals(): Record<string, number>;
}

interface Series {
  readonly labels: Record<string, string>;
  value: number;
}

/** A counter or gauge family whose label sets are bounded by `maxSeries`. */
class SeriesTable {
  private readonly series = new Map<string, Series>();
  constructor(
    readonly info: FamilyInfo,
    private readonly maxSeries: number,
  ) {}

  add(labels: Record<string, string>, by: number): void {
    let key = '';
    for (const name of this.info.labelNames) key += `${labels[name]}\u0000`;
    let s = this.series.get(key);
    if (!s) {
      if (this.series.size >= this.maxSeries) {
        const other: Record<string, string> = {};
        for (const name of this.info.labelNames) other[name] = 'other';
        this.addExact(other, by);
        return;
      }
      s = { labels, value: 0 };
      this.series.set(key, s);
    }
    s.value += by;
  }

  private addExact(labels: Record<string, string>, by: number): void {
    const key = this.info.labelNames.map((n) => `${labels[n]}\u0000`).join('');
    const s = this.series.get(key) ?? { labels, value: 0 };
    this.series.set(key, s);
    s.value += by;
  }

  values(): MetricValue[] {
    return [...this.series.values()].map((s) => ({ labels: { ...s.labels }, value: s.value }));
  }
}

const STARTED = Symbol('sock.observe.accepted');

/** Create the collector. See the package README for wiring it into a server. */
export function createSockMetrics(options: SockMetricsOptions = {}): SockMetrics {
  const maxLabelValues = positiveInt(options.maxLabelValues ?? 64, 'maxLabelValues');
  const maxSeries = positiveInt(options.maxSeries ?? 1000, 'maxSeries');
  const topCapacity = options.topKeys ?? 100;
  if (!Number.isInteger(topCapacity) || topCapacity < 0) {
    throw new SockError(
      SockErrorCode.INVALID_OPTION,
      `createSockMetrics: topKeys must be an integer ≥ 0, got ${String(topCapacity)}`,
    );
  }
  const now = options.now ?? Date.now;
  const components: Components = { ...options.components };
  const cap = {
    listener: labelCap(16, { fallback: 'default' }),
    transport: labelCap(16, { fallback: 'tcp' }),
    reason: labelCap(maxLabelValues),
    stage: labelCap(16),
    plugin: labelCap(32),
    code: labelCap(maxLabelValues, { pattern: /^[A-Z][A-Z0-9_]{0,63}$/ }),
  };
  const read: ReadContext['caps'] = {
    certificate: labelCap(32, { pattern: /^[\x20-\x7e]{1,200}$/ }),
    store: labelCap(8),
    field: labelCap(maxLabelValues, { pattern: /^[A-Za-z][A-Za-z0-9_]{0,63}$/ }),
  };
  const tables = Object.fromEntries(
    Object.entries(EVENT_FAMILIES).map(([k, info]) => [k, new SeriesTable(info, maxSeries)]),
  ) as Record<keyof typeof EVENT_FAMILIES, SeriesTable>;
  const perListener = new Map<string, { -readonly [K in keyof ListenerFigures]: ListenerFigures[K] }>();
  const sinks = new Set<(o: Observation) => void>();
  const addListeners = new Set<() => void>();
  const refusedBy = new Map<string, number>();
  const top = createTopKeys(topCapacity);
  const histograms: HistogramInfo[] = [HISTOGRAM_FAMILIES.handshake, HISTOGRAM_FAMILIES.message];

  const figures = (listener: string) => {
    let f = perListener.get(listener);
    if (!f) {
      f = { listener, opened: 0, open: 0, closed: 0, rejected: 0, reported: 0, bytesIn: 0, bytesOut: 0 };
      perListener.set(listener, f);
    }
    return f;
  };
  const push = (family: HistogramInfo, labels: Record<string, string>, value: number) => {
    for (const sink of sinks) sink({ family, labels, value });
  };
  const on = (listener: string, event: SockEvent): void => {
    switch (event.type) {
      case 'open': {
        const transport = cap.transport(event.conn.transport);
        tables.opened.add({ listener, transport }, 1);
        tables.open.add({ listener }, 1);
        const f = figures(listener);
        f.opened++;
        f.open++;
        return;
      }
      case 'close': {
        const transport = cap.transport(event.conn.transport);
        tables.closed.add({ listener, reason: cap.reason(event.reason) }, 1);
        tables.open.add({ listener }, -1);
        const s = event.conn.stats;
        tables.bytesIn.add({ listener, transport }, s.bytesIn);
        tables.bytesOut.add({ listener, transport }, s.bytesOut);
        tables.framesIn.add({ listener, transport }, s.framesIn);
        tables.framesOut.add({ listener, transport }, s.framesOut);
        const f = figures(listener);
        f.open--;
        f.closed++;
        f.bytesIn += s.bytesIn;
        f.bytesOut += s.bytesOut;
        return;
      }
      case 'reject': {
        const reason = cap.reason(event.reason);
        tables.rejections.add(
          {
            listener,
            reason,
            stage: cap.stage(event.stage),
            plugin: cap.plugin(event.plugin),
            closed: event.closed ? 'true' : 'false',
          },
          1,
        );
        const f = figures(listener);
        if (refused(event)) {
          f.rejected++;
          refusedBy.set(reason, (refusedBy.get(reason) ?? 0) + 1);
        } else f.reported++;
        top.add(event.key ?? event.conn.remoteAddress, event.reason, now());
        return;
      }
      case 'error':
        tables.errors.add({ listener, code: cap.code(event.error.code) }, 1);
        return;
      default:
        return;
    }
  };

  return {
    observer(name) {
      const listener = cap.listener(name);
      figures(listener);
      return (event) => on(listener, event);
    },
    plugin(name) {
      const listener = cap.listener(name);
      return {
        name: 'observe',
        accept(conn) {
          conn.locals.set(STARTED, process.hrtime.bigint());
        },
        handshake(conn) {
          const started = conn.locals.get(STARTED) as bigint | undefined;
          if (started === undefined) return;
          const seconds = Number(process.hrtime.bigint() - started) / 1e9;
          push(HISTOGRAM_FAMILIES.handshake, { listener, transport: cap.transport(conn.transport) }, seconds);
        },
      };
    },
    startMessage(name) {
      const listener = cap.listener(name);
      const started = process.hrtime.bigint();
      let done = false;
      return () => {
        if (done) return;
        done = true;
        push(HISTOGRAM_FAMILIES.message, { listener }, Number(process.hrtime.bigint() - started) / 1e9);
      };
    },
    add(more) {
      Object.assign(components, more);
      for (const listener of addListeners) listener();
    },
    onAdd(listener) {
      addListeners.add(listener);
      return () => addListeners.delete(listener);
    },
    components,
    collect() {
      const context: ReadContext = { now: now(), caps: read };
      const stats = new Map<keyof Components, unknown>();
      for (const kind of Object.keys(components) as Array<keyof Components>) {
        try {
          const value = readStats(components[kind]);
          if (value !== undefined) stats.set(kind, value);
        } catch {
          // A component whose stats() throws loses its figures for this scrape only; counted, not fatal.
          tables.readErrors.add({ component: kind }, 1);
        }
      }
      const out: MetricFamily[] = Object.values(tables).map((t) => ({ ...t.info, values: t.values() }));
      for (const family of COMPONENT_FAMILIES) {
        if (!hasStats(components[family.component])) continue;
        const { read: reader, ...info } = family;
        const value = stats.get(family.component);
        out.push({ ...info, values: value === undefined ? [] : reader(value as never, context) });
      }
      return out;
    },
    get families() {
      return [
        ...Object.values(EVENT_FAMILIES),
        ...COMPONENT_FAMILIES.filter((f) => hasStats(components[f.component])).map(
          ({ read: _r, ...info }) => info,
        ),
      ];
    },
    histograms,
    subscribe(sink) {
      sinks.add(sink);
      return () => sinks.delete(sink);
    },
    topKeys(n = 10) {
      return top.top(n);
    },
    listeners() {
      return [...perListener.values()].map((f) => ({ ...f }));
    },
    refusals() {
      return Object.fromEntries(refusedBy);
    },
  };
}

/**
 * A refusal that cost the peer something: a closed connection, or a dropped datagram (UDP has no
 * connection to close, so its drops arrive with `closed: false`); the rest was only reported.
 */
function refused(event: { closed: boolean; shadow: boolean; conn: { transport: string } }): boolean {
  return event.closed || (event.conn.transport === 'udp' && !event.shadow);
}

/** Only components with a `stats()` get families (an older component without one adds no zeros). */
function hasStats(component: object | undefined): boolean {
  return typeof (component as { stats?: unknown } | undefined)?.stats === 'function';
}

function positiveInt(value: number, name: string): number {
  if (!Number.isInteger(value) || value <= 0) {
    throw new SockError(
      SockErrorCode.INVALID_OPTION,
      `createSockMetrics: ${name} must be a positive integer, got ${String(value)}`,
    );
  }
  return value;
}
