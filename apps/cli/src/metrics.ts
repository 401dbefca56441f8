import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { SockEvent } from '@sock/core';
import { Counter, Gauge, Registry } from 'prom-client';

export interface Metrics {
  /** Feed every core (or udp) observer event here. */
  observe(event: SockEvent): void;
  /** Count a ban issued by guards. */
  ban(reason: string): void;
  readonly registry: Registry;
  /** Serve `/metrics` on host:port; resolves with the real address. */
  serve(host: string, port: number): Promise<{ host: string; port: number }>;
  close(): Promise<void>;
}

/** Prometheus counters from core's observer events: opens, closes by reason, rejections by reason. */
export function createMetrics(prefix = 'sock_'): Metrics {
  const registry = new Registry();
  const counter = (name: string, help: string, labelNames: string[] = []) =>
    new Counter({ name: `${prefix}${name}`, help, labelNames, registers: [registry] });
  const opened = counter('connections_opened_total', 'Connections that reached the handler');
  const closed = counter('connections_closed_total', 'Closed connections by reason', ['reason']);
  const rejected = counter(
    'rejections_total',
    'Decisions against connections, frames or datagrams, by reason and stage',
    ['reason', 'stage', 'plugin', 'closed'],
  );
  const errors = counter('errors_total', 'Handler and plug-in errors', ['code']);
  const bans = counter('bans_total', 'Bans issued by guards, by reason', ['reason']);
  const open = new Gauge({
    name: `${prefix}connections_open`,
    help: 'Connections open now',
    registers: [registry],
  });
  let http: Server | undefined;
  return {
    registry,
    observe(event) {
      switch (event.type) {
        case 'open':
          opened.inc();
          open.inc();
          break;
        case 'close':
          closed.inc({ reason: event.reason });
          open.dec();
          break;
        case 'reject':
          rejected.inc({
            reason: event.reason,
            stage: event.stage,
            plugin: event.plugin,
            closed: String(event.closed),
          });
          break;
        case 'error':
          errors.inc({ code: event.error.code });
          break;
      }
    },
    ban(reason) {
      bans.inc({ reason });
    },
    async serve(host, port) {
      http = createServer((req, res) => {
        if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
          res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics\n');
          return;
        }
        registry.metrics().then(
          (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body),
          (err: Error) => res.writeHead(500).end(err.message),
        );
      });
      http.listen(port, host);
      await once(http, 'listening');
      const a = http.address() as AddressInfo;
      return { host: a.address, port: a.port };
    },
    async close() {
      if (!http) return;
      http.closeAllConnections();
      await new Promise<void>((resolve) => http!.close(() => resolve()));
    },
  };
}
