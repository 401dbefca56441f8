import { FirewallError, FirewallErrorCode, quote } from './errors.js';

/** A duration: milliseconds as a number, or a string such as `'500ms'`, `'30s'`, `'10m'`, `'2h'`, `'7d'`. */
export type Duration = number | string;

const UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Longest duration accepted (ipset's per-entry timeout limit is 2,147,483 s, about 24.8 days). */
export const MAX_DURATION_MS = 2_147_483_000;

/**
 * Parse a duration to whole milliseconds. Numbers are ms; strings are `<integer><unit>` with unit
 * ms, s, m, h or d. Must be positive and at most {@link MAX_DURATION_MS}.
 */
export function parseDuration(input: unknown, what = 'duration'): number {
  let ms: number | undefined;
  if (typeof input === 'number' && Number.isFinite(input)) ms = Math.ceil(input);
  else if (typeof input === 'string') {
    const m = /^([0-9]{1,10})(ms|s|m|h|d)$/.exec(input);
    if (m) ms = Number(m[1]) * UNITS[m[2]!]!;
  }
  if (ms === undefined || ms <= 0 || ms > MAX_DURATION_MS) {
    throw new FirewallError(
      FirewallErrorCode.INVALID_DURATION,
      `invalid ${what} ${quote(input)}: pass a positive number of milliseconds or a string like '30s', '10m', '2h', '7d' (at most ${MAX_DURATION_MS} ms)`,
      { details: { input } },
    );
  }
  return ms;
}
