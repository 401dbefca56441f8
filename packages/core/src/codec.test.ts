import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { json, text } from './codec.js';
import { parseDuration } from './duration.js';
import { SockError } from './errors.js';

describe('json codec', () => {
  it('round-trips any JSON value', () => {
    const codec = json();
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        expect(codec.decode(Buffer.from(codec.encode(value)))).toEqual(JSON.parse(JSON.stringify(value)));
      }),
    );
  });

  it('random bytes decode or fail with a typed error, never anything else', () => {
    const codec = json({ schema: z.object({ a: z.number() }) });
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        try {
          codec.decode(Buffer.from(bytes));
        } catch (err) {
          expect(
            SockError.isInstance(err) && ['ERR_SOCK_INVALID_MESSAGE', 'ERR_SOCK_VALIDATION_FAILED'],
          ).toContain((err as SockError).code);
        }
      }),
    );
  });

  it('a schema failure names the path and carries every issue', () => {
    const codec = json({ schema: z.object({ user: z.object({ age: z.number() }), name: z.string() }) });
    try {
      codec.decode(Buffer.from('{"user":{"age":"x"}}'));
      expect.unreachable();
    } catch (err) {
      expect(err).toMatchObject({ code: 'ERR_SOCK_VALIDATION_FAILED', reason: 'validation-failed' });
      expect((err as SockError).message).toMatch(/at user\.age/);
      expect((err as SockError).issues).toHaveLength(2);
    }
  });

  it('refuses to encode undefined', () => {
    expect(() => json().encode(undefined)).toThrow(/cannot encode undefined/);
  });
});

describe('text codec', () => {
  it('refuses invalid UTF-8', () => {
    expect(() => text().decode(Buffer.from([0xff, 0xfe]))).toThrow(
      expect.objectContaining({ reason: 'invalid-message' }),
    );
  });
});

describe('parseDuration', () => {
  it('reads numbers and unit strings', () => {
    expect(parseDuration(250)).toBe(250);
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('10s')).toBe(10_000);
    expect(parseDuration('1.5s')).toBe(1500);
    expect(parseDuration('5m')).toBe(300_000);
    expect(parseDuration('2h')).toBe(7_200_000);
    expect(parseDuration('1d')).toBe(86_400_000);
  });

  it('refuses anything else with a typed error naming the option', () => {
    for (const bad of ['', '-1s', '10 seconds', '1e3', 'NaN', -5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => parseDuration(bad as string, 'idleTimeout')).toThrow(/idleTimeout/);
    }
  });
});
