import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { clockAt } from '../../../test-support/clock.js';
import { createGuards } from '../src/index.js';
import { attempt, guardedServer, reasons, u32, until } from './helpers.js';

describe('rate limits on real sockets (a frozen clock: no token returns)', () => {
  it('limits messages per connection (close)', async () => {
    const guards = createGuards(
      { rates: { messages: { perConnection: { rate: 5, burst: 5 } }, onExceed: 'close' } },
      { clock: clockAt(() => 42) },
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
      { clock: clockAt(() => 42) },
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
    // A round trip after the ban: the connection still answers (a ban closes synchronously, or not at all).
    open.socket.write(u32('still here?'));
    await once(open.socket, 'data');
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
