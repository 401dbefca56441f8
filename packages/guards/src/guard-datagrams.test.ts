import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { clockAt } from '../../../test-support/clock.js';
import {
  type BanEvent,
  createGuards,
  createMemoryStore,
  type GuardStore,
  type Guards,
  type GuardsPolicy,
} from './index.js';

// The datagram check has two paths: a dotted IPv4 source with the memory store is parsed once and looked
// up by its number everywhere (the fast path); anything else goes through the store's text interface.
// Both must decide alike: the same verdicts, strikes and bans, datagram for datagram.

/** The memory store behind an object that is not one: the check takes its text path. */
function textOnly(store: GuardStore): GuardStore {
  const methods = [
    'take',
    'acquire',
    'release',
    'strikeBan',
    'putBan',
    'clearStrikes',
    'getBan',
    'deleteBan',
    'bannedKeys',
    'stats',
  ] as const;
  const out: Record<string, unknown> = {};
  for (const m of methods) out[m] = (store[m] as (...a: unknown[]) => unknown).bind(store);
  return out as unknown as GuardStore;
}

const POLICY: GuardsPolicy = {
  ip: { deny: ['203.0.113.0/24', '192.0.2.66'] },
  rates: { datagrams: { perKey: { rate: 10, burst: 5 }, bytesPerKey: { rate: 1000, burst: 3000 } } },
  strikes: { threshold: 4, window: '10s' },
  bans: { duration: '1s' },
};

function pair() {
  const t = { now: 0 };
  const clock = clockAt(() => t.now);
  const events = { fast: [] as BanEvent[], text: [] as BanEvent[] };
  const fast = createGuards(POLICY, { clock, store: createMemoryStore(), onBan: (e) => events.fast.push(e) });
  const text = createGuards(POLICY, {
    clock,
    store: textOnly(createMemoryStore()),
    onBan: (e) => events.text.push(e),
  });
  return { t, fast, text, events };
}

/** The reason `g` drops a datagram from `source` for, or undefined (the memory store answers at once). */
const reasonOf = (g: Guards, source: string) =>
  (g.check(source, 1) as { reason: string } | undefined)?.reason;

const SOURCES = ['192.0.2.1', '192.0.2.2', '192.0.2.66', '203.0.113.9', '10.1.2.3', '10.1.2.4'];

describe('check (datagrams): the IPv4 fast path', () => {
  it('decides exactly as the text path under any interleaving of floods, bans, unbans and time', () => {
    const op = fc.oneof(
      fc.record({
        op: fc.constant('datagrams' as const),
        source: fc.constantFrom(...SOURCES),
        count: fc.integer({ min: 1, max: 12 }),
        bytes: fc.integer({ min: 0, max: 1500 }),
      }),
      fc.record({ op: fc.constant('wait' as const), ms: fc.integer({ min: 1, max: 1500 }) }),
      fc.record({
        op: fc.constant('ban' as const),
        target: fc.constantFrom('192.0.2.1', '10.1.2.0/24', '10.0.0.0/8', '192.0.2.0/24'),
      }),
      fc.record({ op: fc.constant('unban' as const), target: fc.constantFrom('192.0.2.1', '10.1.2.0/24') }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        const { t, fast, text, events } = pair();
        for (const o of ops) {
          if (o.op === 'wait') t.now += o.ms;
          else if (o.op === 'ban') {
            fast.ban(o.target);
            text.ban(o.target);
          } else if (o.op === 'unban') {
            fast.unban(o.target);
            text.unban(o.target);
          } else {
            for (let i = 0; i < o.count; i++)
              expect(fast.check(o.source, o.bytes)).toEqual(text.check(o.source, o.bytes));
          }
        }
        expect(events.fast).toEqual(events.text);
        const snap = (g: Guards) => {
          const s = g.snapshot() as { rejected: unknown; store: unknown };
          return { rejected: s.rejected, store: s.store };
        };
        expect(snap(fast)).toEqual(snap(text));
      }),
      { numRuns: 300 },
    );
  });

  it('limits a flood from one (forged or not) source exactly at its burst, then at its rate', () => {
    const { t, fast } = pair();
    const verdicts = Array.from({ length: 20 }, () => reasonOf(fast, '192.0.2.1'));
    // Burst 5: five pass; the rest are over the limit (strikes ban the source after the fourth).
    expect(verdicts.slice(0, 5)).toEqual([undefined, undefined, undefined, undefined, undefined]);
    expect(verdicts.slice(5, 9)).toEqual(Array(4).fill('rate-datagrams'));
    expect(verdicts.slice(9)).toEqual(Array(11).fill('banned'));
    // Another source has its own bucket; the banned one stays out until the ban ends.
    expect(fast.check('192.0.2.2', 1)).toBeUndefined();
    t.now += 999;
    expect(fast.check('192.0.2.1', 1)).toMatchObject({ reason: 'banned' });
    // The ban over, the rate holds: 10/s gives one datagram per 100 ms (the bucket refilled meanwhile).
    t.now += 1;
    expect(Array.from({ length: 6 }, () => reasonOf(fast, '192.0.2.1'))).toEqual([
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
      'rate-datagrams',
    ]);
  });

  it('drops the next datagram from an address (or a range) banned a moment ago, and admits it once unbanned', () => {
    const { fast } = pair();
    expect(fast.check('10.1.2.3', 1)).toBeUndefined();
    fast.ban('10.1.2.3');
    expect(fast.check('10.1.2.3', 1)).toMatchObject({ reason: 'banned', key: '10.1.2.3' });
    fast.unban('10.1.2.3');
    expect(fast.check('10.1.2.3', 1)).toBeUndefined();
    fast.ban('10.1.0.0/16');
    expect(fast.check('10.1.2.4', 1)).toMatchObject({
      reason: 'banned',
      message: 'bans: 10.1.0.0/16 is banned',
    });
    expect(fast.check('10.2.0.1', 1)).toBeUndefined();
    expect(fast.check('203.0.113.200', 1)).toMatchObject({ reason: 'ip-denied' });
    expect(fast.check('192.0.2.66', 1)).toMatchObject({ reason: 'ip-denied' });
  });
});
