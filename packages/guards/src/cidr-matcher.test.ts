import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createCidrMatcher } from './cidr-matcher.js';
import { parseAddress, parseCidr, parseIPv4 } from './ip.js';

/** The naive reference: scan every rule, keep the longest covering prefix (the later one on ties). */
function naive(rules: Array<{ cidr: string; value: number }>, address: string): number | undefined {
  const addr = new Uint32Array(4);
  const family = parseAddress(address, addr);
  let best: { bits: number; value: number } | undefined;
  for (const rule of rules) {
    const c = parseCidr(rule.cidr)!;
    if (c.family !== family) continue;
    let covers = true;
    for (let k = 0; k < (family === 4 ? 1 : 4); k++) {
      const keep = c.bits - k * 32;
      if (keep <= 0) break;
      const mask = keep >= 32 ? 0xffffffff : (0xffffffff << (32 - keep)) >>> 0;
      if ((addr[k]! & mask) >>> 0 !== c.words[k]) covers = false;
    }
    if (covers && (!best || c.bits >= best.bits)) best = { bits: c.bits, value: rule.value };
  }
  return best?.value;
}

const octet = fc.integer({ min: 0, max: 255 });
// Addresses drawn from a small space so rules and probes collide often.
const v4 = fc
  .tuple(fc.constantFrom(10, 192), fc.constantFrom(0, 1, 168), octet, octet)
  .map((o) => o.join('.'));
const v6 = fc
  .tuple(
    fc.constantFrom('2001:db8', 'fe80:0'),
    fc.integer({ min: 0, max: 3 }),
    fc.integer({ min: 0, max: 0xffff }),
  )
  .map(([p, a, b]) => `${p}:${a}::${b.toString(16)}`);
const rule4 = fc.record({
  cidr: fc.tuple(v4, fc.integer({ min: 0, max: 32 })).map(([a, b]) => `${a}/${b}`),
  value: fc.nat(9),
});
const rule6 = fc.record({
  cidr: fc.tuple(v6, fc.integer({ min: 0, max: 128 })).map(([a, b]) => `${a}/${b}`),
  value: fc.nat(9),
});

describe('createCidrMatcher', () => {
  it('most specific prefix wins', () => {
    const m = createCidrMatcher([
      { cidr: '10.0.0.0/8', value: 'deny' },
      { cidr: '10.1.2.3/32', value: 'allow' },
      { cidr: '10.1.0.0/16', value: 'allow' },
      { cidr: '10.1.2.0/24', value: 'deny' },
      { cidr: '2001:db8::/32', value: 'deny' },
      { cidr: '2001:db8:1::/48', value: 'allow' },
      { cidr: '2001:db8:1::7', value: 'deny' },
    ]);
    expect(m.size).toBe(7);
    expect(m.lookup('10.9.9.9')).toBe('deny');
    expect(m.lookup('10.1.2.3')).toBe('allow');
    expect(m.lookup('10.1.2.4')).toBe('deny');
    expect(m.lookup('10.1.3.4')).toBe('allow');
    expect(m.lookup('11.0.0.1')).toBeUndefined();
    expect(m.lookup('::ffff:10.1.2.3')).toBe('allow');
    expect(m.lookup('2001:db8:2::1')).toBe('deny');
    expect(m.lookup('2001:db8:1::1')).toBe('allow');
    expect(m.lookup('2001:db8:1::7')).toBe('deny');
    expect(m.lookup('2001:db9::1')).toBeUndefined();
    expect(m.lookup('garbage')).toBeUndefined();
  });

  it('a /0 rule covers its whole family only', () => {
    const m = createCidrMatcher([{ cidr: '0.0.0.0/0', value: 1 }]);
    expect(m.lookup('1.2.3.4')).toBe(1);
    expect(m.lookup('::1')).toBeUndefined();
  });

  it('counts distinct rules and lets a later duplicate replace an earlier one', () => {
    const m = createCidrMatcher([
      { cidr: '10.0.0.0/8', value: 1 },
      { cidr: '10.2.3.4/8', value: 2 },
      { cidr: '1.1.1.1', value: 3 },
      { cidr: '1.1.1.1/32', value: 4 },
    ]);
    expect(m.size).toBe(2);
    expect(m.lookup('10.0.0.1')).toBe(2);
    expect(m.lookup('1.1.1.1')).toBe(4);
  });

  it('throws on an invalid rule', () => {
    expect(() => createCidrMatcher([{ cidr: '10.0.0/8', value: 1 }])).toThrow(
      expect.objectContaining({
        code: 'ERR_SOCK_INVALID_OPTION',
        message: expect.stringContaining('not an IP address or CIDR: "10.0.0/8"'),
      }),
    );
    expect(() => createCidrMatcher([{ cidr: 'fe80::zz/64', value: 1 }])).toThrow(
      expect.objectContaining({ code: 'ERR_SOCK_INVALID_OPTION' }),
    );
  });

  it.each([16, 20] as const)(
    'agrees with a naive scan (IPv4, %i-bit direct table)',
    (directBits) => {
      fc.assert(
        fc.property(
          fc.array(rule4, { maxLength: 40 }),
          fc.array(v4, { minLength: 1, maxLength: 20 }),
          (rules, probes) => {
            const m = createCidrMatcher(rules, { directBits });
            for (const p of probes) {
              expect(m.lookup(p)).toBe(naive(rules, p));
              // The same rule for the address as a number (what the datagram check passes).
              expect(m.lookupIPv4(parseIPv4(p))).toBe(naive(rules, p));
            }
          },
        ),
        { numRuns: 300 },
      );
      // Bounded work (300 runs; a 20-bit table is 4 MiB each), CPU-bound: slow on a loaded machine, not stuck.
    },
    60_000,
  );

  it('agrees with a naive scan (IPv6)', () => {
    fc.assert(
      fc.property(
        fc.array(rule6, { maxLength: 40 }),
        fc.array(v6, { minLength: 1, maxLength: 20 }),
        (rules, probes) => {
          const m = createCidrMatcher(rules);
          for (const p of probes) expect(m.lookup(p)).toBe(naive(rules, p));
        },
      ),
      { numRuns: 300 },
    );
  });
});
