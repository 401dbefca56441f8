import { type Clock, systemClock } from './clock.js';
import { SockError, SockErrorCode } from './errors.js';

export interface BackoffOptions {
  /** Attempts in all, the first included. Default 5. */
  attempts?: number;
  /** Delay before the second attempt. Default 100 ms. */
  initialDelayMs?: number;
  /** Ceiling for any one delay. Default 10 s. */
  maxDelayMs?: number;
  /** Growth per attempt. Default 2. */
  factor?: number;
  /**
   * Share of each delay drawn at random, 0 to 1. Default 1 ("full jitter": uniform in [0, delay]), which
   * keeps a fleet of clients from reconnecting in lockstep.
   */
  jitter?: number;
  /** Source of randomness in [0, 1); tests inject one. */
  random?: () => number;
}

/** The delay before attempt `attempt` (1-based; attempt 1 has none). */
export function backoffDelay(attempt: number, options: BackoffOptions = {}): number {
  if (attempt <= 1) return 0;
  const { initialDelayMs = 100, maxDelayMs = 10_000, factor = 2, jitter = 1, random = Math.random } = options;
  const base = Math.min(maxDelayMs, initialDelayMs * factor ** (attempt - 2));
  return Math.round(base * (1 - jitter * random()));
}

export function checkBackoff(options: BackoffOptions): Required<Pick<BackoffOptions, 'attempts'>> {
  const attempts = options.attempts ?? 5;
  const jitter = options.jitter ?? 1;
  if (!Number.isSafeInteger(attempts) || attempts < 1) {
    throw new SockError(
      SockErrorCode.INVALID_OPTION,
      `backoff: attempts must be a positive integer, got ${attempts}`,
    );
  }
  if (!(jitter >= 0 && jitter <= 1)) {
    throw new SockError(SockErrorCode.INVALID_OPTION, `backoff: jitter must be from 0 to 1, got ${jitter}`);
  }
  return { attempts };
}

/** Resolve after `ms` on `clock`, or reject with ERR_SOCK_ABORTED when `signal` aborts first. */
export function sleep(ms: number, signal?: AbortSignal, clock: Clock = systemClock): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new SockError(SockErrorCode.ABORTED, 'aborted', { cause: signal.reason }));
      return;
    }
    // No delay (the first attempt): no timer, so a virtual clock need not be advanced to begin.
    if (ms <= 0) {
      resolve();
      return;
    }
    const onAbort = () => {
      clock.clearTimeout(timer);
      reject(new SockError(SockErrorCode.ABORTED, 'aborted', { cause: signal?.reason }));
    };
    const timer = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
