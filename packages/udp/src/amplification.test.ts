import { describe, expect, it } from 'vitest';
import { AmplificationLimit } from './amplification.js';

describe('AmplificationLimit', () => {
  it('allows 3x the bytes received until validated', () => {
    const amp = new AmplificationLimit({}, () => 0);
    expect(amp.trySend('a', 1, 1)).toBe(false);
    amp.received('a', 1, 100);
    expect(amp.budget('a', 1)).toBe(300);
    expect(amp.trySend('a', 1, 250)).toBe(true);
    expect(amp.trySend('a', 1, 51)).toBe(false);
    expect(amp.trySend('a', 1, 50)).toBe(true);
    amp.validate('a', 1);
    expect(amp.trySend('a', 1, 1e6)).toBe(true);
    expect(amp.budget('a', 1)).toBe(Number.POSITIVE_INFINITY);
  });

  it('is bounded, forgets idle addresses and fails closed for them', () => {
    let now = 0;
    const amp = new AmplificationLimit({ maxEntries: 2, idleTimeout: '1s', factor: 2 }, () => now);
    amp.received('a', 1, 10);
    amp.received('b', 1, 10);
    amp.received('c', 1, 10);
    expect(amp.size).toBe(2);
    expect(amp.trySend('a', 1, 1)).toBe(false); // evicted
    expect(amp.trySend('c', 1, 20)).toBe(true);
    amp.validate('c', 1);
    now = 1001;
    expect(amp.isValidated('c', 1)).toBe(false);
    expect(amp.trySend('c', 1, 1)).toBe(false);
  });

  it('keeps a budget per port, and at most maxPortsPerAddress ports per address', () => {
    const amp = new AmplificationLimit({ maxPortsPerAddress: 2 }, () => 0);
    amp.received('a', 1, 10);
    expect(amp.trySend('a', 2, 1)).toBe(false);
    amp.validate('a', 1);
    expect(amp.isValidated('a', 2)).toBe(false);
    amp.received('a', 2, 10);
    amp.received('a', 3, 10);
    expect(amp.isValidated('a', 1)).toBe(false); // port 1 was the oldest: forgotten
    expect(amp.budget('a', 3)).toBe(30);
  });

  it('checks its options', () => {
    expect(() => new AmplificationLimit({ factor: 0.5 }, Date.now)).toThrow(/factor/);
    expect(() => new AmplificationLimit({ maxEntries: 0 }, Date.now)).toThrow(/maxEntries/);
    expect(() => new AmplificationLimit({ maxPortsPerAddress: 1.5 }, Date.now)).toThrow(/maxPortsPerAddress/);
    expect(() => new AmplificationLimit({ idleTimeout: 'soon' }, Date.now)).toThrow(/idleTimeout/);
  });
});
