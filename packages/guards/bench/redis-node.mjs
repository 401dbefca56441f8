// A child of bench/redis.mjs: a core server with guards on the Redis store (built dist).
// argv: <redisPort> <ratePerSecond> <burst>. Prints {"port"} and serves until killed.
import { createServer } from '@sock/core';
import { createGuards, createRedisStore } from '@sock/guards';

const [redisPort, rate, burst] = process.argv.slice(2).map(Number);
const store = await createRedisStore({
  redis: { host: '127.0.0.1', port: redisPort },
  timeout: Number(process.env.SOCK_BENCH_TIMEOUT ?? 50),
});
process.on('SIGTERM', async () => {
  const s = store.stats().shared;
  console.error(JSON.stringify(s));
  process.exit(0);
});
const guards = createGuards(
  {
    connections: { perKey: 1_000_000 },
    rates: { connections: { rate, burst }, onExceed: 'close' },
    strikes: { threshold: 1_000_000_000 },
  },
  { store },
);
const server = createServer({
  plugins: [guards.plugin],
  async handler(conn) {
    // The client closes once it has the greeting: every admitted connection is seen as admitted.
    await conn.send(Buffer.from('hi'));
    for await (const _ of conn) {
    }
  },
});
const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
console.log(JSON.stringify({ port }));
