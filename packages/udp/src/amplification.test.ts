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

  it('a flood alternating forged sources over a full table never sends more than factor x what it kept', () => {
    // One address fits: each source evicts the other, so every budget restarts at zero (fails closed).
    const amp = new AmplificationLimit({ maxEntries: 1, factor: 3 }, () => 0);
    const fresh = (s: string) => `${s}.`.slice(0, -1); // a new string per datagram, as the socket gives
    let sent = 0;
    for (let i = 0; i < 100; i++) {
      const source = i % 2 === 0 ? '192.0.2.1' : '192.0.2.2';
      const other = i % 2 === 0 ? '192.0.2.2' : '192.0.2.1';
      // Runs of three datagrams from one source; its first evicts the other, whose budget is gone at once.
      amp.received(fresh(source), 7, 10);
      expect(amp.budget(fresh(other), 7)).toBe(0);
      expect(amp.trySend(fresh(other), 7, 1)).toBe(false);
      for (let k = 0; k < 2; k++) amp.received(fresh(source), 7, 10);
      expect(amp.budget(fresh(source), 7)).toBe(90);
      // Part of the budget spent: what is left must not outlive the eviction.
      if (amp.trySend(fresh(source), 7, 30)) sent += 30;
      expect(amp.budget(fresh(source), 7)).toBe(60);
      expect(amp.trySend(fresh(source), 7, 61)).toBe(false);
    }
    expect(sent).toBe(100 * 30);
  });

  it('checks its options', () => {
    expect(() => new AmplificationLimit({ factor: 0.5 }, Date.now)).toThrow(/factor/);
    expect(() => new AmplificationLimit({ maxEntries: 0 }, Date.now)).toThrow(/maxEntries/);
    expect(() => new AmplificationLimit({ maxPortsPerAddress: 1.5 }, Date.now)).toThrow(/maxPortsPerAddress/);
    expect(() => new AmplificationLimit({ idleTimeout: 'soon' }, Date.now)).toThrow(/idleTimeout/);
  });
});
