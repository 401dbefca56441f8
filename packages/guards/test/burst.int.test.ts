import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleFixture, type Child, startChild } from './fixtures.js';
import { attempt, until } from './helpers.js';
import { type RedisServer, SKIP_REDIS, startRedis } from './redis-server.js';

// Issue 14 item 10 / issue 23 test 7: one burst of concurrent violations from many processes on a shared
// store gives exactly one ban, of the first length. Before the atomic step, 40 connections made up to 26
// bans and a 7-day escalation.
const PER_KEY = 5;
const THRESHOLD = 5;
const ROUNDS = 3;

async function burst(ports: number[], address: string): Promise<void> {
  const tries = await Promise.all(
    Array.from({ length: 40 }, (_, i) => attempt(ports[i % ports.length]!, '127.0.0.1', address)),
  );
  for (const t of tries) t.socket.destroy();
}

function bansOf(children: Child[], key: string) {
  return children.flatMap((c) => c.messages.filter((m) => m.type === 'ban' && m.key === key));
}

describe.skipIf(SKIP_REDIS)('a concurrent burst across 3 processes on one Redis', () => {
  let redis: RedisServer;
  const nodes: Array<Child & { port: number }> = [];

  beforeAll(async () => {
    redis = await startRedis();
    const file = await bundleFixture('guards-node');
    process.env.SOCK_THRESHOLD = String(THRESHOLD);
    try {
      for (let i = 0; i < 3; i++) {
        const child = await startChild(file, ['redis', String(redis.port), String(PER_KEY)]);
        nodes.push(Object.assign(child, { port: (await child.next('ready')).port as number }));
      }
    } finally {
      delete process.env.SOCK_THRESHOLD;
    }
  }, 30_000);

  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await redis?.stop();
  });

  for (let round = 0; round < ROUNDS; round++) {
    it(`round ${round + 1}: one ban of the first length, heard by every node`, async () => {
      const address = `127.0.0.${70 + round}`;
      await burst(
        nodes.map((n) => n.port),
        address,
      );
      // Every node hears the ban (its own or broadcast); wait for all of them, then for stragglers.
      await until(() => bansOf(nodes, address).length >= nodes.length, 5000);
      await new Promise((r) => setTimeout(r, 300));
      const bans = bansOf(nodes, address);
      expect(bans).toHaveLength(nodes.length);
      for (const b of bans) expect(b).toMatchObject({ offences: 1 });
      const records = await redis.command('HGET', 'sock:{sock:bans}:rec', address);
      expect(String(records).split(':')[1]).toBe('1');
    });
  }
});

describe('a concurrent burst across 4 node:cluster workers', () => {
  let primary: Child;
  let port = 0;

  beforeAll(async () => {
    process.env.SOCK_THRESHOLD = String(THRESHOLD);
    try {
      primary = await startChild(await bundleFixture('guards-node'), ['cluster', '4', String(PER_KEY)]);
    } finally {
      delete process.env.SOCK_THRESHOLD;
    }
    port = (await primary.next('ready', 20_000)).port as number;
  }, 30_000);

  afterAll(async () => {
    await primary?.stop();
  });

  for (let round = 0; round < ROUNDS; round++) {
    it(`round ${round + 1}: one ban of the first length in every worker`, async () => {
      const address = `127.0.0.${80 + round}`;
      await burst([port], address);
      await until(() => bansOf([primary], address).length >= 4, 5000);
      await new Promise((r) => setTimeout(r, 300));
      const bans = bansOf([primary], address);
      // Each of the 4 workers reports the one ban once (its own, or the primary's broadcast).
      expect(bans).toHaveLength(4);
      expect(new Set(bans.map((b) => b.worker)).size).toBe(4);
      for (const b of bans) {
        expect(b).toMatchObject({ offences: 1 });
        // The first length (10 min), as the remote nodes see it arrive.
        expect(b.durationMs as number).toBeGreaterThan(590_000);
        expect(b.durationMs as number).toBeLessThanOrEqual(601_000);
      }
    });
  }
});
