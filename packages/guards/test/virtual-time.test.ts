import type { Connection } from '@sock/core';
import { createHarness, createVirtualClock, type Harness, type VirtualClock } from '@sock/core/testing';
import { describe, expect, it, onTestFinished } from 'vitest';
import { createGuards, type GuardsOptions, type GuardsPolicy } from '../src/index.js';
import { u32 } from './helpers.js';

// The guards' timing behaviour (deadlines, idleness, lifetime, minimum rate, tarpits, rates, bans and
// their expiry) on core's socket-free harness: one virtual clock drives the server (`conn.clock`) and the
// guards (`clock`), so hours of protocol take milliseconds and nothing depends on how loaded the machine
// is. What needs a kernel (PROXY headers on real sockets, many source addresses, Redis) stays in
// *.int.test.ts.

const noRates = { connections: false as const };
const noTimeouts = { firstFrame: false, idle: false, minRate: false } as const;

async function echo(conn: Connection): Promise<void> {
  for await (const m of conn) await conn.send(m).catch(() => {});
}

function guarded(policy: GuardsPolicy, options: Omit<GuardsOptions, 'clock'> = {}) {
  const clock: VirtualClock = createVirtualClock(1_000_000);
  const guards = createGuards(policy, { ...options, clock });
  const h: Harness = createHarness({ clock, plugins: [guards.plugin], handler: echo });
  onTestFinished(async () => {
    await h.close();
    guards.close();
  });
  return { guards, h, clock };
}

const reasons = (h: Harness) => h.rejections.map((r) => r.reason);

/** Write `data` one byte every `everyMs` of virtual time until the server closes the connection. */
async function trickle(h: Harness, peer: ReturnType<Harness['connect']>, data: Buffer, everyMs: number) {
  for (let i = 0; i < data.length && !peer.destroyed; i++) {
    peer.write(data.subarray(i, i + 1));
    await h.advance(everyMs);
  }
}

describe('timeouts in virtual time', () => {
  it('cuts a slowloris client at the absolute first-frame deadline, however it trickles', async () => {
    const { h, clock } = guarded({
      timeouts: { firstFrame: '300ms', idle: '200ms', minRate: false },
      rates: noRates,
    });
    const peer = h.connect({ remoteAddress: '198.51.100.80' });
    const started = clock.now();
    // One byte every 40 ms keeps an idle timeout of 200 ms from ever firing; the deadline does not move.
    await trickle(h, peer, u32(Buffer.alloc(1000)), 40);
    expect(peer.destroyed).toBe(true);
    expect(peer.closeInfo?.reason).toBe('handshake-timeout');
    // Closed by the 300 ms deadline, read on the tick of the byte that crossed it.
    expect(clock.now() - started).toBe(320);
    expect(reasons(h)).toEqual(['handshake-timeout']);
    expect(h.rejections[0]).toMatchObject({ stage: 'handshake', plugin: 'guards', key: '198.51.100.80' });
  });

  it('closes an idle connection exactly when the idle time has passed, not before', async () => {
    const { h } = guarded({ timeouts: { handshake: false, idle: '150ms', minRate: false }, rates: noRates });
    const peer = h.connect();
    await h.advance(149);
    expect(peer.destroyed).toBe(false);
    await h.advance(1);
    expect(peer.destroyed).toBe(true);
    expect(reasons(h)).toEqual(['idle-timeout']);
  });

  it('bytes reset the idle time', async () => {
    const { h } = guarded({ timeouts: { handshake: false, idle: '150ms', minRate: false }, rates: noRates });
    const peer = h.connect();
    for (let i = 0; i < 10; i++) {
      await h.advance(100);
      peer.write(u32(`ping ${i}`));
    }
    expect(peer.destroyed).toBe(false);
    await h.advance(250);
    expect(peer.destroyed).toBe(true);
    expect(reasons(h)).toEqual(['idle-timeout']);
  });

  it('ends a busy connection at its maximum lifetime', async () => {
    const { h } = guarded({
      timeouts: { firstFrame: false, idle: false, lifetime: '300ms', minRate: false },
      rates: noRates,
    });
    const peer = h.connect();
    for (let t = 0; t < 280; t += 20) {
      peer.write(u32('ping'));
      await h.advance(20);
    }
    expect(peer.destroyed).toBe(false);
    await h.advance(20);
    expect(peer.destroyed).toBe(true);
    expect(reasons(h)).toEqual(['lifetime']);
    expect(peer.read().length).toBeGreaterThan(0);
  });

  it('cuts a frame trickled below the minimum rate after the grace period', async () => {
    const { h } = guarded({
      timeouts: { handshake: false, idle: false, minRate: { bytesPerSecond: 200, grace: '250ms' } },
      rates: noRates,
    });
    const peer = h.connect();
    peer.write(u32('a complete first frame'));
    await h.settle();
    expect(peer.read().length).toBeGreaterThan(0);
    // 1 byte per 30 ms is ~33 B/s, far below 200 B/s: cut at the first check after the grace period.
    await trickle(h, peer, u32(Buffer.alloc(1000)), 30);
    expect(peer.destroyed).toBe(true);
    expect(reasons(h)).toEqual(['min-rate']);
  });

  it('leaves a fast sender alone', async () => {
    const { h } = guarded({
      timeouts: { handshake: '200ms', idle: '300ms', minRate: { bytesPerSecond: 200, grace: '100ms' } },
      rates: noRates,
    });
    const peer = h.connect();
    for (let i = 0; i < 40; i++) {
      peer.write(u32(`message ${i}`));
      await h.advance(25);
    }
    expect(peer.destroyed).toBe(false);
    expect(h.rejections).toEqual([]);
  });

  it('in shadow mode reports a timeout once and keeps the connection', async () => {
    const { h } = guarded({
      timeouts: { handshake: '100ms', idle: false, minRate: false, shadow: true },
      rates: noRates,
    });
    const peer = h.connect();
    await h.advance(10_000);
    expect(peer.destroyed).toBe(false);
    expect(h.rejections.map((r) => [r.reason, r.shadow, r.closed])).toEqual([
      ['handshake-timeout', true, false],
    ]);
  });
});

