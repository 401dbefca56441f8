/**
 * @sock/observe/prometheus: the collector's numbers on a prom-client registry, and an HTTP handler for
 * `/metrics` (GET and HEAD).
 *
 * ```ts
 * const registry = new Registry();
 * const metrics = prometheusMetrics(registry, { components: { guards, tls: transport } });
 * createServer({ observers: [metrics.observer()], plugins: [guards.plugin, metrics.plugin()], … });
 * ```
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SockError, SockErrorCode } from '@sock/core';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { createSockMetrics, type SockMetrics, type SockMetricsOptions } from './collector.js';
import type { MetricFamily } from './families.js';

export interface PrometheusOptions extends SockMetricsOptions {
  /** Prefix of every metric name. Default `sock_`. */
  prefix?: string;
  /** An existing collector to render (e.g. one also exported through OpenTelemetry). Default: a new one. */
  metrics?: SockMetrics;
}

/**
 * Register every sock metric on `registry` (one call for core, guards, tls, udp, firewall, ssh and
 * ipsec) and return the collector to wire into servers. Counters and gauges are read from the collector
 * at each scrape; histograms are fed as observations happen. Throws ERR_SOCK_INVALID_OPTION when a
 * metric of the same name is already registered.
 */
export function prometheusMetrics(registry: Registry, options: PrometheusOptions = {}): SockMetrics {
  const prefix = options.prefix ?? 'sock_';
  if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(prefix)) {
    throw new SockError(
      SockErrorCode.INVALID_OPTION,
      `prometheusMetrics: prefix ${JSON.stringify(prefix)} is not a valid metric name start; use letters, digits, _ and :`,
    );
  }
  const metrics = options.metrics ?? createSockMetrics(options);
  for (const name of [...metrics.families, ...metrics.histograms].map((f) => `${prefix}${f.name}`)) {
    if (registry.getSingleMetric(name)) {
      throw new SockError(
        SockErrorCode.INVALID_OPTION,
        `prometheusMetrics: ${name} is already registered on this registry; pass another prefix or registry`,
      );
    }
  }
  // One collection per scrape, shared by every family (components' stats() are read once).
  let snapshot: Map<string, MetricFamily> | undefined;
  const current = (name: string): MetricFamily | undefined => {
    if (!snapshot) {
      snapshot = new Map(metrics.collect().map((f) => [f.name, f]));
      queueMicrotask(() => {
        snapshot = undefined;
      });
    }
    return snapshot.get(name);
  };
  const registered = new Set<string>();
  const sync = () => {
    for (const info of metrics.families) {
      if (registered.has(info.name)) continue;
      registered.add(info.name);
      const config = {
        name: `${prefix}${info.name}`,
        help: info.help,
        labelNames: [...info.labelNames],
        registers: [registry],
      };
      if (info.type === 'counter') {
        new Counter({
          ...config,
          collect() {
            this.reset();
            for (const v of current(info.name)?.values ?? []) if (v.value > 0) this.inc(v.labels, v.value);
          },
        });
      } else {
        new Gauge({
          ...config,
          collect() {
            this.reset();
            for (const v of current(info.name)?.values ?? []) this.set(v.labels, v.value);
          },
        });
      }
    }
  };
  sync();
  metrics.onAdd(sync);
  const histograms = new Map(
    metrics.histograms.map((h) => [
      h,
      new Histogram({
        name: `${prefix}${h.name}`,
        help: h.help,
        labelNames: [...h.labelNames],
        buckets: [...h.buckets],
        registers: [registry],
      }),
    ]),
  );
  metrics.subscribe((o) => histograms.get(o.family)?.observe(o.labels, o.value));
  return metrics;
}

/**
 * A `node:http` request handler serving `registry` at `path` (default `/metrics`): GET returns the text
 * format, HEAD the same headers without a body, other methods 405, other paths 404.
 */
export function metricsHandler(
  registry: Registry,
  options: { path?: string } = {},
): (req: IncomingMessage, res: ServerResponse) => void {
  const path = options.path ?? '/metrics';
  return (req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    if (url !== path) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end(`not found: try ${path}\n`);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res
        .writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' })
        .end('use GET or HEAD\n');
      return;
    }
    registry.metrics().then(
      (body) => {
        res.writeHead(200, {
          'content-type': registry.contentType,
          'content-length': Buffer.byteLength(body),
          'cache-control': 'no-store',
        });
        res.end(req.method === 'HEAD' ? undefined : body);
      },
      (err: Error) => {
        res
          .writeHead(500, { 'content-type': 'text/plain; charset=utf-8' })
          .end(`collecting metrics failed: ${err.message}\n`);
      },
    );
  };
}

export type { SockMetrics } from './collector.js';

export interface MetricsServer {
  /** `http://host:port/metrics`. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Serve `registry` at `http://host:port/metrics` (GET and HEAD) until `close()` or `signal` aborts. */
export async function serveMetrics(
  registry: Registry,
  options: { host?: string; port?: number; path?: string; signal?: AbortSignal } = {},
): Promise<MetricsServer> {
  const host = options.host ?? '127.0.0.1';
  const path = options.path ?? '/metrics';
  const http = createServer(metricsHandler(registry, { path }));
  http.listen(options.port ?? 0, host);
  try {
    await once(http, 'listening');
  } catch (err) {
    throw new SockError(
      SockErrorCode.SOCKET_ERROR,
      `serveMetrics: cannot listen on ${host}:${options.port ?? 0}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  const a = http.address() as AddressInfo;
  let closed: Promise<void> | undefined;
  const close = () => {
    closed ??= new Promise<void>((resolve) => {
      http.closeAllConnections();
      http.close(() => resolve());
    });
    return closed;
  };
  options.signal?.addEventListener('abort', () => void close(), { once: true });
  return {
    url: `http://${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}${path}`,
    host: a.address,
    port: a.port,
    close,
  };
}
