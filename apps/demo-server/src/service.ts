import { join } from 'node:path';
import { json } from '@sock/core';
import { type ApplyResult, type BackendName, createBanBridge, createFirewall } from '@sock/firewall';
import { type BanEvent, createGuards, type GuardsPolicy } from '@sock/guards';
import { createRing } from '@sock/observe';
import { decisionLog } from '@sock/observe/pino';
import { prometheusMetrics, serveMetrics } from '@sock/observe/prometheus';
import { serveStatus } from '@sock/observe/status';
import { peerIdentity, tlsTransport } from '@sock/tls';
import { createUdpServer } from '@sock/udp';
import type { Logger } from 'pino';
import { Counter, Gauge, Registry } from 'prom-client';
import { createChatServer } from './chat-server.js';
import { ensurePki, TRUST_DOMAIN } from './pki.js';
import { createRecentEvents } from './recent-events.js';

/** The limits the demo shows, printed at start so they are visible. */
export const LIMITS = {
  maxFrameBytes: 2048,
  messagesPerSecond: 10,
  handshake: '1500ms',
  maxConnsPerIp: 8,
  banAfterStrikes: 3,
  banTime: '10m',
  /** The "load balancer" in front of the edge listener: its PROXY headers are believed. */
  trustedProxy: '127.0.0.1',
} as const;

export interface ServiceOptions {
  stateDir: string;
  host?: string;
  /** Direct TLS listener. Default 0 (a free port). */
  port?: number;
  /** Listener behind a load balancer that speaks PROXY protocol. Default 0. */
  edgePort?: number;
  udpPort?: number;
  metricsPort?: number;
  /** The live status page (loopback only). Default 0 (a free port). */
  statusPort?: number;
  firewall?: BackendName;
  log: Logger;
}

export interface Presence {
  type: 'ping';
  name: string;
}

/**
 * The secure chat service: TLS with client certificates from the dev PKI (only SPIFFE IDs of the demo's
 * trust domain), guards with visible limits shared by two listeners (direct, and an edge listener behind a
 * PROXY-protocol load balancer), UDP presence pings with address-validation cookies, firewall bans
 * (plan mode by default), Prometheus metrics, pino logs.
 */
export async function startService(options: ServiceOptions) {
  const { log } = options;
  const host = options.host ?? '127.0.0.1';
  const pki = await ensurePki(options.stateDir);
  if (pki.created) log.info({ dir: pki.dir }, 'created the dev PKI');
  // Everything the service remembers is bounded: it runs for days under attack.
  const events = createRecentEvents(1000);
  const plans = createRing<{ key: string; result: ApplyResult }>(100);
  const firewallErrors = createRing<string>(100);
  const bans = createRing<BanEvent>(1000);
  const registry = new Registry();
  const pings = new Counter({
    name: 'sock_demo_presence_pings_total',
    help: 'UDP presence pings answered',
    registers: [registry],
  });
  const online = new Gauge({ name: 'sock_demo_online', help: 'Chat users online', registers: [registry] });
  const decisions = decisionLog(log);

  const backend = options.firewall ?? 'plan';
  const firewall = createFirewall({
    backend,
    table: 'sockdemo',
    ...(backend === 'plan' ? {} : { stateFile: join(options.stateDir, 'firewall.json') }),
  });
  if (backend !== 'plan') await firewall.init();
  const bridge =
    backend === 'plan'
      ? undefined
      : createBanBridge(firewall, { onError: (e) => firewallErrors.push(e.message) });

  const policy: GuardsPolicy = {
    connections: { perKey: LIMITS.maxConnsPerIp },
    rates: {
      messages: { perConnection: { rate: LIMITS.messagesPerSecond, burst: LIMITS.messagesPerSecond } },
      onExceed: 'close',
    },
    timeouts: { handshake: LIMITS.handshake },
    strikes: { threshold: LIMITS.banAfterStrikes },
    bans: { duration: LIMITS.banTime },
    proxy: { trusted: [LIMITS.trustedProxy] },
  };
  const guards = createGuards(policy, {
    onBan(e) {
      bans.push(e);
      decisions.ban(e);
      if (bridge) bridge.onBan({ key: e.key, durationMs: e.durationMs, reason: e.reason });
      else {
        firewall.ban(e.key, { ttl: e.durationMs, reason: e.reason }).then(
          (result) => {
            plans.push({ key: e.key, result });
            log.warn({ key: e.key, commands: result.commands }, 'firewall plan (not applied)');
          },
          (err: Error) => firewallErrors.push(err.message),
        );
      }
    },
  });

  const transport = tlsTransport({
    cert: { path: pki.server.cert },
    key: { path: pki.server.key },
    ca: { path: pki.ca },
    clientAuth: 'require',
    authorize: { trustDomain: TRUST_DOMAIN },
    handshakeTimeout: LIMITS.handshake,
  });
  const metrics = prometheusMetrics(registry, {
    components: { guards, tls: transport, ...(bridge ? { firewall: bridge } : {}) },
  });
  const observersOf = (listener: string) => [
    events.observer(listener),
    metrics.observer(listener),
    decisions.observer,
  ];
  const members = new Map();
  const chatOptions = {
    maxFrameBytes: LIMITS.maxFrameBytes,
    transport,
    members,
    nameOf: (conn: Parameters<typeof peerIdentity>[0]) => peerIdentity(conn)?.commonName,
    onOnline: (n: number) => online.set(n),
  };
  const direct = createChatServer({
    ...chatOptions,
    observers: observersOf('direct'),
    plugins: [guards.createPlugin({ proxy: false }), metrics.plugin('direct')],
  });
  const edge = createChatServer({
    ...chatOptions,
    observers: observersOf('edge'),
    plugins: [guards.createPlugin({ proxy: true }), metrics.plugin('edge')],
  });

  const udp = createUdpServer<Presence, { type: 'pong'; name: string; online: number; validated: boolean }>({
    codec: json(),
    cookies: {},
    requireCookie: true,
    guards: [guards],
    observers: observersOf('udp'),
    handler(request, context) {
      pings.inc();
      return {
        type: 'pong',
        name: String(request.name).slice(0, 32),
        online: members.size,
        validated: context.validated,
      };
    },
  });

  const tcp = await direct.listen({ host, port: options.port ?? 0 });
  const edgeAddr = await edge.listen({ host, port: options.edgePort ?? 0 });
  const udpAddr = await udp.bind({ host, port: options.udpPort ?? 0 });
  metrics.add({ udp });
  const metricsAt = await serveMetrics(registry, { host, port: options.metricsPort ?? 0 });
  const status = await serveStatus(metrics, { host, port: options.statusPort ?? 0 });

  return {
    pki,
    tcp,
    edge: edgeAddr,
    udp: udpAddr,
    metrics: { host: metricsAt.host, port: metricsAt.port, url: metricsAt.url },
    status: { url: status.url },
    collector: metrics,
    registry,
    firewall: backend,
    /** The newest 1000 decisions (plain records, no connections held). */
    get events() {
      return events.list();
    },
    get bans() {
      return bans.toArray();
    },
    get plans() {
      return plans.toArray();
    },
    get firewallErrors() {
      return firewallErrors.toArray();
    },
    guards,
    udpServer: udp,
    async close(drainMs = 1000): Promise<void> {
      await Promise.all([direct.close({ drainMs }), edge.close({ drainMs }), udp.close()]);
      guards.close();
      transport.close();
      await bridge?.close();
      decisions.close();
      await Promise.all([metricsAt.close(), status.close()]);
    },
  };
}
