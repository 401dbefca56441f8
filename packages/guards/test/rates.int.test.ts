import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { createGuards } from '../src/index.js';
import { attempt, delay, guardedServer, reasons, u32, until } from './helpers.js';

describe('rate limits (injected clock)', () => {
  it('limits new connections per key: burst, then sustained rate', async () => {
    let now = 5_000_000;
    const guards = createGuards(
      { rates: { connections: { rate: 2, per: '1s', burst: 2 }, onExceed: 'close' } },
      { now: () => now },
    );
    const { port, rejects } = await guardedServer(guards);
    const r = [];
    for (let i = 0; i < 3; i++) r.push((await attempt(port, '127.0.0.1', '127.0.0.60')).admitted);
    // Another key has its own bucket.
    r.push((await attempt(port, '127.0.0.1', '127.0.0.61')).admitted);
    expect(r).toEqual([true, true, false, true]);
    expect(rejects.map((e) => [e.reason, e.key])).toEqual([['rate-connections', '127.0.0.60']]);
    now += 499;
    expect((await attempt(port, '127.0.0.1', '127.0.0.60')).admitted).toBe(false);
    now += 1;
    expect((await attempt(port, '127.0.0.1', '127.0.0.60')).admitted).toBe(true);
  });

  it('tarpits: the excess connection is held open, paused, before it is closed', async () => {
    const guards = createGuards(
      { rates: { connections: { rate: 1, burst: 1 }, onExceed: 'tarpit', tarpit: '300ms' } },
      { now: () => 1_000 },
    );
    const { port } = await guardedServer(guards);
    expect((await attempt(port, '127.0.0.1', '127.0.0.62')).admitted).toBe(true);
    const started = Date.now();
    expect((await attempt(port, '127.0.0.1', '127.0.0.62')).admitted).toBe(false);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
  });

  it('limits messages per connection (close)', async () => {
    const guards = createGuards(
      { rates: { messages: { perConnection: { rate: 5, burst: 5 } }, onExceed: 'close' } },
      { now: () => 42 },
    );
    const { port, rejects } = await guardedServer(guards);
    const { socket } = await attempt(port, '127.0.0.1', '127.0.0.63');
    socket.write(Buffer.concat(Array.from({ length: 6 }, () => u32('x'))));
    await once(socket, 'close');
    expect(reasons(rejects)).toEqual(['rate-messages']);
    expect(rejects[0]).toMatchObject({ stage: 'frame', plugin: 'guards', closed: true, key: '127.0.0.63' });
  });

  it('limits bytes per key across connections', async () => {
    const guards = createGuards(
      { rates: { bytes: { perKey: { rate: 100, burst: 100 }, onExceed: 'close' } } },
      { now: () => 42 },
    );
    const { port, rejects } = await guardedServer(guards);
    const a = await attempt(port, '127.0.0.1', '127.0.0.64');
    const b = await attempt(port, '127.0.0.1', '127.0.0.64');
    const c = await attempt(port, '127.0.0.1', '127.0.0.65');
    a.socket.write(u32(Buffer.alloc(60)));
    await once(a.socket, 'data');
    const bClosed = once(b.socket, 'close');
    const cEcho = once(c.socket, 'data');
    b.socket.write(u32(Buffer.alloc(60)));
    c.socket.write(u32(Buffer.alloc(60)));
    await Promise.all([bClosed, cEcho]);
    expect(reasons(rejects)).toEqual(['rate-bytes-ip']);
    expect(c.socket.closed).toBe(false);
  });

  it('pauses reading until the tokens return (traffic shaping), frames arriving in one read included', async () => {
    const guards = createGuards({
      rates: { messages: { perConnection: { rate: 2, burst: 2 } }, onExceed: 'pause' },
    });
    const { port, rejects } = await guardedServer(guards);
    const { socket } = await attempt(port, '127.0.0.1', '127.0.0.66');
    const echoes: number[] = [];
    const t0 = Date.now();
    socket.on('data', (d: Buffer) => {
      // Echoes may coalesce: count frames, not reads.
      for (let at = 0; at + 4 <= d.length; at += 4 + d.readUInt32BE(at)) echoes.push(Date.now() - t0);
    });
    // Three frames in one write, one read: the third is over the budget of 2 and pauses reading.
    socket.write(Buffer.concat([u32('m0'), u32('m1'), u32('m2')]));
    await until(() => echoes.length >= 3);
    // What comes next waits ~500ms (frames of one read are held too where core pauses mid-read:
    // pause-hold.int).
    socket.write(u32('m3'));
    await until(() => echoes.length >= 4, 3000);
    expect(echoes[3]! - echoes[2]!).toBeGreaterThanOrEqual(350);
    expect(socket.closed).toBe(false);
    // Every frame over the sustained rate is shaped, none closes.
    expect(new Set(rejects.map((r) => `${r.reason}:${r.closed}`))).toEqual(new Set(['throttled:false']));
  });
});

