import { type Clock, SockError, SockErrorCode } from '@sock/core';

/** A clock that only moves when told: timers fire in due order, inside `advance()`. */
export interface VirtualClock extends Clock {
  /**
   * Move time forward by `ms`, firing every timer that falls due on the way, in order (timers set by a
   * firing timer fire too when they fall inside the window). `now()` reads each timer's due time while
   * it runs.
   */
  advance(ms: number): void;
  /** When the next timer falls due, or `undefined` when none is set. */
  nextTimerAt(): number | undefined;
  /** Timers set and not yet fired or cleared. */
  readonly pending: number;
}

interface Timer {
  readonly at: number;
  /** Order of creation: timers due at the same time fire in the order they were set. */
  readonly seq: number;
  readonly fn: () => void;
}

/** A virtual clock starting at `start` ms (default 0). */
export function createVirtualClock(start = 0): VirtualClock {
  return new Virtual(start);
}

class Virtual implements VirtualClock {
  private time: number;
  private seq = 0;
  // A plain array kept sorted: tests hold a handful of timers, so a heap would buy nothing.
  private readonly timers: Timer[] = [];

  constructor(start: number) {
    checkMs('start', start);
    this.time = start;
  }

  readonly now = (): number => this.time;

  readonly setTimeout = (fn: () => void, ms: number): unknown => {
    // Node treats a bad or negative delay as 1 ms; so do we, so code behaves alike on both clocks.
    const delay = Number.isFinite(ms) && ms >= 1 ? ms : 1;
    const timer: Timer = { at: this.time + delay, seq: this.seq++, fn };
    let i = this.timers.length;
    while (i > 0 && this.timers[i - 1]!.at > timer.at) i--;
    this.timers.splice(i, 0, timer);
    return timer;
  };

  readonly clearTimeout = (handle: unknown): void => {
    const i = this.timers.indexOf(handle as Timer);
    if (i >= 0) this.timers.splice(i, 1);
  };

  get pending(): number {
    return this.timers.length;
  }

  nextTimerAt(): number | undefined {
    return this.timers[0]?.at;
  }

  advance(ms: number): void {
    checkMs('advance', ms);
    const target = this.time + ms;
    for (;;) {
      const next = this.timers[0];
      if (next === undefined || next.at > target) break;
      this.timers.shift();
      this.time = next.at;
      next.fn();
    }
    this.time = target;
  }
}

function checkMs(what: string, ms: number): void {
  if (!Number.isFinite(ms) || ms < 0) {
    throw new SockError(
      SockErrorCode.INVALID_OPTION,
      `virtual clock: ${what} must be a finite number of ms >= 0, got ${ms}`,
    );
  }
}
