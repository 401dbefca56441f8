import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { COOKIE_BYTES } from './cookie.js';
import { ENVELOPE_HEADER_BYTES, encodeEnvelope, parseEnvelope } from './envelope.js';

const kinds = ['request', 'response', 'error'] as const;

describe('envelope', () => {
  it('lays out version+kind, flags, id, cookie, payload', () => {
    const cookie = Buffer.alloc(COOKIE_BYTES, 0xcc);
    const bytes = encodeEnvelope('request', 0x01020304, Buffer.from('hi'), cookie);
    expect([...bytes.subarray(0, ENVELOPE_HEADER_BYTES)]).toEqual([0x11, 0x01, 1, 2, 3, 4]);
    expect(bytes.subarray(6, 26).equals(cookie)).toBe(true);
    expect(bytes.subarray(26).toString()).toBe('hi');
    expect([...encodeEnvelope('response', 1).subarray(0, 2)]).toEqual([0x12, 0x00]);
  });

  it('round-trips any kind, id, cookie and payload', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...kinds),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.option(fc.uint8Array({ minLength: COOKIE_BYTES, maxLength: COOKIE_BYTES }), { nil: undefined }),
        fc.uint8Array({ maxLength: 300 }),
        (kind, id, cookie, payload) => {
          const parsed = parseEnvelope(encodeEnvelope(kind, id, payload, cookie));
          expect(parsed?.kind).toBe(kind);
          expect(parsed?.id).toBe(id);
          expect(parsed?.cookie ? [...parsed.cookie] : undefined).toEqual(cookie ? [...cookie] : undefined);
          expect([...(parsed?.payload ?? [])]).toEqual([...payload]);
        },
      ),
    );
  });

  it('round-trips a cookie datagram, which needs a cookie and no payload', () => {
    const cookie = Buffer.alloc(COOKIE_BYTES, 1);
    expect(parseEnvelope(encodeEnvelope('cookie', 5, undefined, cookie))).toMatchObject({
      kind: 'cookie',
      id: 5,
    });
    expect(parseEnvelope(encodeEnvelope('cookie', 5))).toBeUndefined();
    expect(parseEnvelope(encodeEnvelope('cookie', 5, Buffer.from('x'), cookie))).toBeUndefined();
  });

  it('refuses short, truncated, unknown-version, unknown-kind and unknown-flag datagrams', () => {
    const ok = encodeEnvelope('request', 1, Buffer.from('p'));
    expect(parseEnvelope(ok.subarray(0, 5))).toBeUndefined();
    expect(parseEnvelope(Buffer.from([0x21, 0, 0, 0, 0, 1]))).toBeUndefined();
    expect(parseEnvelope(Buffer.from([0x10, 0, 0, 0, 0, 1]))).toBeUndefined();
    expect(parseEnvelope(Buffer.from([0x15, 0, 0, 0, 0, 1]))).toBeUndefined();
    expect(parseEnvelope(Buffer.from([0x11, 0x02, 0, 0, 0, 1]))).toBeUndefined();
    expect(parseEnvelope(Buffer.from([0x11, 0x01, 0, 0, 0, 1, 1, 2, 3]))).toBeUndefined();
    expect(() => encodeEnvelope('request', 1, undefined, Buffer.alloc(3))).toThrow(RangeError);
  });

  it('never throws on random bytes, and what it accepts re-encodes to the same bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (raw) => {
        const bytes = Buffer.from(raw);
        const parsed = parseEnvelope(bytes);
        if (parsed) {
          expect(encodeEnvelope(parsed.kind, parsed.id, parsed.payload, parsed.cookie).equals(bytes)).toBe(
            true,
          );
        }
      }),
      { numRuns: 5000 },
    );
  });
});
