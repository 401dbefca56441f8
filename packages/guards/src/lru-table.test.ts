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

  it('finds an IPv4 entry by its number or its text alike, and a number between two texts is no stale cache', () => {
    const table = new LruTable(8, 2);
    const a = table.insert('192.0.2.1', 10, 0);
    const b = table.insertIPv4(0xc0000202, 10, 0); // 192.0.2.2
    table.data[a * 2 + 1] = 1;
    table.data[b * 2 + 1] = 2;
    expect(table.find('192.0.2.2', 0)).toBe(b);
    expect(table.findIPv4(0xc0000201, 0)).toBe(a);
    expect(table.findAnyIPv4(0xc0000202)).toBe(b);
    // The text of the last key looked up is cached with its words: a numeric lookup in between must not
    // leave the cache pointing at the number's words.
    expect(table.find('192.0.2.1', 0)).toBe(a);
    expect(table.findIPv4(0xc0000202, 0)).toBe(b);
    expect(table.find('192.0.2.1', 0)).toBe(a);
    expect(table.insertIPv4(0xc0000201 + 2, 10, 0)).toBeGreaterThanOrEqual(0);
    expect(table.find('192.0.2.1', 0)).toBe(a);
    expect(table.find('192.0.2.3', 0)).toBeGreaterThanOrEqual(0);
    expect(new Set([...table.entries(0)].map(([k]) => k))).toEqual(
      new Set(['192.0.2.1', '192.0.2.2', '192.0.2.3']),
    );
    // Expiry and absence as for text keys.
    expect(table.findIPv4(0xc0000201, 10)).toBe(-1);
    expect(table.find('192.0.2.1', 0)).toBe(-1);
    expect(table.findIPv4(0x0a000001, 0)).toBe(-1);
    expect(table.findAnyIPv4(0x0a000001)).toBe(-1);
  });
});
