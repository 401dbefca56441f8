import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PROXY_V2_SIGNATURE, parseProxyHeader, proxyV1Header, proxyV2Header } from './proxy-protocol.js';

describe('parseProxyHeader v1', () => {
  it('parses TCP4, TCP6 and UNKNOWN', () => {
    const h = Buffer.from('PROXY TCP4 192.0.2.1 198.51.100.2 5000 443\r\nhello');
    expect(parseProxyHeader(h)).toEqual({
      status: 'done',
      version: 1,
      length: h.length - 5,
      command: 'proxy',
      source: { address: '192.0.2.1', port: 5000 },
      destination: { address: '198.51.100.2', port: 443 },
    });
    expect(parseProxyHeader(Buffer.from('PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n'))).toMatchObject({
      status: 'done',
      source: { address: '2001:db8::1', port: 1 },
    });
    const unknown = parseProxyHeader(Buffer.from('PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n'));
    expect(unknown).toMatchObject({ status: 'done', command: 'proxy' });
    expect(unknown).not.toHaveProperty('source');
  });

  it('waits for more, and refuses garbage, bad fields and over-long lines', () => {
    expect(parseProxyHeader(Buffer.from('PRO'))).toEqual({ status: 'incomplete' });
    expect(parseProxyHeader(Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r'))).toEqual({
      status: 'incomplete',
    });
    for (const bad of [
      'GET / HTTP/1.1\r\n',
      'PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n',
      'PROXY TCP4 1.2.3.999 5.6.7.8 1 2\r\n',
      'PROXY TCP4 2001:db8::1 5.6.7.8 1 2\r\n',
      'PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n',
      'PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n',
      'PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n',
      'PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX',
    ]) {
      expect(parseProxyHeader(Buffer.from(bad)).status, bad).toBe('invalid');
    }
    const long = Buffer.from(`PROXY UNKNOWN ${'x'.repeat(100)}\r\n`);
    expect(parseProxyHeader(long)).toMatchObject({
      status: 'invalid',
      message: expect.stringContaining('107'),
    });
    // Exactly 107 bytes is still a header.
    const max = Buffer.from(`PROXY UNKNOWN ${'x'.repeat(107 - 16)}\r\n`);
    expect(max.length).toBe(107);
    expect(parseProxyHeader(max).status).toBe('done');
  });

  it('round-trips the builder', () => {
    const h = proxyV1Header({ address: '10.0.0.1', port: 1234 }, { address: '10.0.0.2', port: 80 });
    expect(parseProxyHeader(h)).toMatchObject({
      status: 'done',
      source: { address: '10.0.0.1', port: 1234 },
    });
  });
});

describe('parseProxyHeader v2', () => {
  it('parses IPv4, IPv6, LOCAL and UNSPEC; skips TLVs', () => {
    const v4 = proxyV2Header({ address: '192.0.2.7', port: 4000 }, { address: '192.0.2.8', port: 443 });
    expect(parseProxyHeader(Buffer.concat([v4, Buffer.from('rest')]))).toEqual({
      status: 'done',
      version: 2,
      length: v4.length,
      command: 'proxy',
      source: { address: '192.0.2.7', port: 4000 },
      destination: { address: '192.0.2.8', port: 443 },
    });
    const v6 = proxyV2Header({ address: '2001:db8::7', port: 1 }, { address: '2001:db8::8', port: 2 });
    expect(parseProxyHeader(v6)).toMatchObject({
      status: 'done',
      source: { address: '2001:db8::7', port: 1 },
    });
    expect(parseProxyHeader(proxyV2Header())).toEqual({
      status: 'done',
      version: 2,
      length: 16,
      command: 'local',
    });
    const unspec = Buffer.concat([PROXY_V2_SIGNATURE, Buffer.from([0x21, 0x00, 0, 0])]);
    expect(parseProxyHeader(unspec)).toEqual({ status: 'done', version: 2, length: 16, command: 'proxy' });
    // A TLV after the address block is part of the header and skipped.
    const withTlv = Buffer.from(v4);
    withTlv.writeUInt16BE(12 + 4, 14);
    const tlv = Buffer.concat([withTlv, Buffer.from([0x04, 0, 1, 0x2a])]);
    expect(parseProxyHeader(tlv)).toMatchObject({ status: 'done', length: 16 + 16 });
  });

  it('refuses bad versions, commands, families, short blocks and oversize headers', () => {
    const v4 = proxyV2Header({ address: '192.0.2.7', port: 4000 }, { address: '192.0.2.8', port: 443 });
    const mutate = (at: number, value: number) => {
      const b = Buffer.from(v4);
      b[at] = value;
      return b;
    };
    expect(parseProxyHeader(mutate(12, 0x11)).status).toBe('invalid');
    expect(parseProxyHeader(mutate(12, 0x22)).status).toBe('invalid');
    expect(parseProxyHeader(mutate(13, 0x41)).status).toBe('invalid');
    const short = Buffer.from(v4);
    short.writeUInt16BE(8, 14);
    expect(parseProxyHeader(short.subarray(0, 24)).status).toBe('invalid');
    const big = Buffer.from(v4);
    big.writeUInt16BE(1000, 14);
    expect(parseProxyHeader(big, 536)).toMatchObject({ status: 'invalid' });
    expect(parseProxyHeader(v4.subarray(0, 20))).toEqual({ status: 'incomplete' });
    expect(parseProxyHeader(Buffer.from([0x0d, 0x0a, 0x0d, 0x0b])).status).toBe('invalid');
  });
});

describe('parseProxyHeader on random bytes', () => {
  it('never throws, never claims more bytes than it was given, never more than maxBytes', () => {
    const prefixes = [Buffer.alloc(0), Buffer.from('PROXY '), PROXY_V2_SIGNATURE, Buffer.from('PROXY TCP4 ')];
    fc.assert(
      fc.property(
        fc.constantFrom(...prefixes),
        fc.uint8Array({ maxLength: 700 }),
        fc.integer({ min: 108, max: 1000 }),
        (prefix, tail, max) => {
          const buf = Buffer.concat([prefix, tail]);
          const r = parseProxyHeader(buf, max);
          if (r.status === 'done') {
            expect(r.length).toBeLessThanOrEqual(buf.length);
            expect(r.length).toBeLessThanOrEqual(Math.max(max, 107));
          }
          if (r.status === 'incomplete') expect(buf.length).toBeLessThan(Math.max(max, 107));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('parses any generated header exactly', () => {
    fc.assert(
      fc.property(
        fc.ipV4(),
        fc.ipV4(),
        fc.nat(65535),
        fc.nat(65535),
        fc.boolean(),
        (src, dst, sp, dp, v2) => {
          const s = { address: src, port: sp };
          const d = { address: dst, port: dp };
          const h = v2 ? proxyV2Header(s, d) : proxyV1Header(s, d);
          const r = parseProxyHeader(Buffer.concat([h, Buffer.from('tail')]));
          expect(r).toMatchObject({ status: 'done', length: h.length, source: s, destination: d });
        },
      ),
    );
  });

  it('gives an IPv4-mapped v2 source as IPv4 (defence in depth: core canonicalises too)', () => {
    const h = parseProxyHeader(
      proxyV2Header({ address: '::ffff:192.0.2.7', port: 1 }, { address: '::ffff:198.51.100.1', port: 2 }),
    );
    expect(h).toMatchObject({
      status: 'done',
      source: { address: '192.0.2.7' },
      destination: { address: '198.51.100.1' },
    });
  });
});
