import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkTrustDomain, parseSpiffeId, trySpiffeId } from './spiffe.js';

const tdChar = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789.-_'.split(''));
const segChar = fc.constantFrom(
  ...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_'.split(''),
);
const trustDomain = fc.string({ unit: tdChar, minLength: 1, maxLength: 40 });
const segment = fc
  .string({ unit: segChar, minLength: 1, maxLength: 20 })
  .filter((s) => s !== '.' && s !== '..');
const path = fc.array(segment, { maxLength: 6 }).map((segs) => segs.map((s) => `/${s}`).join(''));

describe('parseSpiffeId', () => {
  it('parses every well-formed ID into its parts, round-trip', () => {
    fc.assert(
      fc.property(trustDomain, path, (td, p) => {
        const id = `spiffe://${td}${p}`;
        expect(parseSpiffeId(id)).toEqual({ id, trustDomain: td, path: p });
      }),
    );
  });

  it('never throws anything but a SockError, and never accepts a string outside the grammar', () => {
    const grammar = /^spiffe:\/\/[a-z0-9._-]+(\/[a-zA-Z0-9._-]+)*$/;
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.string().map((s) => `spiffe://${s}`),
        ),
        (s) => {
          const parsed = trySpiffeId(s);
          if (parsed === undefined) return;
          expect(s).toMatch(grammar);
          expect(parsed.path.split('/').includes('..')).toBe(false);
          expect(parsed.path.split('/').includes('.')).toBe(false);
        },
      ),
    );
  });

  it('refuses what the spec refuses', () => {
    for (const bad of [
      'SPIFFE://example.org/a',
      'spiffe://Example.org/a',
      'spiffe://',
      'spiffe:///a',
      'spiffe://example.org/',
      'spiffe://example.org//a',
      'spiffe://example.org/a/../b',
      'spiffe://example.org/./b',
      'spiffe://example.org:8443/a',
      'spiffe://user@example.org/a',
      'spiffe://example.org/a?x=1',
      'spiffe://example.org/a#f',
      'spiffe://example.org/a b',
      'https://example.org/a',
      `spiffe://example.org/${'a'.repeat(2040)}`,
    ]) {
      expect(() => parseSpiffeId(bad), bad).toThrow(/not a SPIFFE ID/);
    }
    expect(parseSpiffeId('spiffe://example.org').path).toBe('');
  });

  it('checks trust domains', () => {
    expect(checkTrustDomain('prod.example.org')).toBe('prod.example.org');
    expect(() => checkTrustDomain('Prod')).toThrow(/trust domain/);
    expect(() => checkTrustDomain('')).toThrow(/trust domain/);
  });
});
