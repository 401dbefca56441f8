import type { Connection } from '@sock/core';
import { createHarness, createVirtualClock } from '@sock/core/testing';
import { describe, expect, it, onTestFinished } from 'vitest';
import { createGuards } from '../src/index.js';
import { u32 } from './helpers.js';

// Issue 14 item 12 / issue 23 claim 3: `pause` delays the frames beyond the budget even when they all
// arrived in one read. Guards pause reading as soon as the budget is spent, before the next frame is
// decoded, and core stops decoding mid-read on a pause. On the harness one `write` is exactly one read, and
// time is virtual: each frame's echo time is checked to the millisecond, on any machine.
describe('pause holds frames read together', () => {
  it('20 messages in one read at 10/s (burst 5): the 15 beyond the burst one per 100 ms', async () => {
    const clock = createVirtualClock(0);
    const guards = createGuards(
      {
        rates: { connections: false, messages: { perConnection: { rate: 10, burst: 5 } }, onExceed: 'pause' },
      },
      { clock },
    );
    const h = createHarness({
      clock,
      plugins: [guards.plugin],
      async handler(conn: Connection) {
        for await (const m of conn) await conn.send(m);
      },
    });
    onTestFinished(async () => {
      await h.close();
      guards.close();
    });
    const peer = h.connect();
    const at: number[] = [];
    const collect = () => {
      const b = peer.read();
      for (let o = 0; o + 4 <= b.length; o += 4 + b.readUInt32BE(o)) at.push(clock.now());
    };
    peer.write(Buffer.concat(Array.from({ length: 20 }, (_, i) => u32(`m${i}`))));
    await h.settle();
    collect();
    for (let t = 0; t < 1600 && at.length < 20; t += 1) {
      await h.advance(1);
      collect();
    }
    // The burst goes at once; each frame beyond it waits for its own token, 100 ms apart.
    expect(at).toEqual([0, 0, 0, 0, 0, ...Array.from({ length: 15 }, (_, i) => (i + 1) * 100)]);
    expect(peer.destroyed).toBe(false);
  });
});
