import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { collapse, contains, formatIPv6, parseAddress, parseTarget } from './address.js';
import { FirewallError } from './errors.js';

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return FirewallError.isInstance(e) ? e.code : 'not a FirewallError';
  }
  return undefined;
}

describe('parseTarget', () => {
  it.each([
    ['192.0.2.1', '192.0.2.1', 'address'],
    ['0.0.0.0', '0.0.0.0', 'address'],
    ['255.255.255.255', '255.255.255.255', 'address'],
    ['198.51.100.7/24', '198.51.100.0/24', 'cidr'],
    ['10.0.0.0/8', '10.0.0.0/8', 'cidr'],
    ['192.0.2.1/32', '192.0.2.1', 'address'],
    ['2001:DB8::1', '2001:db8::1', 'address'],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1', 'address'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1', 'address'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1', 'address'],
    ['::', '::', 'address'],
    ['::1', '::1', 'address'],
    ['1::', '1::', 'address'],
    ['2001:db8::1/64', '2001:db8::/64', 'cidr'],
    ['2001:db8:abcd:12::/128', '2001:db8:abcd:12::', 'address'],
    ['::ffff:192.0.2.1', '192.0.2.1', 'address'],
    ['::FFFF:c000:0201', '192.0.2.1', 'address'],
    ['::ffff:10.0.0.0/104', '10.0.0.0/8', 'cidr'],
    ['::192.0.2.1', '::c000:201', 'address'],
  ])('%s → %s', (input, text, kind) => {
    const t = parseTarget(input);
    expect(t.text).toBe(text);
    expect(t.kind).toBe(kind);
  });

  it.each([
    '1.2.3.4; touch /tmp/x',
    '{ 1.2.3.4 }; flush ruleset',
    'fe80::1%x; touch /tmp/x',
    'fe80::1%eth0',
    '1.2.3.4\n',
    '1.2.3.4\nflush ruleset',
    '1.2.3.4\0',
    '\u0661\u0662\u0663.1.1.1',
    '１.2.3.4',
    '1.2.3.4 ',
    ' 1.2.3.4',
    '',
    '1.2.3',
    '1.2.3.4.5',
    '256.1.1.1',
    '01.2.3.4',
    '1.2.3.4/33',
    '1.2.3.4/08',
    '1.2.3.4/',
    '/24',
    '2001:db8::1::1',
    '1:2:3:4:5:6:7:8:9',
    '1:2:3:4:5:6:7::8',
    '12345::',
    ':::',
    '1.2.3.4::',
    '::1.2.3',
    'example.com',
    '$(reboot)',
    '`id`',
    '-1.2.3.4',
    '0x7f.0.0.1',
    '1.2.3.4/24/24',
    'a'.repeat(65),
  ])('rejects %j as ERR_SOCK_FW_INVALID_ADDRESS', (input) => {
    expect(code(() => parseTarget(input))).toBe('ERR_SOCK_FW_INVALID_ADDRESS');
  });

  it('rejects non-strings', () => {
    for (const v of [undefined, null, 1234, {}, ['1.2.3.4']]) {
      expect(code(() => parseTarget(v))).toBe('ERR_SOCK_FW_INVALID_ADDRESS');
    }
  });

  it('refuses prefixes broader than /8 and /32 unless allowed', () => {
    expect(code(() => parseTarget('10.0.0.0/7'))).toBe('ERR_SOCK_FW_PREFIX_TOO_BROAD');
    expect(code(() => parseTarget('0.0.0.0/0'))).toBe('ERR_SOCK_FW_PREFIX_TOO_BROAD');
    expect(code(() => parseTarget('2001::/31'))).toBe('ERR_SOCK_FW_PREFIX_TOO_BROAD');
    expect(code(() => parseTarget('::ffff:0.0.0.0/96'))).toBe('ERR_SOCK_FW_PREFIX_TOO_BROAD');
    expect(parseTarget('10.0.0.0/7', { allowBroadPrefix: true }).text).toBe('10.0.0.0/7');
    expect(parseTarget('2001:db8::/32').text).toBe('2001:db8::/32');
  });

  it('parseAddress refuses CIDRs', () => {
    expect(parseAddress('192.0.2.1/32').text).toBe('192.0.2.1');
    expect(code(() => parseAddress('192.0.2.0/24'))).toBe('ERR_SOCK_FW_INVALID_ADDRESS');
  });

  it('messages say what was wrong and what to pass', () => {
    expect(() => parseTarget('1.2.3.4; touch /tmp/x')).toThrow(
      /invalid IP address or CIDR "1.2.3.4; touch \/tmp\/x": character ";" at index 7 is not allowed; pass a plain/,
    );
  });

  it('containment and collapse', () => {
    const a = parseTarget('10.0.0.0/8');
    const b = parseTarget('10.1.0.0/16');
    expect(contains(a, b)).toBe(true);
    expect(contains(b, a)).toBe(false);
    expect(collapse([b, a, parseTarget('192.0.2.1')]).map((t) => t.text)).toEqual([
      '10.0.0.0/8',
      '192.0.2.1',
    ]);
  });
});

