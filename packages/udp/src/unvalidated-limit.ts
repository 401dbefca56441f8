import { SockError, SockErrorCode } from '@sock/core';
import { Lru } from './lru.js';

/**
 * The limit on datagrams from sources that have not proven their address. Such a source can claim any
 * address, so what it does is never a strike or a ban against that address (guards never see it): this
 * limit only drops, and counts what it dropped as `unvalidated-rate`.
 */
export interface UnvalidatedLimitOptions {
  /** Datagrams per second per source address. Default 100. */
  rate?: number;
  /** Datagrams a source may send at once. Default 200. */
  burst?: number;
  /** Source addresses tracked at most (least recently active forgotten first). Default 10,000. */
  maxEntries?: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

function positive(value: number, what: string): number {
  if (!(Number.isFinite(value) && value > 0)) {
    throw new SockError(
      SockErrorCode.INVALID_OPTION,
      `unvalidated.${what} must be a positive number, got ${value}`,
    );
  }
  return value;
}

/** A token bucket per unproven source address, in a bounded LRU with idle expiry. */
export class UnvalidatedLimit {
  private readonly rate: number;
  private readonly burst: number;
  private readonly table: Lru<string, Bucket>;

  constructor(
    options: UnvalidatedLimitOptions,
    private readonly now: () => number,
  ) {
    this.rate = positive(options.rate ?? 100, 'rate');
    this.burst = positive(options.burst ?? 200, 'burst');
    const maxEntries = options.maxEntries ?? 10_000;
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) {
      throw new SockError(
        SockErrorCode.INVALID_OPTION,
        `unvalidated.maxEntries must be a positive integer, got ${maxEntries}`,
      );
    }
    // A bucket idle long enough to refill completely is the same as no bucket: let it expire.
    this.table = new Lru(maxEntries, Math.ceil((this.burst / this.rate) * 1000), now, true);
  }

  /** Take one token for `address`; false when its bucket is empty (drop the datagram). */
  take(address: string): boolean {
    const now = this.now();
    let bucket = this.table.get(address, now);
    if (bucket === undefined) {
      bucket = { tokens: this.burst, at: now };
      this.table.set(address, bucket, undefined, now);
    } else {
      bucket.tokens = Math.min(this.burst, bucket.tokens + ((now - bucket.at) * this.rate) / 1000);
      bucket.at = now;
    }
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }
}
