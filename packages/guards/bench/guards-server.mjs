// @sock/core echo server (same framing as core's raw-server.mjs) with every guard on: an IP policy of
// 10,000 deny rules, connection limits, connection/message/byte rates per connection and per key,
// timeouts, strikes and bans. Limits are set high enough that the load generator is never limited.
import { createServer, lengthPrefixed } from '@sock/core';
import { serveForBench } from '../../core/bench/serve.mjs';

// run.mjs points this at a snapshot of dist taken when the benchmark started (a concurrent build that
// cleans dist cannot pull it away mid-run).
const { createGuards } = await import(process.env.SOCK_GUARDS_DIST ?? '../dist/index.js');

const deny = [];
for (let i = 0; i < 10_000; i++) deny.push(`10.${(i >> 8) & 255}.${i & 255}.0/24`);
const high = { rate: 10_000_000, burst: 10_000_000 };
const guards = createGuards({
  ip: { deny, allow: ['10.0.0.1'] },
  connections: { max: 100_000, perKey: 10_000 },
  rates: {
    connections: high,
    messages: { perConnection: high, perKey: high },
    bytes: { perConnection: { rate: 1e10, burst: 1e10 }, perKey: { rate: 1e10, burst: 1e10 } },
    onExceed: 'close',
  },
  timeouts: { handshake: '10s', idle: '1m', lifetime: '1h', minRate: { bytesPerSecond: 1, grace: '10s' } },
  strikes: { threshold: 10 },
  bans: { duration: '1m' },
});
const server = createServer({
  framing: lengthPrefixed(),
  plugins: [guards.plugin],
  async handler(conn) {
    for await (const message of conn) await conn.send(message);
  },
});
await serveForBench(server, () => guards.close());
