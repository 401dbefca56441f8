import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LruTable } from './lru-table.js';

const keys = [
  '10.0.0.1',
  '10.0.0.2',
  '192.0.2.7',
  '0.0.0.0',
  '255.255.255.255',
  '2001:db8::/64',
  '2001:db8:0:1::/64',
  '2001:db8::/48',
  '2001:db8::1',
  '::/0',
  'user:42',
  'opaque',
];

/** Reference: a Map in LRU order, expiry ignored (entries never expire here). */
class Model {
  readonly map = new Map<string, number>();
  constructor(readonly max: number) {}
  find(k: string): number | undefined {
    const v = this.map.get(k);
    if (v === undefined) return undefined;
    this.map.delete(k);
    this.map.set(k, v);
    return v;
  }
  insert(k: string, v: number): void {
    if (this.map.size >= this.max) this.map.delete(this.map.keys().next().value!);
    this.map.set(k, v);
  }
}

describe('LruTable', () => {
  it('behaves like a Map in LRU order under random operations (hash index with backward-shift deletion)', () => {
    const op = fc.record({
      kind: fc.constantFrom('find', 'insert', 'delete'),
      key: fc.constantFrom(...keys),
      value: fc.nat(1000),
    });
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.array(op, { maxLength: 200 }), (max, ops) => {
        const table = new LruTable(max, 2);
        const model = new Model(max);
        for (const { kind, key, value } of ops) {
          if (kind === 'find') {
            const slot = table.find(key, 0);
            const expected = model.find(key);
            expect(slot < 0 ? undefined : table.data[slot * 2 + 1]).toBe(expected);
          } else if (kind === 'insert') {
            const present = table.find(key, 0) >= 0;
            expect(model.find(key) !== undefined).toBe(present);
            if (present) continue;
            const slot = table.insert(key, Number.POSITIVE_INFINITY, 0);
            table.data[slot * 2 + 1] = value;
            model.insert(key, value);
          } else {
            expect(table.delete(key)).toBe(model.map.delete(key));
          }
          expect(table.size).toBe(model.map.size);
        }
        expect(new Set([...table.entries(0)].map(([k]) => k))).toEqual(new Set(model.map.keys()));
      }),
      { numRuns: 500 },
    );
  });

  it('keeps many keys findable across growth and rehashing', () => {
    const table = new LruTable(50_000, 1);
    for (let i = 0; i < 50_000; i++)
      table.insert(`2001:db8:${(i >>> 16).toString(16)}:${(i & 0xffff).toString(16)}::/64`, 10, 0);
    for (let i = 0; i < 50_000; i += 997) {
      expect(
        table.find(`2001:db8:${(i >>> 16).toString(16)}:${(i & 0xffff).toString(16)}::/64`, 0),
      ).toBeGreaterThanOrEqual(0);
    }
    expect(table.find('2001:db8:ffff::/64', 0)).toBe(-1);
    // Expired entries are dropped when touched.
    expect(table.find('2001:db8:0:1::/64', 10)).toBe(-1);
    expect(table.stats()).toMatchObject({ size: 49_999, expired: 1 });
  });
});