describe('rates in virtual time', () => {
  it('limits new connections per key: burst, then the sustained rate, to the millisecond', async () => {
    const { h } = guarded({ rates: { connections: { rate: 2, per: '1s', burst: 2 }, onExceed: 'close' } });
    const open = (remoteAddress: string) => h.connect({ remoteAddress });
    const first = [
      open('198.51.100.60'),
      open('198.51.100.60'),
      open('198.51.100.60'),
      open('198.51.100.61'),
    ];
    await h.settle();
    // Another key has its own bucket.
    expect(first.map((p) => p.destroyed)).toEqual([false, false, true, false]);
    expect(h.rejections.map((e) => [e.reason, e.key])).toEqual([['rate-connections', '198.51.100.60']]);
    // One token every 500 ms: not at 499, at 500.
    await h.advance(499);
    const early = open('198.51.100.60');
    await h.settle();
    expect(early.destroyed).toBe(true);
    await h.advance(1);
    const due = open('198.51.100.60');
    await h.settle();
    expect(due.destroyed).toBe(false);
  });

  it('tarpits: the excess connection is held open, paused, for the tarpit time, then closed', async () => {
    const { h } = guarded({
      rates: { connections: { rate: 1, burst: 1 }, onExceed: 'tarpit', tarpit: '300ms' },
    });
    const admitted = h.connect({ remoteAddress: '198.51.100.62' });
    const held = h.connect({ remoteAddress: '198.51.100.62' });
    await h.settle();
    expect(admitted.destroyed).toBe(false);
    expect(reasons(h)).toEqual(['rate-connections']);
    // Held: what it sends is never read nor answered.
    held.write(u32('hello?'));
    await h.advance(299);
    expect(held.destroyed).toBe(false);
    expect(held.received().length).toBe(0);
    await h.advance(1);
    expect(held.destroyed).toBe(true);
  });

  it('pauses reading until the tokens return (traffic shaping), frames arriving in one read included', async () => {
    const { h } = guarded({
      rates: { messages: { perConnection: { rate: 2, burst: 2 } }, onExceed: 'pause' },
    });
    const peer = h.connect();
    const frames = (b: Buffer) => {
      let n = 0;
      for (let at = 0; at + 4 <= b.length; at += 4 + b.readUInt32BE(at)) n++;
      return n;
    };
    // Three frames in one read: the third is over the budget of 2 and pauses reading for ~500 ms.
    peer.write(Buffer.concat([u32('m0'), u32('m1'), u32('m2')]));
    await h.settle();
    expect(frames(peer.read())).toBe(2);
    await h.advance(499);
    expect(peer.read().length).toBe(0);
    await h.advance(1);
    expect(frames(peer.read())).toBe(1);
    expect(peer.destroyed).toBe(false);
    // Every frame over the sustained rate is shaped, none closes.
    expect(new Set(h.rejections.map((r) => `${r.reason}:${r.closed}`))).toEqual(new Set(['throttled:false']));
  });

  it('pause at accept: a connection over the rate is held until its token is due, then admitted', async () => {
    const { h } = guarded({
      rates: { connections: { rate: 1, per: '1s', burst: 1 }, onExceed: 'pause', maxPause: '2s' },
    });
    const a = h.connect({ remoteAddress: '198.51.100.63' });
    const b = h.connect({ remoteAddress: '198.51.100.63' });
    b.write(u32('early'));
    await h.settle();
    expect(reasons(h)).toEqual(['throttled']);
    expect(b.received().length).toBe(0);
    await h.advance(999);
    expect(b.received().length).toBe(0);
    await h.advance(1);
    expect(b.read().subarray(4).toString()).toBe('early');
    expect([a.destroyed, b.destroyed]).toEqual([false, false]);
  });
});

