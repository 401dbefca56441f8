import { SockError, SockErrorCode } from './errors.js';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * A duration in ms from a number (already ms) or a string like `250ms`, `10s`, `5m`, `1h`, `1d`, `1.5s`.
 * The one parser every sock package uses for durations.
 */
export function parseDuration(value: number | string, what = 'duration'): number {
  if (typeof value === 'number') {
    if (Number.isFinite(value) && value >= 0) return value;
  } else {
    const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(value.trim());
    if (m) return Math.round(Number(m[1]) * UNITS[m[2] ?? 'ms']!);
  }
  throw new SockError(
    SockErrorCode.INVALID_OPTION,
    `${what}: expected a non-negative number of ms or a string like "10s", "5m", got ${JSON.stringify(value)}`,
  );
}
