import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { createServer, delimited } from '@sock/core';
import { Registry } from 'prom-client';
import { afterEach, expect, it } from 'vitest';
import { createSockMetrics } from '../src/collector.js';
import { otelMetrics } from '../src/otel.js';
import { prometheusMetrics } from '../src/prometheus.js';
import { exchange, sample, until } from './helpers.js';

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

it('OpenTelemetry and Prometheus render one collector: the same numbers from the same events', async () => {
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
  const provider = new MeterProvider({ readers: [reader] });
  cleanup.push(() => provider.shutdown());
  const metrics = createSockMetrics();
  const registry = new Registry();
  prometheusMetrics(registry, { metrics });
  const otel = otelMetrics(provider.getMeter('sock-test'), { metrics });
  cleanup.push(() => otel.unregister());

  const server = createServer({
    framing: delimited({ maxFrameBytes: 8 }),
    plugins: [metrics.plugin()],
    observers: [metrics.observer()],
    async handler(conn) {
      for await (const m of conn) await conn.send(m);
    },
  });
  const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
  cleanup.push(() => server.close({ drainMs: 0 }));
  await exchange(port, 'ok\n', { replies: 1 });
  await exchange(port, 'ok\n', { replies: 1 });
  await exchange(port, 'much too long\n');
  await until(() => server.connections.size === 0, 'all closed');

  await reader.forceFlush();
  const exported = exporter.getMetrics().at(-1)!.scopeMetrics[0]!.metrics;
  const point = (name: string, attrs: Record<string, string>) => {
    const m = exported.find((x) => x.descriptor.name === name);
    const p = m?.dataPoints.find((d) => Object.entries(attrs).every(([k, v]) => d.attributes[k] === v));
    return p?.value as number | { count: number } | undefined;
  };
  const body = await registry.metrics();
  const opened = sample(body, 'sock_connections_opened_total{listener="default",transport="tcp"}');
  expect(opened).toBe(3);
  expect(point('sock.connections_opened', { listener: 'default', transport: 'tcp' })).toBe(opened);
  expect(
    point('sock.rejections', { reason: 'frame-too-large', stage: 'frame', plugin: 'core', closed: 'true' }),
  ).toBe(
    sample(
      body,
      'sock_rejections_total{listener="default",reason="frame-too-large",stage="frame",plugin="core",closed="true"}',
    ),
  );
  expect(point('sock.received_bytes', { listener: 'default' })).toBe(
    sample(body, 'sock_received_bytes_total{listener="default",transport="tcp"}'),
  );
  expect(point('sock.connections_open', { listener: 'default' })).toBe(0);
  const handshakes = point('sock.handshake_duration_seconds', { listener: 'default' }) as { count: number };
  expect(handshakes.count).toBe(
    sample(body, 'sock_handshake_duration_seconds_count{listener="default",transport="tcp"}'),
  );
  const descriptor = exported.find((x) => x.descriptor.name === 'sock.received_bytes')!.descriptor;
  expect(descriptor.unit).toBe('By');

  // Components added later get their instruments too.
  metrics.add({ udp: { stats: () => ({ amplificationRefusals: 7 }) } });
  await reader.forceFlush();
  const later = exporter.getMetrics().at(-1)!.scopeMetrics[0]!.metrics;
  expect(
    later.find((x) => x.descriptor.name === 'sock.udp_amplification_refusals')?.dataPoints[0]?.value,
  ).toBe(7);
  expect(sample(await registry.metrics(), 'sock_udp_amplification_refusals_total')).toBe(7);
});
