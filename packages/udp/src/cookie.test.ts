import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { clockAt } from '../../../test-support/clock.js';
import { addressCookies, COOKIE_BYTES } from './cookie.js';

const T0 = 1_700_000_000_000;

describe('address cookies', () => {
  it('validates a cookie for the address and port it was issued to, and nothing else', () => {
    const cookies = addressCookies({ clock: clockAt(() => T0) });
    const cookie = cookies.issue('127.0.0.1', 4000);
    expect(cookie).toHaveLength(COOKIE_BYTES);
    expect(cookies.verify(cookie, '127.0.0.1', 4000)).toBe('valid');
    expect(cookies.verify(cookie, '127.0.0.2', 4000)).toBe('invalid');
    expect(cookies.verify(cookie, '127.0.0.1', 4001)).toBe('invalid');
    expect(cookies.issuedAt(cookie)).toBe(T0);
  });

  it('treats an IPv4-mapped IPv6 address as the IPv4 address', () => {
    const cookies = addressCookies({ clock: clockAt(() => T0) });
    expect(cookies.verify(cookies.issue('::ffff:10.0.0.1', 53), '10.0.0.1', 53)).toBe('valid');
    expect(cookies.verify(cookies.issue('2001:db8::1', 53), '2001:DB8::1', 53)).toBe('valid');
  });

  it('expires after its lifetime, and refuses times far in the future', () => {
    let now = T0;
    const cookies = addressCookies({ lifetime: '30s', clock: clockAt(() => now) });
    const cookie = cookies.issue('::1', 1);
    now += 30_000;
    expect(cookies.verify(cookie, '::1', 1)).toBe('valid');
    now += 1_000;
    expect(cookies.verify(cookie, '::1', 1)).toBe('expired');
    now = T0 - 60_000; // the cookie now claims to come from a minute ahead
    expect(cookies.verify(cookie, '::1', 1)).toBe('invalid');
  });

  it('keeps the previous key through one rotation, and a tampered cookie never passes', () => {
    const secret = Buffer.alloc(32, 1);
    const a = addressCookies({ secret, clock: clockAt(() => T0) });
    const cookie = a.issue('127.0.0.1', 9);
    a.rotate();
    expect(a.verify(cookie, '127.0.0.1', 9)).toBe('valid');
    a.rotate(Buffer.alloc(32, 3));
    expect(a.verify(cookie, '127.0.0.1', 9)).toBe('invalid');
    // A server configured with the old key as previous accepts it too (rotation across restarts).
    const b = addressCookies({
      secret: Buffer.alloc(32, 2),
      previousSecret: secret,
      clock: clockAt(() => T0),
    });
    expect(b.verify(cookie, '127.0.0.1', 9)).toBe('valid');
    for (let i = 0; i < COOKIE_BYTES; i++) {
      const tampered = Buffer.from(cookie);
      tampered[i]! ^= 0x01;
      expect(b.verify(tampered, '127.0.0.1', 9)).not.toBe('valid');
    }
  });

  it('rejects short secrets', () => {
    expect(() => addressCookies({ secret: Buffer.alloc(8) })).toThrow(/at least 16 bytes/);
    expect(() => addressCookies().rotate(Buffer.alloc(4))).toThrow(/at least 16 bytes/);
  });

  it('never throws and never says valid for random bytes', () => {
    const cookies = addressCookies({ clock: clockAt(() => T0) });
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), fc.integer({ min: 0, max: 65535 }), (bytes, port) => {
        expect(cookies.verify(bytes, '127.0.0.1', port)).not.toBe('valid');
        cookies.issuedAt(bytes);
      }),
      { numRuns: 3000 },
    );
  });
});
