import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type BanEvent,
  createGuards,
  createRedisStore,
  type RedisStore,
  redisKeySlot,
} from '../src/index.js';
import { redisBanKeys, redisKeys } from '../src/redis-scripts.js';
import { attempt, closeAndWait, guardedServer, until } from './helpers.js';
import { type RedisServer, SKIP_REDIS, startRedis } from './redis-server.js';

describe.skipIf(SKIP_REDIS)('redis store (real redis-server)', () => {
  let redis: RedisServer;
  const stores: RedisStore[] = [];
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()));
    if ((await redis.command('PING').catch(() => '')).startsWith('+PONG')) await redis.command('FLUSHALL');
  });

  async function store(options: Parameters<typeof createRedisStore>[0] = {}) {
    const s = await createRedisStore({ redis: { port: redis.port, host: '127.0.0.1' }, ...options });
    stores.push(s);
    return s;
  }

  async function evalshaCalls(): Promise<number> {
    const info = await redis.command('INFO', 'commandstats');
    // A script's first run on a node is EVALSHA (NOSCRIPT, rejected) then EVAL; later runs EVALSHA.
    let calls = 0;
    for (const m of info.matchAll(/cmdstat_(?:eval|evalsha):calls=(\d+)/g)) calls += Number(m[1]);
    return calls;
  }

  it('shares a per-key connection limit between two nodes, one round trip per accept', async () => {
    // (No strikes for conn-limit-ip here: a strike is a second event, with its own script.)
    const policy = {
      connections: { perKey: 3 },
      rates: { connections: { rate: 1000 } },
      strikes: { weights: { 'conn-limit-ip': 0 } },
    };
    const sa = await store();
    const sb = await store();
    const a = await guardedServer(createGuards(policy, { store: sa }));
    const b = await guardedServer(createGuards(policy, { store: sb }));
    // Each node's first run of a script loads it (EVALSHA answered NOSCRIPT, then EVAL): warm up first.
    for (const s of [sa, sb]) {
      await s.admit!('198.51.100.1', { emissionMs: 1, burst: 1000 }, 3, 0);
      s.release('198.51.100.1');
    }
    await new Promise((r) => setTimeout(r, 50)); // the releases are sent without waiting
    const before = await evalshaCalls();
    const results = [];
    for (const port of [a.port, b.port, a.port, b.port, a.port])
      results.push(await attempt(port, '127.0.0.1', '127.0.0.2'));
    expect(results.map((r) => r.admitted)).toEqual([true, true, true, false, false]);
    // One script per accept (EVALSHA), whatever the node: ban from the mirror, rate + count together.
    expect((await evalshaCalls()) - before).toBe(5);
    expect(b.rejects.map((r) => r.reason)).toEqual(['conn-limit-ip']);
    // A release on one node frees a place on the other.
    await closeAndWait(results[0]!.socket);
    await until(() => true);
    let again = await attempt(b.port, '127.0.0.1', '127.0.0.2');
    for (let i = 0; i < 50 && !again.admitted; i++) {
      await new Promise((r) => setTimeout(r, 20));
      again = await attempt(b.port, '127.0.0.1', '127.0.0.2');
    }
    expect(again.admitted).toBe(true);
    // Another address has its own count.
    expect((await attempt(a.port, '127.0.0.1', '127.0.0.3')).admitted).toBe(true);
  });

  it('namespaces every key under the prefix and gives each an expiry', async () => {
    const s = await store({ prefix: 'app1:' });
    const g = createGuards({ connections: { perKey: 5 }, strikes: { threshold: 100 } }, { store: s });
    const srv = await guardedServer(g);
    const conn = await attempt(srv.port, '127.0.0.1', '127.0.0.4');
    expect(conn.admitted).toBe(true);
    await g.strike('127.0.0.4', 'test');
    await g.ban('127.0.0.9', '1m');
    await until(() => g.isBanned('127.0.0.9') === true);
    await new Promise((r) => setTimeout(r, 50));
    const keys = (await redis.command('KEYS', '*')).split('\r\n').filter((l) => l && !/^[*$]/.test(l));
    expect(keys.length).toBeGreaterThanOrEqual(4);
    for (const key of keys) {
      expect(key.startsWith('app1:')).toBe(true);
      const ttl = Number((await redis.command('PTTL', key)).slice(1));
      // The epoch marker is the one key without an expiry: it tells a restarted (empty) Redis apart.
      if (key.endsWith(':epoch')) expect(ttl).toBe(-1);
      // -2: gone since KEYS listed it (a rate key lives only until its bucket refills, which under load
      // can be before this PTTL): it did not linger. What must never appear is -1, a key that stays.
      else expect(ttl === -2 || ttl > 0, `${key} PTTL ${ttl}`).toBe(true);
    }
  });

  it('GCRA in Lua matches the memory store: a burst, then one per emission interval', async () => {
    const s = await store();
    const takes = [];
    for (let i = 0; i < 4; i++) takes.push(await s.take('t', '10.0.0.1', 1, 1000, 3, Date.now()));
    expect(takes.slice(0, 3)).toEqual([0, 0, 0]);
    expect(takes[3]).toBeGreaterThan(900);
    expect(takes[3]).toBeLessThanOrEqual(1000);
    // Weighted cost (bytes), with intervals long enough that the time between two calls does not matter.
    expect(await s.take('b', 'k', 2, 1000, 3, 0)).toBe(0);
    const wait = await s.take('b', 'k', 2, 1000, 3, 0);
    expect(wait).toBeGreaterThan(900);
    expect(wait).toBeLessThanOrEqual(1000);
    const rule = {
      threshold: 10,
      windowMs: 60_000,
      durationMs: 1000,
      factor: 2,
      maxMs: 10_000,
      forgetMs: 1000,
    };
    expect(await s.strikeBan('10.0.0.1', '10.0.0.1', 2, rule, 0, 't')).toEqual({ strikes: 2 });
    expect(await s.strikeBan('10.0.0.1', '10.0.0.1', 3, rule, 0, 't')).toEqual({ strikes: 5 });
    await s.clearStrikes('10.0.0.1');
    expect(await s.strikeBan('10.0.0.1', '10.0.0.1', 1, rule, 0, 't')).toEqual({ strikes: 1 });
  });

  it('fans a ban out to every node and its ban hook within 100 ms', async () => {
    const bansB: Array<BanEvent & { at: number }> = [];
    const ga = createGuards({}, { store: await store() });
    const gb = createGuards({}, { store: await store(), onBan: (e) => bansB.push({ ...e, at: Date.now() }) });
    const b = await guardedServer(gb);
    const t0 = Date.now();
    await ga.ban('127.0.0.5', '1m', 'manual');
    await until(() => bansB.length > 0, 100);
    expect(bansB[0]).toMatchObject({ key: '127.0.0.5', offences: 1, reason: 'manual' });
    expect(bansB[0]!.at - t0).toBeLessThan(100);
    expect((await attempt(b.port, '127.0.0.1', '127.0.0.5')).admitted).toBe(false);
    expect(b.rejects.map((r) => r.reason)).toEqual(['banned']);
    const unbans: string[] = [];
    const gc = createGuards({}, { store: await store(), onUnban: (e) => unbans.push(e.key) });
    expect(gc.isBanned('127.0.0.5')).toBe(true); // loaded by the resync at start
    await ga.unban('127.0.0.5');
    await until(() => unbans.length === 1 && gb.isBanned('127.0.0.5') === false, 100);
    gc.close();
  });

  it('fail-open: Redis killed mid-run, the local store decides; Redis back: shared again, bans resynced', async () => {
    const banned: string[] = [];
    const s = await store({ onStoreError: 'fail-open' });
    const other = await store();
    const g = createGuards({ connections: { perKey: 2 } }, { store: s, onBan: (e) => banned.push(e.key) });
    const srv = await guardedServer(g);
    const go = createGuards({}, { store: other });
    await go.ban('127.0.0.6', '10m');
    await until(() => g.isBanned('127.0.0.6') === true, 100);
    expect(g.stats().store).toMatchObject({ kind: 'redis', healthy: true });

    await redis.stop();
    await until(() => s.stats().shared?.state === 'fallback', 3000);
    // The metrics contract says so too.
    expect(g.stats().store).toMatchObject({ kind: 'redis', healthy: false });
    // Down: the fallback counts per process (limit 2 here), known bans still hold.
    const during = [];
    for (let i = 0; i < 3; i++) during.push(await attempt(srv.port, '127.0.0.1', '127.0.0.7'));
    expect(during.map((r) => r.admitted)).toEqual([true, true, false]);
    expect((await attempt(srv.port, '127.0.0.1', '127.0.0.6')).admitted).toBe(false);
    // A ban made while Redis is away is kept here and written when it returns.
    await g.ban('127.0.0.8', '10m');
    const snap = await g.snapshot();
    expect(snap.shared).toMatchObject({ backend: 'redis', state: 'fallback', onStoreError: 'fail-open' });
    expect(snap.shared!.fallbackDecisions).toBeGreaterThanOrEqual(3);
    expect(snap.shared!.pendingBans).toBe(1);

    // Redis restarts empty (no persistence): both nodes reconnect, give their bans back, and share again.
    await redis.start();
    await until(() => s.stats().shared?.state === 'shared' && other.stats().shared?.state === 'shared', 5000);
    await until(() => go.isBanned('127.0.0.8') === true, 1000);
    expect(g.isBanned('127.0.0.6')).toBe(true);
    const records = await redis.command('HKEYS', 'sock:{sock:bans}:rec');
    expect(records).toContain('127.0.0.6');
    expect(records).toContain('127.0.0.8');
    // Connections admitted by the fallback now count in Redis: the third from .7 is still refused.
    expect((await attempt(srv.port, '127.0.0.1', '127.0.0.7')).admitted).toBe(false);
    const snap2 = await g.snapshot();
    expect(snap2.shared!.reconnects).toBeGreaterThanOrEqual(2);
    expect(snap2.shared!.pendingBans).toBe(0);
    go.close();
  });

  it('fail-closed: Redis down refuses with store-unavailable (no strikes), then recovers', async () => {
    const s = await store({ onStoreError: 'fail-closed' });
    const g = createGuards({ connections: { perKey: 5 } }, { store: s });
    const srv = await guardedServer(g);
    expect((await attempt(srv.port, '127.0.0.1', '127.0.0.10')).admitted).toBe(true);
    await redis.stop();
    await until(() => s.stats().shared?.state === 'fallback', 3000);
    expect((await attempt(srv.port, '127.0.0.1', '127.0.0.10')).admitted).toBe(false);
    expect(srv.rejects.map((r) => r.reason)).toEqual(['store-unavailable']);
    const snap = await g.snapshot();
    expect(snap.rejected['store-unavailable']).toBe(1);
    expect(snap.strikes).toBe(0);
    expect(snap.shared!.failedClosed).toBe(1);
    await redis.start();
    await until(() => s.stats().shared?.state === 'shared', 5000);
    expect((await attempt(srv.port, '127.0.0.1', '127.0.0.10')).admitted).toBe(true);
  });

  it('a decision Redis does not answer within the timeout follows the policy (a paused Redis)', async () => {
    const s = await store({ onStoreError: 'fail-closed', timeout: 30 });
    // CLIENT PAUSE holds every client's commands: Redis is up but slow.
    await redis.command('CLIENT', 'PAUSE', '300', 'ALL');
    const t0 = Date.now();
    await expect(s.admit!('10.1.1.1', undefined, 5, Date.now())).rejects.toMatchObject({
      reason: 'store-unavailable',
    });
    expect(Date.now() - t0).toBeLessThan(250);
    expect(s.stats().shared!.timeouts).toBe(1);
    await new Promise((r) => setTimeout(r, 350));
    await expect(s.admit!('10.1.1.1', undefined, 5, Date.now())).resolves.toMatchObject({ acquired: 'ok' });
  });
});

describe.skipIf(SKIP_REDIS)('Redis Cluster key hashing (a cluster-enabled redis-server)', () => {
  it('our slot of every store key equals CLUSTER KEYSLOT', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sock-redis-cluster-'));
    const server = await startRedis(['--cluster-enabled', 'yes', '--dir', dir]);
    try {
      const keys = [
        ...(Object.values(redisBanKeys('sock:')).slice(0, 3) as string[]),
        ...['203.0.113.7', '2001:db8:1:2::/64', '10.0.0.1'].flatMap((k) => {
          const r = redisKeys('sock:', k);
          return [r.conns, redisBanKeys('sock:').strikes(k), r.rate('connections'), r.rate('messages')];
        }),
        'foo',
        'foo{}{bar}',
        'foo{{bar}}zap',
      ];
      for (const key of keys) {
        const reply = await server.command('CLUSTER', 'KEYSLOT', key);
        expect(Number(reply.slice(1)), key).toBe(redisKeySlot(key));
      }
    } finally {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
