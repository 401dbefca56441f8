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
});
