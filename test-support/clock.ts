import type { Clock } from '@sock/core';

/**
 * A clock that reads time from `now` (a variable the test moves) and sets no timers: for unit tests of
 * code that only reads the time. Code that also waits belongs on `createVirtualClock` or the harness.
 */
export function clockAt(now: () => number): Clock {
  return {
    now,
    setTimeout: () => {
      throw new Error('clockAt: this test clock sets no timers; use createVirtualClock');
    },
    clearTimeout: () => {},
  };
}
