import { isIPv6 } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  addressKey,
  canonicalAddress,
  formatIPv6,
  parseAddress,
  parseCidr,
  parseIPv4,
  parseIPv6,
} from './ip.js';

describe('parseIPv4', () => {
  it('parses dotted quads and refuses the rest', () => {
    expect(parseIPv4('1.2.3.4')).toBe(0x01020304);
    expect(parseIPv4('255.255.255.255')).toBe(0xffffffff);
    for (const bad of ['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1..2.3', 'a.b.c.d', '1.2.3.4 ']) {
      expect(parseIPv4(bad), bad).toBe(-1);
    }
  });
});

describe('parseIPv6 / formatIPv6', () => {
  const out = new Uint32Array(4);
  it('expands :: and embedded IPv4, strips zones', () => {
    expect(parseIPv6('::', out)).toBe(true);
    expect([...out]).toEqual([0, 0, 0, 0]);
    expect(parseIPv6('::1', out)).toBe(true);
    expect([...out]).toEqual([0, 0, 0, 1]);
    expect(parseIPv6('2001:db8::8:800:200c:417a', out)).toBe(true);
    expect(formatIPv6(out)).toBe('2001:db8::8:800:200c:417a');
    expect(parseIPv6('::ffff:1.2.3.4', out)).toBe(true);
    expect([...out]).toEqual([0, 0, 0xffff, 0x01020304]);
    expect(parseIPv6('fe80::1%eth0', out)).toBe(true);
    expect(formatIPv6(out)).toBe('fe80::1');
  });
  it('refuses malformed text', () => {
    for (const bad of [
      ':',
      ':1',
      '1:',
      '1:::2',
      '1::2::3',
      '1:2:3:4:5:6:7:8:9',
      '12345::',
      'g::',
      '1:2:3:4:5:6:7',
    ]) {
      expect(parseIPv6(bad, out), bad).toBe(false);
    }
  });
  it('agrees with node:net on random addresses (round trip)', () => {
    fc.assert(
      fc.property(fc.ipV6(), (text) => {
        expect(parseIPv6(text, out)).toBe(true);
        const formatted = formatIPv6(out);
        expect(isIPv6(formatted)).toBe(true);
        const again = new Uint32Array(4);
        parseIPv6(formatted, again);
        expect([...again]).toEqual([...out]);
      }),
    );
  });
  it('never throws on arbitrary strings', () => {
    fc.assert(
      fc.property(fc.string(), (text) => {
        const result = parseIPv6(text, out);
        if (result) expect(isIPv6(text.split('%')[0]!)).toBe(true);
      }),
    );
  });
});

describe('addressKey', () => {
  it('keys IPv4 as itself and mapped IPv4 as IPv4 (CVE-2026-30827)', () => {
    expect(addressKey('10.0.0.1')).toBe('10.0.0.1');
    expect(addressKey('::ffff:10.0.0.1')).toBe('10.0.0.1');
    expect(addressKey('::FFFF:10.0.0.2')).toBe('10.0.0.2');
    expect(addressKey('::ffff:a00:3')).toBe('10.0.0.3');
    expect(addressKey('::ffff:10.0.0.1')).not.toBe(addressKey('::ffff:10.0.0.2'));
  });
  it('masks IPv6 to the configured prefix', () => {
    expect(addressKey('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8:1:2:ffff::1')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8:1:2:3:4:5:6', 48)).toBe('2001:db8:1::/48');
    expect(addressKey('2001:db8:1:2:3:4:5:6', 56)).toBe('2001:db8:1::/56');
    expect(addressKey('2001:db8:1:2ff:3:4:5:6', 56)).toBe('2001:db8:1:200::/56');
    expect(addressKey('2001:db8::1', 128)).toBe('2001:db8::1');
    expect(addressKey('::1')).toBe('::/64');
    expect(addressKey('not an ip')).toBeUndefined();
  });
  it('canonicalAddress normalises', () => {
    expect(canonicalAddress('2001:DB8:0:0:0:0:0:1')).toBe('2001:db8::1');
    expect(canonicalAddress('::ffff:127.0.0.1')).toBe('127.0.0.1');
    expect(parseAddress('x', new Uint32Array(4))).toBe(0);
  });
});

describe('parseCidr', () => {
  it('parses, masks host bits and maps IPv4-mapped prefixes', () => {
    expect(parseCidr('10.1.2.3/8')).toMatchObject({ family: 4, bits: 8 });
    expect(parseCidr('10.1.2.3/8')!.words[0]).toBe(0x0a000000);
    expect(parseCidr('::ffff:10.0.0.0/104')).toMatchObject({ family: 4, bits: 8 });
    expect(parseCidr('2001:db8::/32')).toMatchObject({ family: 6, bits: 32 });
    expect(parseCidr('1.2.3.4')).toMatchObject({ family: 4, bits: 32 });
    for (const bad of ['1.2.3.4/33', '::/129', '1.2.3/8', 'x/8', '1.2.3.4/', '1.2.3.4/a']) {
      expect(parseCidr(bad), bad).toBeUndefined();
    }
  });
});
