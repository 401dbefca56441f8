import { describe, expect, it } from 'vitest';
import { hasNetAdmin } from './detect.js';
import { MAX_DURATION_MS, parseDuration } from './duration.js';
import { FirewallError, FirewallErrorCode } from './errors.js';
import { sanitizeComment } from './model.js';
import { parsePort, parseProtocol } from './port.js';

describe('parseDuration', () => {
  it.each([
    [1500, 1500],
    [0.2, 1],
    ['500ms', 500],
    ['30s', 30_000],
    ['10m', 600_000],
    ['2h', 7_200_000],
    ['7d', 604_800_000],
    // core's grammar: decimals are fine, rounded up to whole ms
    ['1.5h', 5_400_000],
    ['0.0005s', 1],
  ])('%j → %d ms', (input, ms) => {
    expect(parseDuration(input)).toBe(ms);
  });

  it.each([
    0,
    -1,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    '',
    '10',
    '10 m',
    '0ms',
    '٢s',
    '10y',
    MAX_DURATION_MS + 1,
    '30d',
  ])('rejects %j', (input) => {
    expect(() => parseDuration(input)).toThrow(
      expect.objectContaining({ code: 'ERR_SOCK_FW_INVALID_DURATION' }),
    );
  });
});

describe('ports, protocols, comments', () => {
  it('ports', () => {
    expect(parsePort(1)).toBe(1);
    expect(parsePort('65535')).toBe(65535);
    for (const bad of [0, 65536, '022', '22 ', '٢٢', 22.5, '0x16'])
      expect(() => parsePort(bad)).toThrow(FirewallError);
  });

  it('protocols', () => {
    expect(parseProtocol('tcp')).toBe('tcp');
    expect(() => parseProtocol('sctp')).toThrow(/pass 'tcp' or 'udp'/);
  });

  it('comments keep only safe characters', () => {
    expect(sanitizeComment('ssh "brute"\n; flush ruleset {x}')).toBe('ssh _brute___ flush ruleset _x_');
    expect(sanitizeComment('x'.repeat(100))).toHaveLength(64);
  });
});

describe('errors and privilege', () => {
  it('FirewallError carries code, cause and its own marker', () => {
    const cause = new Error('inner');
    const e = new FirewallError(FirewallErrorCode.LOCKOUT, 'msg', { cause });
    expect(e.name).toBe('FirewallError');
    expect(e.cause).toBe(cause);
    expect(FirewallError.isInstance(e)).toBe(true);
    expect((e as unknown as Record<symbol, unknown>)[Symbol.for('sock.firewall-error')]).toBe(true);
    // A copy from another instance of the package is recognised by its marker.
    const foreign = Object.assign(new Error('x'), {
      code: 'ERR_SOCK_FW_LOCKOUT',
      [Symbol.for('sock.firewall-error')]: true,
    });
    expect(FirewallError.isInstance(foreign)).toBe(true);
    expect(FirewallError.isInstance(new Error('x'))).toBe(false);
  });

  it('every code is a stable ERR_SOCK_FW_ string', () => {
    for (const code of Object.values(FirewallErrorCode)) expect(code).toMatch(/^ERR_SOCK_FW_[A-Z_]+$/);
  });

  it('reads CAP_NET_ADMIN from /proc status text', () => {
    expect(hasNetAdmin('Name:\tx\nCapEff:\t0000000000001000\n')).toBe(true);
    expect(hasNetAdmin('CapEff:\t0000000000000000\n')).toBe(false);
    expect(hasNetAdmin('CapEff:\t000001ffffffffff\n')).toBe(true);
    expect(hasNetAdmin('nothing')).toBe(false);
  });
});
