import { describe, expect, it } from 'vitest';
import { AmplificationLimit } from './amplification.js';

describe('AmplificationLimit', () => {
  it('allows 3x the bytes received until validated', () => {
    const amp = new AmplificationLimit({}, () => 0);
    expect(amp.trySend('a', 1)).toBe(false);
    amp.received('a', 100);
    expect(amp.budget('a')).toBe(300);
    expect(amp.trySend('a', 250)).toBe(true);
    expect(amp.trySend('a', 51)).toBe(false);
    expect(amp.trySend('a', 50)).toBe(true);
    amp.validate('a');
    expect(amp.trySend('a', 1e6)).toBe(true);
    expect(amp.budget('a')).toBe(Number.POSITIVE_INFINITY);
  });

  it('is bounded, forgets idle addresses and fails closed for them', () => {
    let now = 0;
    const amp = new AmplificationLimit({ maxEntries: 2, idleTimeout: '1s', factor: 2 }, () => now);
    amp.received('a', 10);
    amp.received('b', 10);
    amp.received('c', 10);
    expect(amp.size).toBe(2);
    expect(amp.trySend('a', 1)).toBe(false); // evicted
    expect(amp.trySend('c', 20)).toBe(true);
    amp.validate('c');
    now = 1001;
    expect(amp.isValidated('c')).toBe(false);
    expect(amp.trySend('c', 1)).toBe(false);
  });

  it('checks its options', () => {
    expect(() => new AmplificationLimit({ factor: 0.5 }, Date.now)).toThrow(/factor/);
    expect(() => new AmplificationLimit({ maxEntries: 0 }, Date.now)).toThrow(/maxEntries/);
    expect(() => new AmplificationLimit({ idleTimeout: 'soon' }, Date.now)).toThrow(/idleTimeout/);
  });
});
