import { describe, expect, it } from 'vitest';
import { type BanRecord, createMemoryStore } from './store.js';

describe('memory store', () => {
  it('GCRA: a burst, then one unit per emission interval', () => {
    const s = createMemoryStore();
    // 10 per second (100ms each), burst 3.
    expect([0, 0, 0].map(() => s.take('t', '1.2.3.4', 1, 100, 3, 1000))).toEqual([0, 0, 0]);
    expect(s.take('t', '1.2.3.4', 1, 100, 3, 1000)).toBe(100);
    expect(s.take('t', '1.2.3.4', 1, 100, 3, 1099)).toBe(1);
    expect(s.take('t', '1.2.3.4', 1, 100, 3, 1100)).toBe(0);
    // Weighted cost (bytes): 250 units at 1ms each with a burst of 300.
    expect(s.take('b', 'k', 250, 1, 300, 0)).toBe(0);
    expect(s.take('b', 'k', 100, 1, 300, 0)).toBe(50);
  });

  it('a key taken again after its bucket refilled is updated in place, with the same answers as a fresh one', () => {
    // A source under a high rate (every datagram of a flood): each take comes after the TAT has passed.
    // Against a reference GCRA; the table neither grows nor drops and reinserts the entry.
    const s = createMemoryStore({ maxKeys: 4 });
    let tat = 0;
    for (let i = 0; i < 10_000; i++) {
      const now = i * 0.25;
      const cost = 1 + (i % 3);
      const start = Math.max(tat, now);
      const next = start + cost * 0.1;
      const want = next - now > 2 * 0.1 ? Math.max(1, Math.ceil(next - 2 * 0.1 - now)) : 0;
      if (want === 0) tat = next;
      expect(s.take('t', '192.0.2.7', cost, 0.1, 2, now)).toBe(want);
    }
    expect(s.stats().tables.t).toMatchObject({ size: 1, expired: 0, evictions: 0 });
    // Interleaved keys keep their own state: the parse of the last key is never applied to another.
    expect(s.take('t', '192.0.2.8', 5, 100, 5, 0)).toBe(0);
    expect(s.take('t', '192.0.2.7', 1, 100, 5, 2500)).toBe(0);
    expect(s.take('t', '192.0.2.8', 1, 100, 5, 0)).toBe(100);
  });

  it('evicts the least recently used live key when full (fail-open), counting it', () => {
    const s = createMemoryStore({ maxKeys: 2 });
    s.take('t', '10.0.0.1', 1, 1000, 1, 0);
    s.take('t', '10.0.0.2', 1, 1000, 1, 0);
    expect(s.take('t', '10.0.0.1', 1, 1000, 1, 0)).toBeGreaterThan(0); // touches .1
    expect(s.take('t', '10.0.0.3', 1, 1000, 1, 0)).toBe(0); // evicts .2
    expect(s.take('t', '10.0.0.2', 1, 1000, 1, 0)).toBe(0); // forgotten: fresh bucket; evicts .1
    expect(s.stats().tables.t).toMatchObject({ size: 2, max: 2, evictions: 2, full: 0 });
  });

  it('refuses new keys when full of live entries (fail-closed), but reclaims expired ones', () => {
    const s = createMemoryStore({ maxKeys: 1, onFull: 'reject' });
    expect(s.take('t', '10.0.0.1', 1, 1000, 1, 0)).toBe(0);
    expect(s.take('t', '10.0.0.2', 1, 1000, 1, 10)).toBe(-1);
    expect(s.take('t', '10.0.0.2', 1, 1000, 1, 1000)).toBe(0);
    expect(s.stats().tables.t).toMatchObject({ size: 1, full: 1, expired: 1, evictions: 0 });
  });

  it('counts connections per key, never evicting them', () => {
    const s = createMemoryStore({ maxKeys: 2 });
    expect(s.acquire('10.0.0.1', 2)).toBe('ok');
    expect(s.acquire('10.0.0.1', 2)).toBe('ok');
    expect(s.acquire('10.0.0.1', 2)).toBe('limit');
    expect(s.acquire('2001:db8::/64', 2)).toBe('ok');
    expect(s.acquire('10.0.0.3', 2)).toBe('full');
    s.release('10.0.0.1');
    s.release('10.0.0.1');
    expect(s.acquire('10.0.0.3', 2)).toBe('ok');
    expect(s.stats()).toMatchObject({ activeKeys: 2, tables: { connections: { full: 1 } } });
  });

  it('keeps strikes in a window and bans with their memory', () => {
    const s = createMemoryStore();
    const rule = { threshold: 10, windowMs: 1000, durationMs: 100, factor: 2, maxMs: 1000, forgetMs: 100 };
    expect(s.strikeBan('k', 'k', 1, rule, 0, 't')).toEqual({ strikes: 1 });
    expect(s.strikeBan('k', 'k', 2, rule, 500, 't')).toEqual({ strikes: 3 });
    expect(s.strikeBan('k', 'k', 1, rule, 1000, 't')).toEqual({ strikes: 1 });
    expect(s.putBan('10.1.1.1', 100, rule, 0, 'manual')).toMatchObject({ changed: true, stored: true });
    expect(s.getBan('10.1.1.1', 50)).toEqual({ until: 100, offences: 1, forgetAt: 200 });
    expect(s.bannedKeys(50, 10)).toEqual([{ key: '10.1.1.1', until: 100, offences: 1 }]);
    expect(s.bannedKeys(150, 10)).toEqual([]);
    expect((s.getBan('10.1.1.1', 150) as BanRecord | undefined)?.offences).toBe(1);
    expect(s.getBan('10.1.1.1', 200)).toBeUndefined();
  });
});
