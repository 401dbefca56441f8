import { expect, it } from 'vitest';
import { createRing } from './status/ring.js';
import { createTopKeys } from './top-keys.js';

it('a scan from 100,000 sources costs `capacity` entries, and a key above 1/capacity of refusals stays on top', () => {
  const top = createTopKeys(50);
  for (let i = 0; i < 100_000; i++) {
    top.add(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, 'ip-denied', i);
    if (i % 20 === 0) top.add('203.0.113.9', 'rate-messages', i); // 5% of the refusals > 1/capacity
  }
  expect(top.size).toBe(50);
  const [first] = top.top(3);
  expect(first).toMatchObject({ key: '203.0.113.9', lastReason: 'rate-messages' });
  // Space-Saving over-counts by at most `error`, never under-counts.
  expect(first!.count - first!.error).toBeLessThanOrEqual(5000);
  expect(first!.count).toBeGreaterThanOrEqual(5000);
  expect(createTopKeys(0).top(5)).toEqual([]);
});

it('the ring keeps the newest items, oldest first, and never more than its capacity', () => {
  const ring = createRing<number>(3);
  for (let i = 1; i <= 10; i++) ring.push(i);
  expect(ring.toArray()).toEqual([8, 9, 10]);
  expect(ring.size).toBe(3);
  const empty = createRing<number>(0);
  empty.push(1);
  expect(empty.toArray()).toEqual([]);
});
