import { createServer, delimited, reject, type SockServer } from '@sock/core';
import { createGuards, type Guards } from '@sock/guards';
import { Registry } from 'prom-client';
import { afterEach, expect, it } from 'vitest';
import { createSockMetrics } from '../src/collector.js';
import { prometheusMetrics, serveMetrics } from '../src/prometheus.js';
import { exchange, promtool, sample, until } from './helpers.js';

const cleanup: Array<() => unknown> = [];

/** A self-signed P-256 certificate for localhost from the real openssl (no dev-PKI API needed). */
async function selfSigned(): Promise<{ cert: string; key: string }> {
  const { execFile } = await import('node:child_process');
  const { mkdtempSync, readFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = mkdtempSync(join(tmpdir(), 'sock-observe-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const args = [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-days',
    '2',
  ];
  args.push('-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1');
  args.push('-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'));
  await new Promise<void>((resolve, reject) =>
    execFile('openssl', args, (err) => (err ? reject(err) : resolve())),
  );
  return {
    cert: readFileSync(join(dir, 'cert.pem'), 'utf8'),
    key: readFileSync(join(dir, 'key.pem'), 'utf8'),
  };
}
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function echoServer(registry: Registry, guards: Guards) {
  const metrics = prometheusMetrics(registry, { components: { guards } });
  const server: SockServer = createServer({
    framing: delimited({ maxFrameBytes: 16 }),
    plugins: [guards.plugin, metrics.plugin('direct')],
    observers: [metrics.observer('direct')],
    async handler(conn) {
      for await (const frame of conn) {
        const done = metrics.startMessage('direct');
        await conn.send(frame);
        done();
      }
    },
  });
  const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
  cleanup.push(() => server.close({ drainMs: 0 }));
  return { metrics, server, port };
}

it("counts a real server's connections, refusals, bytes and latencies on a prom-client registry; promtool is clean; HEAD works", async () => {
  const registry = new Registry();
  const guards = createGuards({ ip: { deny: ['127.0.0.66'] }, strikes: { threshold: 100 } });
  cleanup.push(() => guards.close());
  const { server, port } = await echoServer(registry, guards);

  expect(await exchange(port, 'hello\n', { replies: 1 })).toBe('hello\n');
  expect(await exchange(port, 'a\nb\n', { replies: 2 })).toBe('a\nb\n');
  await exchange(port, `${'x'.repeat(40)}\n`); // frame-too-large: closed by core
  await exchange(port, 'nope\n', { localAddress: '127.0.0.66' }); // ip-denied at accept
  await until(() => server.connections.size === 0, 'every connection closed');

  const http = await serveMetrics(registry);
  cleanup.push(() => http.close());
  const res = await fetch(http.url);
  const body = await res.text();
  const L = 'listener="direct"';
  expect(sample(body, `sock_connections_opened_total{${L},transport="tcp"}`)).toBe(3);
  expect(sample(body, `sock_connections_open{${L}}`)).toBe(0);
  expect(sample(body, `sock_connections_closed_total{${L},reason="frame-too-large"}`)).toBe(1);
  expect(
    sample(
      body,
      `sock_rejections_total{${L},reason="frame-too-large",stage="frame",plugin="core",closed="true"}`,
    ),
  ).toBe(1);
  expect(
    sample(
      body,
      `sock_rejections_total{${L},reason="ip-denied",stage="accept",plugin="guards",closed="true"}`,
    ),
  ).toBe(1);
  // The server's own counters agree.
  expect(server.stats().rejected).toEqual({ 'frame-too-large': 1, 'ip-denied': 1 });
  expect(server.stats().open).toBe(3);
  // Bytes and frames at close: "hello\n" + "a\nb\n" echoed, plus 41 refused bytes read.
  expect(sample(body, `sock_sent_bytes_total{${L},transport="tcp"}`)).toBe(10);
  expect(sample(body, `sock_sent_frames_total{${L},transport="tcp"}`)).toBe(3);
  expect(sample(body, `sock_received_frames_total{${L},transport="tcp"}`)).toBe(3);
  expect(sample(body, `sock_handshake_duration_seconds_count{${L},transport="tcp"}`)).toBe(3);
  expect(sample(body, `sock_message_duration_seconds_count{${L}}`)).toBe(3);
  // No address is ever a label value.
  expect(body).not.toMatch(/="127\./);
  // @sock/guards gains stats() in its own branch (issue 14): then its families appear. Re-run after merging.
  if (typeof (guards as { stats?: unknown }).stats === 'function') {
    expect(body).toMatch(/^sock_guards_keys \d+$/m);
    expect(body).toMatch(/^sock_guards_keys_max [1-9]\d*$/m);
    expect(sample(body, 'sock_guards_bans_issued_total')).toBe(0);
    expect(sample(body, 'sock_guards_bans_active')).toBe(0);
  } else {
    expect(body).not.toContain('sock_guards_');
  }
  expect(await promtool(body)).toEqual({ code: 0, out: '' });

  const head = await fetch(http.url, { method: 'HEAD' });
  expect(head.status).toBe(200);
  expect(head.headers.get('content-length')).toBe(res.headers.get('content-length'));
  expect(await head.text()).toBe('');
});

it('caps labels: a plug-in inventing a reason per connection adds at most the cap plus `other`', async () => {
  const registry = new Registry();
  const metrics = prometheusMetrics(registry, { maxLabelValues: 8 });
  let n = 0;
  const server = createServer({
    plugins: [{ name: 'inventive', accept: () => reject(`made-up-${n++}`) }],
    observers: [metrics.observer()],
    handler: async () => {},
  });
  const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
  cleanup.push(() => server.close({ drainMs: 0 }));
  for (let i = 0; i < 30; i++) await exchange(port, '');
  await exchange(port, ''); // and one whose reason is not even a code
  const body = await registry.metrics();
  const series = body.split('\n').filter((l) => l.startsWith('sock_rejections_total{'));
  expect(series).toHaveLength(9);
  expect(
    sample(
      body,
      'sock_rejections_total{listener="default",reason="other",stage="accept",plugin="inventive",closed="true"}',
    ),
  ).toBe(23);
  expect(await promtool(body)).toEqual({ code: 0, out: '' });
});

it('refuses to register twice on one registry, naming the metric', () => {
  const registry = new Registry();
  prometheusMetrics(registry);
  expect(() => prometheusMetrics(registry)).toThrow(/sock_connections_opened_total is already registered/);
  expect(() => prometheusMetrics(registry, { prefix: 'bad prefix' })).toThrow(/not a valid metric name/);
  expect(() => createSockMetrics({ maxLabelValues: 0 })).toThrow(/maxLabelValues must be a positive integer/);
});

it("over TLS: handshake latency per transport, refused handshakes by reason, and the transport's own stats() once it has one", async () => {
  const { tlsTransport } = await import('@sock/tls');
  const { connect } = await import('node:tls');
  const { cert, key } = await selfSigned();
  const transport = tlsTransport({ cert, key });
  cleanup.push(() => transport.close());
  const registry = new Registry();
  const metrics = prometheusMetrics(registry, { components: { tls: transport } });
  const server = createServer({
    transport,
    framing: delimited({ maxFrameBytes: 64 }),
    plugins: [metrics.plugin('tls')],
    observers: [metrics.observer('tls')],
    async handler(conn) {
      for await (const m of conn) await conn.send(m);
    },
  });
  const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
  cleanup.push(() => server.close({ drainMs: 0 }));
  for (let i = 0; i < 2; i++) {
    await new Promise<void>((resolve) => {
      const s = connect({ port, host: '127.0.0.1', ca: cert, servername: 'localhost' }, () =>
        s.write('hi\n'),
      );
      s.on('data', () => s.end());
      s.on('close', () => resolve());
    });
  }
  await exchange(port, 'GET / HTTP/1.0\r\n\r\n'); // not TLS
  await until(() => server.connections.size === 0, 'all closed');
  const body = await registry.metrics();
  expect(sample(body, 'sock_handshake_duration_seconds_count{listener="tls",transport="tls"}')).toBe(2);
  expect(sample(body, 'sock_connections_opened_total{listener="tls",transport="tls"}')).toBe(2);
  expect(
    sample(
      body,
      'sock_rejections_total{listener="tls",reason="tls-not-tls",stage="handshake",plugin="tls",closed="true"}',
    ),
  ).toBe(1);
  // @sock/tls gains stats() in its own branch (issue 15): then its families appear. Re-run after merging.
  if (typeof (transport as { stats?: unknown }).stats === 'function') {
    expect(sample(body, 'sock_tls_handshakes_total')).toBeGreaterThanOrEqual(2);
    expect(body).toMatch(/^sock_tls_certificate_expiry_seconds\{certificate="[^"]+"\} \d+$/m);
  } else {
    expect(body).not.toContain('sock_tls_handshakes_total');
  }
  expect(await promtool(body)).toEqual({ code: 0, out: '' });
});

it('a real UDP server: refused datagrams by reason under listener="udp", and its stats() read for what matches the contract', async () => {
  const { createUdpServer } = await import('@sock/udp');
  const { json } = await import('@sock/core');
  const { createSocket } = await import('node:dgram');
  const registry = new Registry();
  const metrics = prometheusMetrics(registry);
  const udp = createUdpServer({
    codec: json(),
    maxPayloadBytes: 64,
    observers: [metrics.observer('udp')],
    handler: (r) => r,
  });
  const { port } = await udp.bind({ host: '127.0.0.1', port: 0 });
  cleanup.push(() => udp.close());
  metrics.add({ udp });
  const client = createSocket('udp4');
  cleanup.push(() => client.close());
  for (let i = 0; i < 3; i++) client.send(Buffer.alloc(200, 1), port, '127.0.0.1'); // too large
  await until(
    async () =>
      (sample(
        await registry.metrics(),
        'sock_rejections_total{listener="udp",reason="frame-too-large",stage="frame",plugin="udp",closed="false"}',
      ) ?? 0) >= 3,
    'three refusals',
  );
  const body = await registry.metrics();
  expect(body).not.toMatch(/="127\./);
  // A dropped datagram is a refusal (there is no connection to close), as the status page counts it.
  expect(metrics.refusals()).toEqual({ 'frame-too-large': 3 });
  expect(metrics.listeners().find((l) => l.listener === 'udp')).toMatchObject({ rejected: 3, reported: 0 });
  // Whatever its stats() holds today, the scrape stays valid (fields that are not numbers are skipped).
  expect(await promtool(body)).toEqual({ code: 0, out: '' });
});
