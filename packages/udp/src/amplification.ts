import { parseDuration, SockError, SockErrorCode } from '@sock/core';
import { Lru } from './lru.js';

export interface AmplificationOptions {
  /** Bytes that may be sent per byte received from an unvalidated address. Default 3 (RFC 9000 §8.1). */
  factor?: number;
  /** Source addresses (IPs) tracked at most; the least recently active is forgotten first. Default 10,000. */
  maxEntries?: number;
  /**
   * Ports tracked per address at most (each address and port is a path with its own budget and
   * validation); the oldest goes first. Default 8, so the table holds at most maxEntries × 8 paths.
   */
  maxPortsPerAddress?: number;
  /**
   * A path idle this long is forgotten, and with it its budget and validation. Default `30s`.
   * Forgetting fails closed: an unknown path has a budget of zero.
   */
  idleTimeout?: number | string;
}

interface Path {
  received: number;
  sent: number;
  /** Epoch ms until which the path counts as validated: the expiry of the cookie that proved it. */
  validUntil: number;
  seenAt: number;
}

function positiveInteger(value: number, what: string): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new SockError(
      SockErrorCode.INVALID_OPTION,
      `antiAmplification.${what} must be a positive integer, got ${value}`,
    );
  }
  return value;
}

/**
 * QUIC's anti-amplification rule: until a path (address and port) is validated, never send it more than
 * `factor` times the bytes received from it. Bounded two ways (addresses in an LRU, ports per address)
 * with lazy expiry; keyed first on the address string so the hot path builds no composite key.
 */
export class AmplificationLimit {
  readonly factor: number;
  private readonly table: Lru<string, Map<number, Path>>;
  private readonly maxPorts: number;
  private readonly idleMs: number;

  constructor(
    options: AmplificationOptions,
    private readonly now: () => number,
  ) {
    this.factor = options.factor ?? 3;
    if (!(this.factor >= 1 && Number.isFinite(this.factor))) {
      throw new SockError(
        SockErrorCode.INVALID_OPTION,
        `antiAmplification.factor must be a finite number >= 1, got ${this.factor}`,
      );
    }
    const maxEntries = positiveInteger(options.maxEntries ?? 10_000, 'maxEntries');
    this.maxPorts = positiveInteger(options.maxPortsPerAddress ?? 8, 'maxPortsPerAddress');
    this.idleMs = parseDuration(options.idleTimeout ?? 30_000, 'antiAmplification.idleTimeout');
    this.table = new Lru(maxEntries, this.idleMs, now, true);
  }

  /** Addresses currently tracked. */
  get size(): number {
    return this.table.size;
  }

  /** Count `bytes` received from `address`:`port`. */
  received(address: string, port: number, bytes: number): void {
    const now = this.now();
    const path = this.path(address, port, now, true)!;
    path.received += bytes;
  }

  /** Whether `bytes` may go to `address`:`port` now; when they may, they are counted as sent. */
  trySend(address: string, port: number, bytes: number): boolean {
    const path = this.path(address, port, this.now(), false);
    if (path === undefined) return false;
    if (path.validUntil > this.now()) return true;
    if (path.sent + bytes > path.received * this.factor) return false;
    path.sent += bytes;
    return true;
  }

  /**
   * Mark `address`:`port` validated until `until` (epoch ms; default: as long as the path is remembered):
   * sends to it are not capped meanwhile. A cookie proves an address only for its own lifetime, so the
   * server passes the cookie's expiry; afterwards the path is capped again until a fresh cookie arrives.
   */
  validate(address: string, port: number, until = Number.POSITIVE_INFINITY): void {
    const path = this.path(address, port, this.now(), true)!;
    path.validUntil = Math.max(path.validUntil, until);
  }

  isValidated(address: string, port: number): boolean {
    const now = this.now();
    return (this.path(address, port, now, false)?.validUntil ?? 0) > now;
  }

  /** Bytes that may still go to `address`:`port` before it is validated (Infinity once validated). */
  budget(address: string, port: number): number {
    const path = this.path(address, port, this.now(), false);
    if (path === undefined) return 0;
    return path.validUntil > this.now() ? Number.POSITIVE_INFINITY : path.received * this.factor - path.sent;
  }

  /** The live state of a path, created when `create` (a fresh path has received and sent nothing). */
  private path(address: string, port: number, now: number, create: boolean): Path | undefined {
    let ports = this.table.get(address, now);
    if (ports === undefined) {
      if (!create) return undefined;
      ports = new Map();
      this.table.set(address, ports, undefined, now);
    }
    let path = ports.get(port);
    if (path !== undefined && now - path.seenAt >= this.idleMs) {
      ports.delete(port);
      path = undefined;
    }
    if (path === undefined) {
      if (!create) return undefined;
      if (ports.size >= this.maxPorts) ports.delete(ports.keys().next().value as number);
      path = { received: 0, sent: 0, validUntil: 0, seenAt: now };
      ports.set(port, path);
    } else {
      path.seenAt = now;
    }
    return path;
  }
}
