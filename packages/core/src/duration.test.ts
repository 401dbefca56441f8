import { describe, expect, it } from 'vitest';
import { parseDuration } from './duration.js';

describe('parseDuration: the one grammar', () => {
  it.each([
    [250, 250],
    ['250ms', 250],
    ['10s', 10_000],
    ['1.5s', 1500],
    ['5m', 300_000],
    ['1.5h', 5_400_000],
    ['30d', 2_592_000_000],
    ['0s', 0],
  ])('%j is %d ms', (input, ms) => {
    expect(parseDuration(input)).toBe(ms);
  });

  it.each(['10', '', ' 10s', '10s ', '10 s', '-1s', '+1s', '1e3ms', '.5s', '5.s', '10y', '١٠s', 'NaN'])(
    'refuses %j (a unit is required, nothing around it)',
    (input) => {
      expect(() => parseDuration(input, 'ttl')).toThrow(/ttl: expected/);
    },
  );
});
