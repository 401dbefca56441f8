import { once } from 'node:events';
import { connect } from 'node:net';
import { createServer, type Plugin } from '@sock/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { createGuards } from '../src/index.js';
import { guardedServer, track, u32, until } from './helpers.js';

// Issue 14 item 12 / issue 23 claim 3: `pause` delays the frames beyond the budget even when they all
// arrived in one read. Guards pause reading as soon as the budget is spent, before the next frame is
// decoded; that holds frames of the same read only where core stops decoding mid-read on a pause (core's
// issue-13 change). The probe below asks core, on a real socket, whether it does.
async function coreHoldsTheRestOfARead(): Promise<boolean> {
  const seen: number[] = [];
  const pauser: Plugin = {
    name: 'probe',
    frame(conn) {
      seen.push(Date.now());
      if (seen.length === 1) conn.pauseReading(150);
    },
  };
  const server = createServer<Buffer, Uint8Array>({
    plugins: [pauser],
    async handler(conn) {
      for await (const _ of conn) {
      }
    },
  });
  const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
  try {
    const s = connect({ port, host: '127.0.0.1' });
    await once(s, 'connect');
    s.write(Buffer.concat([u32('a'), u32('b')]));
    const end = Date.now() + 3000;
    while (seen.length < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    s.destroy();
    return seen.length === 2 && seen[1]! - seen[0]! >= 100;
  } finally {
    await server.close({ drainMs: 10 });
  }
}

let holds = false;
beforeAll(async () => {
  holds = await coreHoldsTheRestOfARead();
});

describe('pause holds frames read together', () => {
  it('20 messages in one write at 10/s (burst 5): the 15 beyond the burst one per 100 ms', async (ctx) => {
    // Without core's mid-read pause this cannot hold (README says so); the merged build runs it.
    if (!holds) ctx.skip();
    const guards = createGuards({
      rates: { connections: false, messages: { perConnection: { rate: 10, burst: 5 } }, onExceed: 'pause' },
    });
    const { port } = await guardedServer(guards);
    const s = track(connect({ port, host: '127.0.0.1' }));
    const at: number[] = [];
    let t0 = 0;
    let greeted = false;
    s.on('data', (d: Buffer) => {
      for (let o = 0; o + 4 <= d.length; o += 4 + d.readUInt32BE(o)) {
        if (!greeted) greeted = true;
        else at.push(Date.now() - t0);
      }
    });
    await once(s, 'connect');
    await until(() => greeted);
    t0 = Date.now();
    s.write(Buffer.concat(Array.from({ length: 20 }, (_, i) => u32(`m${i}`))));
    await until(() => at.length === 20, 10_000);
    // The burst goes at once; the 15 beyond it are spread at the rate: the last ~1.5 s later.
    // Lower bounds only (a loaded machine is late, never early). The first frame beyond the burst waits
    // for its token; the 15th beyond it cannot come before ~14 more (one token of slack: core may resume
    // a read early once in a while, seen as two frames 4 ms apart).
    expect(at[4]!).toBeLessThan(at[5]!);
    expect(at[5]!).toBeGreaterThanOrEqual(98);
    expect(at[19]!).toBeGreaterThanOrEqual(1398);
  }, 20_000);
});
