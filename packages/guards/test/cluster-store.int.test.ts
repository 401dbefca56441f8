import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClusterStore } from '../src/index.js';
import { bundleFixture, type Child, startChild } from './fixtures.js';
import { attempt, closeAndWait } from './helpers.js';

// One listener served by 4 node:cluster workers; guards' state in the primary (no Redis).
describe('node:cluster: 4 workers sharing guards through the primary', () => {
  const PER_KEY = 4;
  let primary: Child;
  let port = 0;

  beforeAll(async () => {
    primary = await startChild(await bundleFixture('guards-node'), ['cluster', '4', String(PER_KEY)]);
    port = (await primary.next('ready', 20_000)).port as number;
  }, 30_000);

  afterAll(async () => {
    await primary?.stop();
  });

  it(`holds a per-IP limit of ${PER_KEY} across the workers of one listener`, async () => {
    const tries = await Promise.all(
      Array.from({ length: 12 }, () => attempt(port, '127.0.0.1', '127.0.0.40')),
    );
    expect(tries.filter((t) => t.admitted)).toHaveLength(PER_KEY);
    for (const t of tries.filter((t) => t.admitted).slice(0, 1)) await closeAndWait(t.socket);
    await new Promise((r) => setTimeout(r, 50));
    const more = await Promise.all(Array.from({ length: 4 }, () => attempt(port, '127.0.0.1', '127.0.0.40')));
    expect(more.filter((t) => t.admitted)).toHaveLength(1);
    // Another address has its own count.
    expect((await attempt(port, '127.0.0.1', '127.0.0.41')).admitted).toBe(true);
    for (const t of [...tries, ...more]) t.socket.destroy();
  });

  it('createClusterStore outside a worker says where it belongs', async () => {
    const send = process.send;
    process.send = undefined;
    try {
      await expect(createClusterStore()).rejects.toThrow(/node:cluster worker/);
    } finally {
      process.send = send;
    }
  });
});
