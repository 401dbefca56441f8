import { describe, expect, it } from 'vitest';
import { Lru } from './lru.js';

describe('Lru', () => {
  it('evicts the least recently used entry at its cap', () => {
    const lru = new Lru<string, number>(2, 1000, () => 0);
    lru.set('a', 1);
    lru.set('b', 2);
    expect(lru.get('a')).toBe(1); // a is now the most recent
    lru.set('c', 3);
    expect(lru.get('b')).toBeUndefined();
    expect(lru.get('a')).toBe(1);
    expect(lru.size).toBe(2);
    expect(lru.evictions).toBe(1);
  });

  it('expires lazily: fixed from set, or sliding on each get', () => {
    let now = 0;
    const fixed = new Lru<string, number>(10, 100, () => now);
    const sliding = new Lru<string, number>(10, 100, () => now, true);
    fixed.set('k', 1);
    sliding.set('k', 1);
    now = 60;
    expect(fixed.get('k')).toBe(1);
    expect(sliding.get('k')).toBe(1);
    now = 120;
    expect(fixed.get('k')).toBeUndefined();
    expect(sliding.get('k')).toBe(1);
    expect(fixed.size).toBe(0);
    now = 300;
    expect(sliding.get('k')).toBeUndefined();
  });

  it('never answers from its remembered last entry once that entry was replaced, deleted, evicted or expired', () => {
    let now = 0;
    const lru = new Lru<string, number>(2, 100, () => now, true);
    // Keys as fresh strings, as datagram sources arrive: equal text, another string each time.
    const k = (s: string) => `${s}.`.slice(0, -1);
    lru.set('a', 1);
    expect(lru.get(k('a'))).toBe(1);
    lru.set('a', 2);
    expect(lru.get(k('a'))).toBe(2);
    lru.delete('a');
    expect(lru.get(k('a'))).toBeUndefined();
    lru.set('a', 3);
    lru.set('b', 4);
    expect(lru.get(k('b'))).toBe(4);
    lru.set('c', 5); // evicts a (b was used since)
    expect(lru.get(k('a'))).toBeUndefined();
    expect(lru.get(k('b'))).toBe(4);
    lru.set('d', 6); // b has its second chance; c goes
    expect(lru.get(k('c'))).toBeUndefined();
    expect(lru.get(k('b'))).toBe(4);
    // Sliding expiry still runs on a remembered entry.
    now = 90;
    expect(lru.get(k('b'))).toBe(4);
    now = 180;
    expect(lru.get(k('b'))).toBe(4);
    now = 300;
    expect(lru.get(k('b'))).toBeUndefined();
    expect(lru.size).toBe(1);
    lru.set('b', 7);
    expect(lru.get(k('b'))).toBe(7);
    lru.clear();
    expect(lru.get(k('b'))).toBeUndefined();
  });
});
