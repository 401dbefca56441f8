import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type RedisServer, SKIP_REDIS, startRedis } from './redis-server.js';

// FLEET.md's Usage example, run as written against a real redis-server: it must print what FLEET.md says.
const doc = readFileSync(fileURLToPath(new URL('../FLEET.md', import.meta.url)), 'utf8');
const usage = doc.slice(doc.indexOf('## Usage'));
const code = /```ts\n([\s\S]*?)```/.exec(usage)?.[1];
const printed = /prints\n\n```\n([\s\S]*?)```/.exec(usage)?.[1];
const file = fileURLToPath(new URL('./.fleet-example.ts', import.meta.url));

describe.skipIf(SKIP_REDIS)('FLEET.md', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    rmSync(file, { force: true });
    await redis?.stop();
  });

  it('the usage example runs and prints what it says', async () => {
    expect(code).toBeDefined();
    writeFileSync(file, code!);
    const logs: string[] = [];
    const spy = vi.spyOn(console, 'log').mockImplementation((...v: unknown[]) => logs.push(v.join(' ')));
    const before = process.env.REDIS_URL;
    process.env.REDIS_URL = `redis://127.0.0.1:${redis.port}`;
    try {
      await import(file);
    } finally {
      spy.mockRestore();
      if (before === undefined) delete process.env.REDIS_URL;
      else process.env.REDIS_URL = before;
    }
    expect(logs).toEqual(printed!.trim().split('\n'));
  });
});
