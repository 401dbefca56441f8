import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { SockEvent } from '@sock/core';
import { Counter, Gauge, Registry } from 'prom-client';

/** Prometheus metrics of the chat service, fed by core's and udp's observer events. */
export function createDemoMetrics() {
  const registry = new Registry();
  const make = (name: string, help: string, labelNames: string[] = []) =>
    new Counter({ name: `sock_demo_${name}`, help, labelNames, registers: [registry] });
  const opened = make('connections_opened_total', 'Chat connections that reached the handler');
  const closed = make('connections_closed_total', 'Chat connections closed, by reason', ['reason']);
  const rejected = make('rejections_total', 'Refusals, by reason and stage', ['reason', 'stage']);
  const bans = make('bans_total', 'Bans issued by guards', ['reason']);
  const pings = make('presence_pings_total', 'UDP presence pings answered');
  const online = new Gauge({ name: 'sock_demo_online', help: 'Chat users online', registers: [registry] });
  let http: Server | undefined;
  return {
    registry,
    online,
    pings,
    bans,
    observe(event: SockEvent): void {
      if (event.type === 'open') opened.inc();
      else if (event.type === 'close') closed.inc({ reason: event.reason });
      else if (event.type === 'reject') rejected.inc({ reason: event.reason, stage: event.stage });
    },
    async serve(host: string, port: number): Promise<AddressInfo> {
      http = createServer((req, res) => {
        if (req.url !== '/metrics') {
          res.writeHead(404).end('try /metrics\n');
          return;
        }
        registry
          .metrics()
          .then((body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body));
      });
      http.listen(port, host);
      await once(http, 'listening');
      return http.address() as AddressInfo;
    },
    async close(): Promise<void> {
      if (!http) return;
      http.closeAllConnections();
      await new Promise<void>((r) => http!.close(() => r()));
    },
  };
}

export type DemoMetrics = ReturnType<typeof createDemoMetrics>;