const v4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((p) => p.join('.'));
const v6Value = fc.bigInt({ min: 0n, max: (1n << 128n) - 1n });

describe('parseTarget properties', () => {
  it('IPv4 round-trips and is canonical', () => {
    fc.assert(
      fc.property(v4, (text) => {
        const t = parseTarget(text);
        expect(t.text).toBe(text);
        expect(parseTarget(t.text).text).toBe(t.text);
      }),
    );
  });

  it('IPv6: any spelling of a value parses to the same canonical text, which is idempotent', () => {
    fc.assert(
      fc.property(v6Value, fc.boolean(), fc.boolean(), (value, upper, padded) => {
        const groups: string[] = [];
        for (let s = 112n; s >= 0n; s -= 16n) {
          const g = ((value >> s) & 0xffffn).toString(16);
          groups.push(padded ? g.padStart(4, '0') : g);
        }
        let full = groups.join(':');
        if (upper) full = full.toUpperCase();
        const a = parseTarget(full);
        const b = parseTarget(formatIPv6(value));
        expect(a.text).toBe(b.text);
        expect(parseTarget(a.text).text).toBe(a.text);
        expect(a.text).toBe(a.text.toLowerCase());
      }),
    );
  });

  it('CIDRs: canonical form is the masked network and contains the input address', () => {
    fc.assert(
      fc.property(v4, fc.integer({ min: 8, max: 32 }), (addr, prefix) => {
        const t = parseTarget(`${addr}/${prefix}`);
        expect(parseTarget(t.text).text).toBe(t.text);
        expect(contains(t, parseTarget(addr))).toBe(true);
      }),
    );
  });

  it('never accepts a string with characters outside [0-9a-fA-F:./]', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), fc.string({ minLength: 1, maxLength: 3 }), (s, bad) => {
        fc.pre(/[^0-9a-fA-F:./]/.test(bad));
        expect(code(() => parseTarget(`${s}${bad}`))).toMatch(
          /ERR_SOCK_FW_(INVALID_ADDRESS|PREFIX_TOO_BROAD)/,
        );
      }),
    );
  });

  it('arbitrary input either throws a FirewallError or yields a re-parsable canonical target', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEF:./'.split('')), maxLength: 45 }),
        (s) => {
          let t: ReturnType<typeof parseTarget>;
          try {
            t = parseTarget(s, { allowBroadPrefix: true });
          } catch (e) {
            expect(FirewallError.isInstance(e)).toBe(true);
            return;
          }
          expect(parseTarget(t.text, { allowBroadPrefix: true }).text).toBe(t.text);
          expect(t.text).toMatch(/^[0-9a-f:.]+(\/[0-9]{1,3})?$/);
        },
      ),
      { numRuns: 2000 },
    );
  });
});
