import { isIPv6 } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from './ip-address.js';

/** WHATWG URL serialises IPv6 hosts the RFC 5952 way: an independent oracle. */
const canonical = (text: string) => new URL(`http://[${text}]/`).hostname.slice(1, -1);

describe('ip-address', () => {
  it('parses strict dotted quads only', () => {
    expect(parseIPv4('192.0.2.1')).toBe(0xc0000201);
    for (const bad of ['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1..2.3', ' 1.2.3.4', '١.1.1.1']) {
      expect(parseIPv4(bad), bad).toBe(-1);
    }
    expect(formatIPv4(0xc0000201)).toBe('192.0.2.1');
  });

  it('formats any 128-bit value as RFC 5952 text that parses back to it', () => {
    const out = new Uint32Array(4);
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.constant(0), fc.nat(0xffffffff)), { minLength: 4, maxLength: 4 }),
        (w) => {
          const text = formatIPv6(w);
          expect(isIPv6(text)).toBe(true);
          expect(text).toBe(canonical(text));
          expect(parseIPv6(text, out)).toBe(true);
          expect([...out]).toEqual(w);
        },
      ),
    );
  });

  it('agrees with node:net on what is IPv6 text, and reads it as URL does', () => {
    const out = new Uint32Array(4);
    const group = fc.oneof(fc.constant('0'), fc.constant(''), fc.stringMatching(/^[0-9a-fA-F]{1,5}$/));
    fc.assert(
      fc.property(fc.array(group, { minLength: 1, maxLength: 10 }), fc.boolean(), (groups, v4) => {
        const text = groups.join(':') + (v4 ? ':192.0.2.1' : '');
        const ok = parseIPv6(text, out);
        expect(ok).toBe(isIPv6(text));
        if (ok) expect(formatIPv6(out)).toBe(canonical(text));
      }),
    );
  });
});
