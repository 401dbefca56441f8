import { SockError, SockErrorCode } from './errors.js';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * The one duration grammar of sock, used by every package (core, guards, tls, udp, firewall, the CLI):
 *
 * - a number is milliseconds (finite, not negative);
 * - a string is an integer or decimal, then a unit — `ms`, `s`, `m`, `h` or `d` — with nothing else
 *   around it: `250ms`, `10s`, `1.5s`, `5m`, `1.5h`, `30d`. The unit is required: a bare `"10"` is
 *   refused, since whether it meant milliseconds or seconds is exactly the mistake a TTL must not make.
 *
 * The result is in milliseconds, fractions rounded to the nearest. Callers add their own range
 * (the firewall: positive, at most ipset's 24.8 days).
 */
export function parseDuration(value: number | string, what = 'duration'): number {
  if (typeof value === 'number') {
    if (Number.isFinite(value) && value >= 0) return value;
  } else if (typeof value === 'string') {
    const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(value);
    if (m) return Math.round(Number(m[1]) * UNITS[m[2]!]!);
  }
  throw new SockError(
    SockErrorCode.INVALID_OPTION,
    `${what}: expected a non-negative number of ms or a number with a unit (ms, s, m, h, d) such as "500ms", "10s", "1.5h", got ${JSON.stringify(value)}`,
  );
}
