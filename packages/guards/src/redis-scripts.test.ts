import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { crc16, redisBanKeys, redisKeySlot, redisKeys } from './redis-scripts.js';

describe('Redis Cluster key layout', () => {
  it('CRC16 (XMODEM) and key slots match the Redis Cluster specification', () => {
    expect(crc16(Buffer.from('123456789'))).toBe(0x31c3);
    expect(redisKeySlot('foo')).toBe(12182);
    expect(redisKeySlot('bar')).toBe(5061);
    expect(redisKeySlot('hello')).toBe(866);
    // Hash tags: the first {…} with content decides; an empty {} does not.
    expect(redisKeySlot('{user1000}.following')).toBe(redisKeySlot('{user1000}.followers'));
    expect(redisKeySlot('{user1000}.following')).toBe(redisKeySlot('user1000'));
    expect(redisKeySlot('foo{}{bar}')).toBe(redisKeySlot(Buffer.from('foo{}{bar}')));
    expect(redisKeySlot('foo{}{bar}')).not.toBe(redisKeySlot('bar'));
    expect(redisKeySlot('foo{{bar}}zap')).toBe(redisKeySlot('{bar'));
    expect(redisKeySlot('foo{bar}{zap}')).toBe(redisKeySlot('bar'));
  });

  it('every key of one decision lands in one slot, for any address or prefix', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.ipV4(),
          fc.ipV6().map((a) => `${a}/64`),
          fc.string(),
        ),
        fc.constantFrom('sock:', 'app:{x}:', ''),
        fc.string(),
        (key, prefix, table) => {
          const k = redisKeys(prefix, key);
          const slot = redisKeySlot(k.conns);
          expect(redisKeySlot(k.rate(table))).toBe(slot);
          expect(redisKeySlot(redisBanKeys(prefix).strikes(key))).toBe(
            redisKeySlot(redisBanKeys(prefix).records),
          );
        },
      ),
    );
    const b = redisBanKeys('sock:');
    expect(redisKeySlot(b.records)).toBe(redisKeySlot(b.index));
    expect(redisKeySlot(b.records)).toBe(redisKeySlot(b.epoch));
    expect(redisKeys('sock:', '203.0.113.7').conns).toBe('sock:{203.0.113.7}:c');
  });
});
