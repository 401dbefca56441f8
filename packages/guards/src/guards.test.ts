import { describe, expect, it } from 'vitest';
import { clockAt } from '../../../test-support/clock.js';
import { type BanEvent, createGuards, type Decision } from './index.js';

describe('check (datagrams)', () => {
  it('limits datagrams and bytes per key, with the same reasons, strikes and bans', () => {
    let now = 0;
    const decisions: Decision[] = [];
    const bans: BanEvent[] = [];
    const g = createGuards(
      {
        rates: { datagrams: { perKey: { rate: 10, burst: 2 }, bytesPerKey: { rate: 1000, burst: 1500 } } },
        strikes: { threshold: 3 },
      },
      { clock: clockAt(() => now), onDecision: (d) => decisions.push(d), onBan: (e) => bans.push(e) },
    );
    expect(g.check('192.0.2.1', 100)).toBeUndefined();
    expect(g.check('::ffff:192.0.2.1', 100)).toBeUndefined();
    expect(g.check('192.0.2.1', 100)).toMatchObject({ reason: 'rate-datagrams', key: '192.0.2.1' });
    now += 100;
    expect(g.check('192.0.2.1', 1500)).toMatchObject({ reason: 'rate-datagram-bytes' });
    expect(g.check('192.0.2.2', 100)).toBeUndefined();
    now += 100;
    expect(g.check('192.0.2.1', 10_000)).toMatchObject({ reason: 'rate-datagram-bytes' });
    expect(bans).toEqual([
      expect.objectContaining({ key: '192.0.2.1', reason: 'rate-datagram-bytes', offences: 1 }),
    ]);
    expect(g.check('192.0.2.1', 1)).toMatchObject({ reason: 'banned' });
    expect(decisions.map((d) => d.reason)).toEqual([
      'rate-datagrams',
      'rate-datagram-bytes',
      'rate-datagram-bytes',
      'banned',
    ]);
    expect(decisions[0]).toEqual({
      guard: 'rates',
      reason: 'rate-datagrams',
      key: '192.0.2.1',
      address: '192.0.2.1',
      stage: 'datagram',
      shadow: false,
    });
  });

  it('applies the IP policy per datagram, keys IPv6 per prefix, and can run in shadow mode', () => {
    const decisions: Decision[] = [];
    const g = createGuards(
      { ip: { deny: ['2001:db8::/32'] }, ipv6Prefix: 48 },
      { onDecision: (d) => decisions.push(d) },
    );
    expect(g.check('2001:db8:1:2::9')).toMatchObject({ reason: 'ip-denied', key: '2001:db8:1::/48' });
    expect(g.check('2001:db9::1')).toBeUndefined();
    expect(g.check('not-an-ip')).toMatchObject({ reason: 'invalid-address' });
    const shadow = createGuards({ ip: { deny: ['192.0.2.0/24'], shadow: true } });
    expect(shadow.check('192.0.2.5')).toBeUndefined();
    expect((shadow.snapshot() as { reported: Record<string, number> }).reported).toEqual({ 'ip-denied': 1 });
  });
});

describe('plug-in shape', () => {
  it('declares only the hooks its policy needs', () => {
    const off = createGuards({
      rates: { messages: { perConnection: false }, bytes: { perConnection: false } },
    });
    expect(off.plugin.frame).toBeUndefined();
    expect(off.plugin.preface).toBeUndefined();
    expect(typeof off.plugin.accept).toBe('function');
    const on = createGuards({ proxy: { trusted: ['10.0.0.1'] } });
    expect(typeof on.plugin.frame).toBe('function');
    expect(typeof on.plugin.preface).toBe('function');
    expect(on.createPlugin({ proxy: false }).preface).toBeUndefined();
    expect(() => off.createPlugin({ proxy: true })).toThrow(
      expect.objectContaining({
        code: 'ERR_SOCK_INVALID_OPTION',
        message: expect.stringContaining('needs a `proxy` section'),
      }),
    );
  });
});

describe('full tables', () => {
  it('fail-closed refuses new keys with table-full; fail-open forgets the oldest', () => {
    const closed = createGuards(
      {
        store: { maxKeys: 2, onFull: 'reject' },
        rates: { datagrams: { perKey: { rate: 1, burst: 5 }, bytesPerKey: false } },
      },
      { clock: clockAt(() => 0) },
    );
    expect(closed.check('192.0.2.1')).toBeUndefined();
    expect(closed.check('192.0.2.2')).toBeUndefined();
    expect(closed.check('192.0.2.3')).toMatchObject({ reason: 'table-full' });
    const open = createGuards(
      {
        store: { maxKeys: 2 },
        rates: { datagrams: { perKey: { rate: 1, burst: 5 }, bytesPerKey: false } },
      },
      { clock: clockAt(() => 0) },
    );
    for (const a of ['192.0.2.1', '192.0.2.2', '192.0.2.3']) expect(open.check(a)).toBeUndefined();
    const snap = open.snapshot() as { store: Record<string, { evictions: number; size: number }> };
    expect(snap.store.datagrams).toMatchObject({ size: 2, evictions: 1 });
  });
});

describe('stats()', () => {
  it('is the metrics contract: plain numbers, no addresses, computed synchronously', () => {
    let now = 1_000;
    const g = createGuards(
      { strikes: { threshold: 2 }, store: { maxKeys: 500 } },
      { clock: clockAt(() => now) },
    );
    expect(g.stats()).toEqual({
      keys: 0,
      maxKeys: 500,
      evictions: 0,
      strikes: 0,
      bansIssued: 0,
      bansActive: 0,
      banStoreFailures: 0,
      store: { kind: 'memory', healthy: true, fallbackDecisions: 0, errors: 0 },
    });
    g.strike('192.0.2.1', 'ip-denied');
    g.strike('192.0.2.1', 'frame-too-large');
    g.ban('198.51.100.0/24', '1s');
    expect(g.stats()).toMatchObject({ strikes: 3, bansIssued: 2, bansActive: 2 });
    now += 2_000;
    g.ban('203.0.113.1', '1h');
    // The /24 ended; the strike ban (10 min) and the new one are in force.
    expect(g.stats()).toMatchObject({ bansIssued: 3, bansActive: 2 });
    expect(JSON.stringify(g.stats())).not.toMatch(/\d+\.\d+\.\d+\.\d+/);
    g.close();
  });
});

describe('timeouts.firstFrame', () => {
  it('is the name; timeouts.handshake is its alias; both at once is an error', () => {
    expect(createGuards({ timeouts: { firstFrame: '2s' } }).policy.timeouts.firstFrameMs).toBe(2000);
    expect(createGuards({ timeouts: { handshake: '3s' } }).policy.timeouts.firstFrameMs).toBe(3000);
    expect(() => createGuards({ timeouts: { firstFrame: '2s', handshake: '3s' } })).toThrow(
      /policy\.timeouts\.handshake: the old name of firstFrame/,
    );
  });
});