describe('shadow mode', () => {
  it('reports what it would reject and lets the connection through', async () => {
    const guards = createGuards({
      ip: { deny: ['127.0.0.70'], shadow: true },
      connections: { perKey: 1, shadow: true },
      rates: { connections: false },
    });
    const { port, rejects } = await guardedServer(guards);
    expect((await attempt(port, '127.0.0.1', '127.0.0.70')).admitted).toBe(true);
    expect((await attempt(port, '127.0.0.1', '127.0.0.70')).admitted).toBe(true);
    expect(rejects.map((r) => [r.reason, r.shadow, r.closed])).toEqual([
      ['ip-denied', true, false],
      ['ip-denied', true, false],
      ['conn-limit-ip', true, false],
    ]);
    const snap = await guards.snapshot();
    expect(snap.reported).toEqual({ 'ip-denied': 2, 'conn-limit-ip': 1 });
    expect(snap.rejected).toEqual({});
    // Shadow decisions earn no strikes.
    expect(snap.strikes).toBe(0);
  });
});

describe('shadow mode of rates and bans (issue 23 test 6)', () => {
  it('rates.shadow: frames over the rate are reported, delivered, and strike nothing', async () => {
    const guards = createGuards({
      rates: { messages: { perConnection: { rate: 2, burst: 2 } }, onExceed: 'close', shadow: true },
      strikes: { threshold: 1 },
    });
    const { port, rejects } = await guardedServer(guards);
    const { socket } = await attempt(port, '127.0.0.1', '127.0.0.67');
    let frames = 0;
    socket.on('data', (d: Buffer) => {
      for (let at = 0; at + 4 <= d.length; at += 4 + d.readUInt32BE(at)) frames++;
    });
    socket.write(Buffer.concat(Array.from({ length: 5 }, () => u32('x'))));
    await until(() => frames >= 5);
    expect(socket.closed).toBe(false);
    expect(rejects.map((r) => [r.reason, r.shadow, r.closed])).toEqual(
      Array.from({ length: 3 }, () => ['rate-messages', true, false]),
    );
    const snap = await guards.snapshot();
    expect(snap.reported).toEqual({ 'rate-messages': 3 });
    expect(snap.strikes).toBe(0);
  });

  it('bans.shadow: a ban is counted and reported at accept, but admits, closes nothing and tells no hook', async () => {
    const bans: unknown[] = [];
    const guards = createGuards(
      {
        rates: { connections: false },
        strikes: { threshold: 1 },
        bans: { shadow: true },
        ip: { deny: ['127.0.0.68'] },
      },
      { onBan: (e) => bans.push(e) },
    );
    const { port, rejects } = await guardedServer(guards);
    const open = await attempt(port, '127.0.0.1', '127.0.0.69');
    await guards.ban('127.0.0.69', '1h');
    expect((await attempt(port, '127.0.0.1', '127.0.0.68')).admitted).toBe(false);
    await delay(30);
    expect(open.socket.closed).toBe(false);
    expect((await attempt(port, '127.0.0.1', '127.0.0.69')).admitted).toBe(true);
    expect(bans).toEqual([]);
    expect(rejects.map((r) => [r.reason, r.key, r.shadow ?? false])).toEqual([
      ['ip-denied', '127.0.0.68', false],
      ['banned', '127.0.0.69', true],
    ]);
    expect((await guards.snapshot()).bans.issued).toBe(2);
  });
});
