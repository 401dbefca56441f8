import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { clockAt } from '../../../test-support/clock.js';
import { type BanEvent, createGuards } from './index.js';

// The ban rules against a model written as plainly as possible: any interleaving of strikes, manual
// bans, unbans and the clock moving on gives the same bans, offences and ban events.
const RULE = { threshold: 3, windowMs: 1000, durationMs: 100, factor: 2, maxMs: 1000, forgetMs: 500 };
const KEYS = ['192.0.2.1', '192.0.2.2', '198.51.100.3'];

interface ModelBan {
  until: number;
  offences: number;
  forgetAt: number;
}

class Model {
  now = 1_000_000;
  strikes = new Map<string, { count: number; expires: number }>();
  bans = new Map<string, ModelBan>();
  events: Array<{ key: string; until: number; offences: number }> = [];

  record(key: string): ModelBan | undefined {
    const b = this.bans.get(key);
    return b && b.forgetAt > this.now ? b : undefined;
  }
  banned(key: string): boolean {
    const b = this.record(key);
    return b !== undefined && b.until > this.now;
  }
  strike(key: string, weight: number): void {
    if (weight <= 0 || this.banned(key)) return;
    let s = this.strikes.get(key);
    if (!s || this.now >= s.expires) s = { count: 0, expires: this.now + RULE.windowMs };
    s.count += weight;
    this.strikes.set(key, s);
    if (s.count < RULE.threshold) return;
    this.strikes.delete(key);
    this.ban(key, undefined);
  }
  ban(key: string, ms: number | undefined): void {
    const prev = this.record(key);
    const offences = (prev?.offences ?? 0) + 1;
    const length = ms ?? Math.min(RULE.maxMs, RULE.durationMs * RULE.factor ** (offences - 1));
    const until = this.now + length;
    if (prev && prev.until >= until) return;
    this.bans.set(key, { until, offences, forgetAt: until + RULE.forgetMs });
    this.events.push({ key, until, offences });
  }
  unban(key: string): void {
    this.bans.delete(key);
    this.strikes.delete(key);
  }
}

type Op =
  | { op: 'strike'; key: number; reason: 'ip-denied' | 'frame-too-large' | 'banned' }
  | { op: 'ban'; key: number; ms: number | undefined }
  | { op: 'unban'; key: number }
  | { op: 'wait'; ms: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constant('strike' as const),
      key: fc.nat(2),
      reason: fc.constantFrom('ip-denied' as const, 'frame-too-large' as const, 'banned' as const),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('ban' as const),
      key: fc.nat(2),
      ms: fc.option(fc.integer({ min: 1, max: 2000 }), { nil: undefined }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('unban' as const), key: fc.nat(2) }) },
  {
    weight: 3,
    arbitrary: fc.record({ op: fc.constant('wait' as const), ms: fc.integer({ min: 1, max: 1200 }) }),
  },
);

const WEIGHTS = { 'ip-denied': 1, 'frame-too-large': 2, banned: 0 };

describe('ban rules', () => {
  it('match the reference model under any interleaving of strikes, bans, unbans and expiries', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const model = new Model();
        const events: BanEvent[] = [];
        const guards = createGuards(
          {
            strikes: { threshold: RULE.threshold, window: RULE.windowMs, aggregate: false },
            bans: { duration: RULE.durationMs, factor: RULE.factor, max: RULE.maxMs, forget: RULE.forgetMs },
          },
          { clock: clockAt(() => model.now), onBan: (e) => events.push(e) },
        );
        for (const o of ops) {
          if (o.op === 'wait') model.now += o.ms;
          else if (o.op === 'strike') {
            guards.strike(KEYS[o.key]!, o.reason);
            model.strike(KEYS[o.key]!, WEIGHTS[o.reason]);
          } else if (o.op === 'ban') {
            guards.ban(KEYS[o.key]!, o.ms);
            model.ban(KEYS[o.key]!, o.ms);
          } else {
            guards.unban(KEYS[o.key]!);
            model.unban(KEYS[o.key]!);
          }
          for (const k of KEYS) expect(guards.isBanned(k), k).toBe(model.banned(k));
        }
        expect(events.map((e) => ({ key: e.key, until: e.until, offences: e.offences }))).toEqual(
          model.events,
        );
        guards.close();
      }),
      { numRuns: 300 },
    );
  });
});
