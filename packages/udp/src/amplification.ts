import { parseDuration, SockError, SockErrorCode } from '@sock/core';
import { Lru } from './lru.js';

export interface AmplificationOptions {
  /** Bytes that may be sent per byte received from an unvalidated address. Default 3 (RFC 9000 §8.1). */
  factor?: number;
  /** Addresses tracked at most; the least recently active is forgotten first. Default 10,000. */
  maxEntries?: number;
  /**
   * An address idle this long is forgotten, and with it its budget and validation. Default `30s`.
   * Forgetting fails closed: an unknown address has a budget of zero.
   */
  idleTimeout?: number | string;
}

interface Entry {
  received: number;
  sent: number;
  validated: boolean;
}

/**
 * QUIC's anti-amplification rule: until an address is validated, never send it more than `factor` times
 * the bytes received from it. Keyed on address and port (a path), in a bounded LRU with lazy expiry.
 */
export class AmplificationLimit {
  readonly factor: number;
  private readonly table: Lru<string, Entry>;

  constructor(options: AmplificationOptions, now: () => number) {
    this.factor = options.factor ?? 3;
    const maxEntries = options.maxEntries ?? 10_000;
    if (!(this.factor >= 1 && Number.isFinite(this.factor))) {
      throw new SockError(
        SockErrorCode.INVALID_OPTION,
        `antiAmplification.factor must be a finite number >= 1, got ${this.factor}`,
      );
    }
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) {
      throw new SockError(
        SockErrorCode.INVALID_OPTION,
        `antiAmplification.maxEntries must be a positive integer, got ${maxEntries}`,
      );
    }
    const idle = parseDuration(options.idleTimeout ?? 30_000, 'antiAmplification.idleTimeout');
    this.table = new Lru(maxEntries, idle, now, true);
  }

  /** Addresses currently tracked. */
  get size(): number {
    return this.table.size;
  }

  /** Count `bytes` received from `key`. */
  received(key: string, bytes: number): void {
    const entry = this.table.get(key);
    if (entry) entry.received += bytes;
    else this.table.set(key, { received: bytes, sent: 0, validated: false });
  }

  /** Whether `bytes` may go to `key` now; when they may, they are counted as sent. */
  trySend(key: string, bytes: number): boolean {
    const entry = this.table.get(key);
    if (entry === undefined) return false;
    if (entry.validated) return true;
    if (entry.sent + bytes > entry.received * this.factor) return false;
    entry.sent += bytes;
    return true;
  }

  /** Mark `key` as validated: sends to it are no longer capped (until it is forgotten). */
  validate(key: string): void {
    const entry = this.table.get(key);
    if (entry) entry.validated = true;
    else this.table.set(key, { received: 0, sent: 0, validated: true });
  }

  isValidated(key: string): boolean {
    return this.table.get(key)?.validated === true;
  }

  /** Bytes that may still go to `key` before it is validated (Infinity once validated). */
  budget(key: string): number {
    const entry = this.table.get(key);
    if (entry === undefined) return 0;
    return entry.validated ? Number.POSITIVE_INFINITY : entry.received * this.factor - entry.sent;
  }
}
