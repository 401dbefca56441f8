import { join } from 'node:path';
import type { SockEvent } from '@sock/core';
import { json } from '@sock/core';
import { type ApplyResult, type BackendName, createBanBridge, createFirewall } from '@sock/firewall';
import { type BanEvent, createGuards, type GuardsPolicy } from '@sock/guards';
import { peerIdentity, tlsTransport } from '@sock/tls';
import { createUdpServer } from '@sock/udp';
import type { Logger } from 'pino';
import { createChatServer } from './chat-server.js';
import { createDemoMetrics } from './metrics.js';
import { ensurePki, TRUST_DOMAIN } from './pki.js';

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
  const metrics = createDemoMetrics();
  const events: SockEvent[] = [];
  const plans: Array<{ key: string; result: ApplyResult }> = [];
  const firewallErrors: string[] = [];

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
  const bans: BanEvent[] = [];
  const guards = createGuards(policy, {
    onBan(e) {
      bans.push(e);
      metrics.bans.inc({ reason: e.reason });
      log.warn({ key: e.key, reason: e.reason, durationMs: e.durationMs }, 'banned');
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

  const observers = [
    (e: SockEvent) => events.push(e),
    (e: SockEvent) => metrics.observe(e),
    (e: SockEvent) => {
      if (e.type === 'reject')
        log.warn({ peer: e.conn.remoteAddress, stage: e.stage, reason: e.reason }, e.message ?? 'rejected');
      else if (e.type === 'open')
        log.info({ peer: e.conn.remoteAddress, transport: e.conn.transport }, 'open');
      else if (e.type === 'close') log.info({ peer: e.conn.remoteAddress, reason: e.reason }, 'close');
    },
  ];
  const transport = tlsTransport({
    cert: { path: pki.server.cert },
    key: { path: pki.server.key },
    ca: { path: pki.ca },
    clientAuth: 'require',
    authorize: { trustDomain: TRUST_DOMAIN },
    handshakeTimeout: LIMITS.handshake,
  });
  const members = new Map();
  const chatOptions = {
    maxFrameBytes: LIMITS.maxFrameBytes,
    observers,
    transport,
    members,
    nameOf: (conn: Parameters<typeof peerIdentity>[0]) => peerIdentity(conn)?.commonName,
    onOnline: (n: number) => metrics.online.set(n),
  };
  const direct = createChatServer({ ...chatOptions, plugins: [guards.createPlugin({ proxy: false })] });
  const edge = createChatServer({ ...chatOptions, plugins: [guards.createPlugin({ proxy: true })] });

  const udp = createUdpServer<Presence, { type: 'pong'; name: string; online: number; validated: boolean }>({
    codec: json(),
    cookies: {},
    requireCookie: true,
    guards: [guards],
    observers: [(e) => events.push(e), (e) => metrics.observe(e)],
    handler(request, context) {
      metrics.pings.inc();
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
  const metricsAddr = await metrics.serve(host, options.metricsPort ?? 0);

  return {
    pki,
    tcp,
    edge: edgeAddr,
    udp: udpAddr,
    metrics: {
      host: metricsAddr.address,
      port: metricsAddr.port,
      url: `http://${host}:${metricsAddr.port}/metrics`,
    },
    firewall: backend,
    events,
    bans,
    plans,
    firewallErrors,
    guards,
    udpServer: udp,
    async close(drainMs = 1000): Promise<void> {
      await Promise.all([direct.close({ drainMs }), edge.close({ drainMs }), udp.close()]);
      guards.close();
      transport.close();
      await bridge?.close();
      await metrics.close();
    },
  };
}

export type Service = Awaited<ReturnType<typeof startService>>;
