/**
 * `pnpm demo:serve`: the secure chat service, kept running until SIGINT/SIGTERM, then drained.
 * Flags: --firewall nft|iptables|plan (default plan; nft/iptables need root). PORT, EDGE_PORT, UDP_PORT,
 * METRICS_PORT, STATUS_PORT, HOST from the environment (defaults 7000, 7001, 7000/udp, 9464, 9465, 127.0.0.1).
 */
import { parseArgs } from 'node:util';
import type { BackendName } from '@sock/firewall';
import { pino } from 'pino';
import { LIMITS, startService } from './service.js';
import { stateDir } from './state.js';

const BACKENDS: Record<string, BackendName> = {
  nft: 'nftables',
  nftables: 'nftables',
  iptables: 'iptables',
  plan: 'plan',
};
let firewall: BackendName;
try {
  const { values } = parseArgs({ options: { firewall: { type: 'string', default: 'plan' } } });
  const b = BACKENDS[values.firewall ?? 'plan'];
  if (!b) throw new Error(`--firewall must be nft, iptables or plan, got ${JSON.stringify(values.firewall)}`);
  firewall = b;
} catch (err) {
  process.stderr.write(`sock demo: ${(err as Error).message}\n`);
  process.exit(2);
}

const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const log = pino({ level: process.env.LOG_LEVEL ?? 'info' });
const dir = stateDir();
const service = await startService({
  stateDir: dir,
  host: process.env.HOST ?? '127.0.0.1',
  port: env('PORT', 7000),
  edgePort: env('EDGE_PORT', 7001),
  udpPort: env('UDP_PORT', 7000),
  metricsPort: env('METRICS_PORT', 9464),
  statusPort: env('STATUS_PORT', 9465),
  firewall,
  log,
});
const { pki, tcp } = service;
const u = (name: string) => `--tls-cert ${pki.user(name).cert} --tls-key ${pki.user(name).key}`;
process.stderr.write(
  [
    `sock demo chat listening on ${tcp.address}:${tcp.port} (TLS with client certificates; PKI in ${pki.dir})`,
    `  edge (PROXY protocol from ${LIMITS.trustedProxy}): ${service.edge.address}:${service.edge.port}   UDP pings: ${service.udp.address}:${service.udp.port}   metrics: ${service.metrics.url}`,
    `  live status page: ${service.status.url}`,
    `  limits: ${LIMITS.maxFrameBytes} B/message, ${LIMITS.messagesPerSecond} messages/s, first message within ${LIMITS.handshake}, ban after ${LIMITS.banAfterStrikes} strikes for ${LIMITS.banTime}; firewall: ${service.firewall}`,
    '',
    'connect as alice (then type {"type":"hello","name":"alice"} and {"type":"say","text":"hi"}):',
    `  pnpm sock connect localhost ${tcp.port} --tls --tls-ca ${pki.ca} ${u('alice')}`,
    'and as bob in another terminal:',
    `  pnpm sock connect localhost ${tcp.port} --tls --tls-ca ${pki.ca} ${u('bob')}`,
    `without a certificate you are refused (tls-no-client-cert): pnpm sock connect localhost ${tcp.port} --tls --tls-ca ${pki.ca}`,
    '',
  ].join('\n'),
);
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await service.close(3000);
  process.exit(0);
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
