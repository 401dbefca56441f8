import { parseDuration as parseCoreDuration } from '@sock/core';
import { FirewallError, FirewallErrorCode, quote } from './errors.js';

/**
 * A duration: milliseconds as a number, or a string in core's one grammar (`parseDuration` of
 * `@sock/core`): an integer or decimal and a unit `ms`, `s`, `m`, `h` or `d` — `'500ms'`, `'30s'`,
 * `'1.5h'`, `'7d'` (a bare number string is milliseconds).
 */
export type Duration = number | string;

/** Longest duration accepted (ipset's per-entry timeout limit is 2,147,483 s, about 24.8 days). */
export const MAX_DURATION_MS = 2_147_483_000;

/**
 * Parse a duration to whole milliseconds (rounded up) with core's grammar; a firewall duration must
 * also be positive and at most {@link MAX_DURATION_MS}. Anything else throws `ERR_SOCK_FW_INVALID_DURATION`.
 */
export function parseDuration(input: unknown, what = 'duration'): number {
  let ms: number | undefined;
  if ((typeof input === 'number' && Number.isFinite(input)) || typeof input === 'string') {
    try {
      ms = Math.ceil(parseCoreDuration(input, what));
    } catch {
      ms = undefined;
    }
  }
  if (ms === undefined || ms <= 0 || ms > MAX_DURATION_MS) {
    throw new FirewallError(
      FirewallErrorCode.INVALID_DURATION,
      `invalid ${what} ${quote(input)}: pass a positive number of milliseconds or a string like '30s', '10m', '1.5h', '7d' (at most ${MAX_DURATION_MS} ms)`,
      { details: { input } },
    );
  }
  return ms;
}
