import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleFixture, type Child, startChild } from './fixtures.js';
import { attempt, closeAndWait } from './helpers.js';
import { type RedisServer, SKIP_REDIS, startRedis } from './redis-server.js';

// Four processes, each a core server with guards on one Redis, as a fleet would run them.
describe.skipIf(SKIP_REDIS)('a fleet of 4 processes on one Redis', () => {
  const PER_KEY = 5;
  let redis: RedisServer;
  const nodes: Array<Child & { port: number }> = [];

  beforeAll(async () => {
    redis = await startRedis();
    const file = await bundleFixture('guards-node');
    for (let i = 0; i < 4; i++) {
      const child = await startChild(file, ['redis', String(redis.port), String(PER_KEY)]);
      nodes.push(Object.assign(child, { port: 0 }));
    }
    for (const n of nodes) n.port = (await n.next('ready')).port as number;
  }, 30_000);

  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await redis?.stop();
  });

  it(`holds a per-IP limit of ${PER_KEY} exactly across the processes`, async () => {
    const tries = await Promise.all(
      Array.from({ length: 16 }, (_, i) => attempt(nodes[i % 4]!.port, '127.0.0.1', '127.0.0.30')),
    );
    expect(tries.filter((t) => t.admitted)).toHaveLength(PER_KEY);
    // Closing two frees exactly two places, whichever process they were on.
    for (const t of tries.filter((t) => t.admitted).slice(0, 2)) await closeAndWait(t.socket);
    await new Promise((r) => setTimeout(r, 100));
    const more = await Promise.all(
      Array.from({ length: 8 }, (_, i) => attempt(nodes[i % 4]!.port, '127.0.0.1', '127.0.0.30')),
    );
    expect(more.filter((t) => t.admitted)).toHaveLength(2);
    for (const t of [...tries, ...more]) t.socket.destroy();
  });

  it('a ban on process A rejects on process B within 100 ms (and reaches its ban hook)', async () => {
    const [a, b] = [nodes[0]!, nodes[1]!];
    const t0 = Date.now();
    a.process.send({ type: 'ban', key: '127.0.0.31' });
    const seen = await b.next('ban', 2000, '127.0.0.31');
    expect(seen.key).toBe('127.0.0.31');
    expect((seen.at as number) - t0).toBeLessThan(100);
    expect((await attempt(b.port, '127.0.0.1', '127.0.0.31')).admitted).toBe(false);
    // Every other node heard it too.
    for (const n of nodes.slice(2)) await n.next('ban', 1000, '127.0.0.31');
  });

  it('Redis killed mid-run: connections still pass (fail-open); Redis back empty: bans resynced to all', async () => {
    await redis.stop();
    await new Promise((r) => setTimeout(r, 200));
    const during = await attempt(nodes[2]!.port, '127.0.0.1', '127.0.0.32');
    expect(during.admitted).toBe(true);
    during.socket.destroy();
    // A ban made while Redis is down holds on its node at once, and on the others once Redis returns.
    nodes[3]!.process.send({ type: 'ban', key: '127.0.0.33' });
    await nodes[3]!.next('ban', 2000, '127.0.0.33');
    await redis.start();
    for (const n of nodes.slice(0, 3)) await n.next('ban', 5000, '127.0.0.33');
    // The ban from before the restart lives again in Redis (the nodes gave it back) and on every node.
    const keys = await redis.command('HKEYS', 'sock:{sock:bans}:rec');
    expect(keys).toContain('127.0.0.31');
    expect(keys).toContain('127.0.0.33');
    for (const n of nodes) {
      expect((await attempt(n.port, '127.0.0.1', '127.0.0.31')).admitted).toBe(false);
      expect((await attempt(n.port, '127.0.0.1', '127.0.0.33')).admitted).toBe(false);
    }
    // The shared limit holds again once every node decides through Redis (not its fallback).
    await waitShared(nodes);
    const tries = await Promise.all(
      Array.from({ length: 12 }, (_, i) => attempt(nodes[i % 4]!.port, '127.0.0.1', '127.0.0.34')),
    );
    expect(tries.filter((t) => t.admitted)).toHaveLength(PER_KEY);
    for (const t of tries) t.socket.destroy();
  }, 20_000);
});

/** Wait until every node's store decides through Redis again (each node answers with its snapshot). */
async function waitShared(nodes: Child[]): Promise<void> {
  for (const n of nodes) {
    const end = Date.now() + 10_000;
    for (;;) {
      n.process.send({ type: 'snapshot' });
      const { snapshot } = (await n.next('snapshot', 2000)) as { snapshot: { shared?: { state: string } } };
      if (snapshot.shared?.state === 'shared') break;
      if (Date.now() > end) throw new Error('a node never went back to the shared store');
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
