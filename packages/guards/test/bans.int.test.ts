import { once } from 'node:events';
import { connect } from 'node:net';
import { createServer } from '@sock/core';
import { describe, expect, it } from 'vitest';
import { clockAt } from '../../../test-support/clock.js';
import { type BanEvent, createGuards, proxyV2Header } from '../src/index.js';
import { attempt, guardedServer, reasons, track, until } from './helpers.js';

// Issue 14's cases, each on real sockets where a socket is involved.
const noRates = { connections: false as const };

describe('bans (issue 14)', () => {
  it('1. a ban closes the key’s open connections on every listener the guards serve', async () => {
    const guards = createGuards({ rates: noRates });
    const a = await guardedServer(guards);
    const b = await guardedServer(guards, '127.0.0.1', undefined, guards.createPlugin());
    const one = await attempt(a.port, '127.0.0.1', '127.0.0.51');
    const two = await attempt(b.port, '127.0.0.1', '127.0.0.51');
    const other = await attempt(a.port, '127.0.0.1', '127.0.0.52');
    expect([one.admitted, two.admitted, other.admitted]).toEqual([true, true, true]);
    await guards.ban('127.0.0.51', '1h');
    await until(() => one.socket.closed && two.socket.closed);
    expect(reasons(a.rejects)).toEqual(['banned']);
    expect(reasons(b.rejects)).toEqual(['banned']);
    expect(other.socket.closed).toBe(false);
  });

  it('2. a ban is never shortened: strikes on a 30-day ban leave it 30 days', async () => {
    let now = 1_000_000;
    const bans: BanEvent[] = [];
    const guards = createGuards(
      { strikes: { threshold: 1 } },
      { clock: clockAt(() => now), onBan: (e) => bans.push(e) },
    );
    await guards.ban('198.51.100.9', '30d');
    for (let i = 0; i < 10; i++) await guards.strike('198.51.100.9', 'frame-too-large');
    await guards.ban('198.51.100.9', '20m');
    now += 21 * 60_000;
    expect(await guards.isBanned('198.51.100.9')).toBe(true);
    expect(bans).toHaveLength(1);
    expect((await guards.snapshot()).bans.active[0]).toMatchObject({
      key: '198.51.100.9',
      until: 1_000_000 + 30 * 86_400_000,
    });
  });

  it('3. neverBan protects an IPv6 host: the neighbour’s strike ban is its own /128, not the /64', async () => {
    const bans: BanEvent[] = [];
    const guards = createGuards(
      { strikes: { threshold: 1 }, bans: { neverBan: ['2001:db8:1:2::10'] } },
      { onBan: (e) => bans.push(e) },
    );
    await guards.strike('2001:db8:1:2::99', 'ip-denied');
    expect(bans.map((b) => b.key)).toEqual(['2001:db8:1:2::99']);
    expect(await guards.isBanned('2001:db8:1:2::99')).toBe(true);
    expect(await guards.isBanned('2001:db8:1:2::10')).toBe(false);
    // Unbanning the address lifts the ban made of it alone.
    expect(await guards.unban('2001:db8:1:2::99')).toBe(true);
    expect(await guards.isBanned('2001:db8:1:2::99')).toBe(false);
    // A range holding the protected host is not issued at all.
    await guards.ban('2001:db8:1::/48');
    expect(await guards.isBanned('2001:db8:1:2::10')).toBe(false);
    // Skipped: the /48 aggregate of the strike, and the manual /48.
    expect((await guards.snapshot()).bans.skipped).toBe(2);
  });

  it('4. fail-closed: ended bans leave the table first; a ban that cannot be stored is reported and counted', async () => {
    let now = 1_000_000;
    const errors: string[] = [];
    const guards = createGuards(
      { store: { maxKeys: 3, onFull: 'reject' } },
      { clock: clockAt(() => now), onError: (e) => errors.push(e.message) },
    );
    // The oldest ban is still in force; the two after it end: a full table must drop those, not refuse.
    await guards.ban('10.9.0.1', '1h');
    for (const k of ['10.9.0.2', '10.9.0.3']) await guards.ban(k, '1s');
    now += 2000;
    for (const k of ['10.9.0.4', '10.9.0.5']) await guards.ban(k, '1h');
    for (const k of ['10.9.0.1', '10.9.0.4', '10.9.0.5']) expect(await guards.isBanned(k)).toBe(true);
    expect(guards.stats().banStoreFailures).toBe(0);
    // Full of bans in force: the next one cannot be stored, and says so.
    await guards.ban('10.9.0.7', '1h');
    expect(guards.stats()).toMatchObject({ banStoreFailures: 1, bansIssued: 5, bansActive: 3 });
    expect(errors.some((m) => m.includes('10.9.0.7') && m.includes('could not be stored'))).toBe(true);
  });

  it('5. key rotation: more keys than the store holds still bans the /24 they rotate in', async () => {
    const bans: BanEvent[] = [];
    const guards = createGuards(
      { store: { maxKeys: 20 }, strikes: { threshold: 10, aggregate: { threshold: 50 } } },
      { onBan: (e) => bans.push(e) },
    );
    for (let round = 0; round < 3; round++)
      for (let i = 1; i <= 200; i++) await guards.strike(`198.51.100.${i}`, 'ip-denied');
    expect(bans.map((b) => b.key)).toEqual(['198.51.100.0/24']);
    expect(await guards.isBanned('198.51.100.250')).toBe(true);
    expect(await guards.isBanned('198.51.101.1')).toBe(false);
  });

  it('5b. a raised per-key threshold is not undercut by the range threshold: one noisy key bans nothing', async () => {
    const bans: BanEvent[] = [];
    const tolerant = createGuards({ strikes: { threshold: 1000 } }, { onBan: (e) => bans.push(e) });
    // 60 strikes from one address: past the old fixed range threshold of 50, far below its own 1000.
    for (let i = 0; i < 60; i++) await tolerant.strike('198.51.100.7', 'rate-connections');
    expect(bans).toEqual([]);
    expect(await tolerant.isBanned('198.51.100.8')).toBe(false);
    // The default policy still bans the /24 that rotating keys strike from, at 50.
    const strict = createGuards({ store: { maxKeys: 20 } }, { onBan: (e) => bans.push(e) });
    for (let i = 1; i <= 50; i++) await strict.strike(`198.51.100.${i}`, 'ip-denied');
    expect(bans.map((b) => b.key)).toEqual(['198.51.100.0/24']);
  });

  it('5c. with a raised threshold, keys rotating in one /24 are still banned as the range, at 5 × the threshold', async () => {
    const bans: BanEvent[] = [];
    // Threshold 20: each key stops one strike short of its own ban; the range's is 100.
    const guards = createGuards(
      { store: { maxKeys: 20 }, strikes: { threshold: 20 } },
      { onBan: (e) => bans.push(e) },
    );
    for (let i = 1; i <= 99; i++) await guards.strike(`198.51.100.${i}`, 'ip-denied');
    expect(bans).toEqual([]);
    await guards.strike('198.51.100.200', 'ip-denied');
    expect(bans.map((b) => b.key)).toEqual(['198.51.100.0/24']);
    expect(await guards.isBanned('198.51.100.250')).toBe(true);
  });

  it('6. a CIDR ban bans the range (within the firewall’s width limits), never one address', async () => {
    const guards = createGuards({ rates: noRates });
    const { port, rejects } = await guardedServer(guards);
    await guards.ban('127.0.0.0/24', '1h');
    expect(await guards.isBanned('127.0.0.0/24')).toBe(true);
    expect(await guards.isBanned('127.0.0.77')).toBe(true);
    expect((await attempt(port, '127.0.0.1', '127.0.0.77')).admitted).toBe(false);
    expect(rejects.map((r) => r.reason)).toEqual(['banned']);
    expect(await guards.isBanned('127.0.1.1')).toBe(false);
    expect(() => guards.ban('10.0.0.0/7')).toThrow(/wider than a \/8/);
    expect(() => guards.ban('2001:db8::/31')).toThrow(/wider than a \/32/);
  });

  it('7. PROXY v2 with an IPv4-mapped source is the IPv4 client; NAT64 and IPv4-compatible are keyed by IPv4', async () => {
    const guards = createGuards({ proxy: { trusted: ['127.0.0.1'] }, rates: noRates });
    const { port } = await guardedServer(guards);
    const header = proxyV2Header(
      { address: '::ffff:192.0.2.7', port: 7 },
      { address: '2001:db8::1', port: 9 },
    );
    expect(header[13]).toBe(0x21); // TCP over IPv6: a real v2 mapped header
    expect((await attempt(port, '127.0.0.1', '127.0.0.1', header)).greeting).toBe('192.0.2.7 7');
    expect(guards.keyOf('64:ff9b::192.0.2.7')).toBe('192.0.2.7');
    expect(guards.keyOf('::192.0.2.7')).toBe('192.0.2.7');
    expect(guards.keyOf('::1')).toBe('::/64');
  });

  it('9. a trusted proxy’s health checks (connect, reset before a header) never strike it; no key is empty', async () => {
    const bans: BanEvent[] = [];
    const guards = createGuards(
      { proxy: { trusted: ['127.0.0.1'] }, rates: noRates, strikes: { threshold: 1 } },
      { onBan: (e) => bans.push(e) },
    );
    const { port } = await guardedServer(guards);
    for (let i = 0; i < 5; i++) {
      const s = track(connect({ port, host: '127.0.0.1', localAddress: '127.0.0.1' }));
      s.on('error', () => {});
      await once(s, 'connect');
      s.resetAndDestroy();
      await once(s, 'close');
    }
    await new Promise((r) => setTimeout(r, 50));
    expect(bans).toEqual([]);
    expect((await guards.snapshot()).strikes).toBe(0);
    await guards.strike('', 'ip-denied');
    expect((await guards.snapshot()).strikes).toBe(0);
  });

  it('11. a bulk transfer over the byte rate is shaped, never struck, even with onExceed close', async () => {
    const bans: BanEvent[] = [];
    const guards = createGuards(
      {
        rates: {
          connections: false,
          onExceed: 'close',
          bytes: { perConnection: { rate: 20_000, burst: 20_000 } },
        },
        strikes: { threshold: 1 },
      },
      { onBan: (e) => bans.push(e) },
    );
    const server = createServer<Buffer, Uint8Array>({
      plugins: [guards.plugin],
      async handler(conn) {
        let n = 0;
        for await (const _ of conn) if (++n === 10) await conn.send(Buffer.from('done'));
      },
    });
    const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
    try {
      const s = track(connect({ port, host: '127.0.0.1' }));
      await once(s, 'connect');
      const frame = Buffer.alloc(4 + 8000);
      frame.writeUInt32BE(8000);
      for (let i = 0; i < 10; i++) s.write(frame);
      const reply = await once(s, 'data');
      expect((reply[0] as Buffer).subarray(4).toString()).toBe('done');
      expect(bans).toEqual([]);
      expect((await guards.snapshot()).strikes).toBe(0);
    } finally {
      await server.close({ drainMs: 50 });
      guards.close();
    }
  });
});
