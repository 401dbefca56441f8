/**
 * @sock/observe/otel: the same collector's numbers through `@opentelemetry/api`, for users on
 * OpenTelemetry. No second implementation: counters and gauges are observable instruments read from
 * `collect()` in one batch callback per export; histograms are recorded from the collector's observation
 * stream (the API has no observable histogram). Names are the Prometheus ones with `.` after the prefix
 * and without `_total` (an OTel Prometheus exporter adds it back): `sock.connections_opened`.
 */
import type { Attributes, Meter, Observable } from '@opentelemetry/api';
import { createSockMetrics, type SockMetrics, type SockMetricsOptions } from './collector.js';

export interface OtelOptions extends SockMetricsOptions {
  /** Prefix of every instrument name. Default `sock.`. */
  prefix?: string;
  /** An existing collector (e.g. one also rendered for Prometheus). Default: a new one. */
  metrics?: SockMetrics;
}

export interface OtelMetrics extends SockMetrics {
  /** Remove the batch callback and stop recording histograms. */
  unregister(): void;
}

/** Create every sock instrument on `meter` and return the collector to wire into servers. */
export function otelMetrics(meter: Meter, options: OtelOptions = {}): OtelMetrics {
  const prefix = options.prefix ?? 'sock.';
  const metrics = options.metrics ?? createSockMetrics(options);
  const name = (n: string) => `${prefix}${n.replace(/_total$/, '')}`;
  const instruments = new Map<string, Observable>();
  type Result = { observe(o: Observable, value: number, attributes?: Attributes): void };
  // One batch callback per group of instruments created together (components added later get theirs);
  // each observes only its own group.
  const callbackFor = (names: ReadonlySet<string>) => (result: Result) => {
    for (const family of metrics.collect()) {
      const instrument = names.has(family.name) ? instruments.get(family.name) : undefined;
      if (!instrument) continue;
      for (const v of family.values) result.observe(instrument, v.value, v.labels);
    }
  };
  const groups: Array<{ callback: (result: Result) => void; instruments: Observable[] }> = [];
  const sync = () => {
    const group: Observable[] = [];
    const names = new Set<string>();
    for (const info of metrics.families) {
      if (instruments.has(info.name)) continue;
      const config = { description: info.help, unit: info.unit };
      const instrument =
        info.type === 'counter'
          ? meter.createObservableCounter(name(info.name), config)
          : meter.createObservableGauge(name(info.name), config);
      instruments.set(info.name, instrument);
      names.add(info.name);
      group.push(instrument);
    }
    if (group.length === 0) return;
    const callback = callbackFor(names);
    groups.push({ callback, instruments: group });
    meter.addBatchObservableCallback(callback, group);
  };
  sync();
  const stopSync = metrics.onAdd(sync);
  const histograms = new Map(
    metrics.histograms.map((h) => [
      h,
      meter.createHistogram(name(h.name), {
        description: h.help,
        unit: h.unit,
        advice: { explicitBucketBoundaries: [...h.buckets] },
      }),
    ]),
  );
  const unsubscribe = metrics.subscribe((o) => histograms.get(o.family)?.record(o.value, o.labels));
  // The collector's methods are closures, so delegating through the prototype keeps its getters live.
  const out = Object.create(metrics) as OtelMetrics;
  out.unregister = () => {
    for (const g of groups) meter.removeBatchObservableCallback(g.callback, g.instruments);
    unsubscribe();
    stopSync();
  };
  return out;
}