describe('bans in virtual time', () => {
  it('a strike ban closes the connection, refuses the key until it ends, then admits it again', async () => {
    const { guards, h } = guarded({
      rates: noRates,
      timeouts: noTimeouts,
      strikes: { threshold: 1 },
      bans: { duration: '10m' },
    });
    const peer = h.connect({ remoteAddress: '198.51.100.70' });
    const other = h.connect({ remoteAddress: '198.51.100.71' });
    await h.settle();
    await guards.strike('198.51.100.70', 'manual-strike');
    await h.settle();
    expect(peer.destroyed).toBe(true);
    expect(other.destroyed).toBe(false);
    await h.advance(10 * 60_000 - 1);
    const refused = h.connect({ remoteAddress: '198.51.100.70' });
    await h.settle();
    expect(refused.destroyed).toBe(true);
    await h.advance(1);
    const back = h.connect({ remoteAddress: '198.51.100.70' });
    await h.settle();
    expect(back.destroyed).toBe(false);
    expect(reasons(h)).toEqual(['banned', 'banned']);
    expect(await guards.isBanned('198.51.100.70')).toBe(false);
  });

  it('repeat offences escalate: a strike after the first ban ended earns a longer one', async () => {
    const lengths: number[] = [];
    const { guards, h } = guarded(
      {
        rates: noRates,
        timeouts: noTimeouts,
        strikes: { threshold: 1 },
        bans: { duration: '10m', factor: 2 },
      },
      { onBan: (e) => lengths.push(e.durationMs) },
    );
    await guards.strike('198.51.100.72', 'manual-strike');
    expect(lengths).toEqual([600_000]);
    await h.advance(600_000);
    expect(await guards.isBanned('198.51.100.72')).toBe(false);
    await guards.strike('198.51.100.72', 'manual-strike');
    expect(lengths).toEqual([600_000, 1_200_000]);
    expect(await guards.isBanned('198.51.100.72')).toBe(true);
  });

  it('closeConnections: false keeps open connections of a banned key, and refuses new ones', async () => {
    const { guards, h } = guarded({
      rates: noRates,
      timeouts: noTimeouts,
      bans: { closeConnections: false },
    });
    const open = h.connect({ remoteAddress: '198.51.100.73' });
    await h.settle();
    await guards.ban('198.51.100.73', '1h');
    await h.advance(60_000);
    expect(open.destroyed).toBe(false);
    const next = h.connect({ remoteAddress: '198.51.100.73' });
    await h.settle();
    expect(next.destroyed).toBe(true);
  });
});
