/**
 * Where core reads and waits on time: deadlines, drain, tarpits, `pauseReading(ms)`, close timeouts.
 * One injected object instead of `Date.now` and `setTimeout` scattered through the code, so a test (or a
 * plug-in's test, through `@sock/core/testing`) can run hours of protocol in a few milliseconds, and a
 * plug-in that uses `conn.clock` keeps the same time as the server it runs in.
 */
export interface Clock {
  /** Milliseconds since the epoch (or since the virtual clock's start). */
  now(): number;
  /** Call `fn` once, after `ms`. The handle is opaque: give it back to `clearTimeout`. */
  setTimeout(fn: () => void, ms: number): unknown;
  /** Cancel a timer; a handle that already fired (or `undefined`) is ignored. */
  clearTimeout(handle: unknown): void;
}

/** The real clock: `Date.now` and Node's timers. */
export const systemClock: Clock = {
  now: Date.now,
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout | undefined),
};

/**
 * Let the process exit while only this timer is left (the real clock's timers have `unref`; a virtual
 * clock's handles need not).
 */
export function unrefTimer(handle: unknown): void {
  (handle as { unref?: () => void } | undefined)?.unref?.();
}
