import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { type Clock, parseDuration, SockError, SockErrorCode } from '@sock/core';
import { canonicalPeer, systemClock } from '@sock/core/internal';

/** Bytes in a cookie: a 4-byte issue time (seconds) and a 16-byte truncated HMAC-SHA256. */
export const COOKIE_BYTES = 20;
const MAC_BYTES = 16;
const LABEL = Buffer.from('sock-udp-cookie-v1', 'latin1');
/** Cookies stamped this far in the future (clock steps between issuers) are still accepted. */
const FUTURE_SKEW_S = 5;

export interface AddressCookieOptions {
  /** HMAC key, at least 16 bytes. Default: 32 random bytes (cookies die with the process). */
  secret?: Uint8Array;
  /** The key before the last rotation, still accepted so rotation does not break clients mid-exchange. */
  previousSecret?: Uint8Array;
  /** How long a cookie is valid after it was issued. Default `60s`. */
  lifetime?: number | string;
  /** Where the issue time is read; tests give a virtual one. Default the system clock. (Was `now`.) */
  clock?: Clock;
}

/** `valid`: issued by us for this address and port, in time. `expired`: authentic but too old. */
export type CookieCheck = 'valid' | 'expired' | 'invalid';

/**
 * Stateless address validation (DNS cookies, RFC 7873; QUIC Retry tokens): a cookie is an HMAC over the
 * source address, port and issue time, so only a client that receives datagrams at that address can
 * present it, and the server keeps no state per client.
 */
export interface AddressCookies {
  /** A fresh cookie for `address`:`port`. */
  issue(address: string, port: number): Buffer;
  /** Check a cookie presented by `address`:`port`. Never throws, whatever the bytes. */
  verify(cookie: Uint8Array, address: string, port: number): CookieCheck;
  /** The issue time (ms) stamped in a cookie, or undefined when it is not COOKIE_BYTES long. */
  issuedAt(cookie: Uint8Array): number | undefined;
  /**
   * Start signing with `next` (default: 32 random bytes); the current key becomes the previous one and
   * is still accepted, the one before it no longer. Call it on a schedule longer than `lifetime`.
   */
  rotate(next?: Uint8Array): void;
  readonly lifetimeMs: number;
}

/** Address-validation cookies with a current and a previous key. */
export function addressCookies(options: AddressCookieOptions = {}): AddressCookies {
  return new Cookies(options);
}

function checkSecret(secret: Uint8Array, what: string): Buffer {
  if (!(secret instanceof Uint8Array) || secret.length < 16) {
    throw new SockError(SockErrorCode.INVALID_OPTION, `${what} must be a Uint8Array of at least 16 bytes`);
  }
  return Buffer.from(secret);
}

class Cookies implements AddressCookies {
  readonly lifetimeMs: number;
  private current: Buffer;
  private previous: Buffer | undefined;
  private readonly clock: Clock;

  constructor(options: AddressCookieOptions) {
    this.current = checkSecret(options.secret ?? randomBytes(32), 'cookies.secret');
    this.previous = options.previousSecret
      ? checkSecret(options.previousSecret, 'cookies.previousSecret')
      : undefined;
    this.lifetimeMs = parseDuration(options.lifetime ?? 60_000, 'cookies.lifetime');
    this.clock = options.clock ?? systemClock;
  }

  issue(address: string, port: number): Buffer {
    const cookie = Buffer.allocUnsafe(COOKIE_BYTES);
    const seconds = Math.floor(this.clock.now() / 1000) >>> 0;
    cookie.writeUInt32BE(seconds, 0);
    this.mac(this.current, seconds, address, port).copy(cookie, 4, 0, MAC_BYTES);
    return cookie;
  }

  verify(cookie: Uint8Array, address: string, port: number): CookieCheck {
    if (!(cookie instanceof Uint8Array) || cookie.length !== COOKIE_BYTES) return 'invalid';
    const view = Buffer.from(cookie.buffer, cookie.byteOffset, cookie.byteLength);
    const seconds = view.readUInt32BE(0);
    const nowMs = this.clock.now();
    if (seconds > Math.floor(nowMs / 1000) + FUTURE_SKEW_S) return 'invalid';
    const presented = view.subarray(4);
    const authentic =
      timingSafeEqual(presented, this.mac(this.current, seconds, address, port).subarray(0, MAC_BYTES)) ||
      (this.previous !== undefined &&
        timingSafeEqual(presented, this.mac(this.previous, seconds, address, port).subarray(0, MAC_BYTES)));
    if (!authentic) return 'invalid';
    return nowMs - seconds * 1000 > this.lifetimeMs ? 'expired' : 'valid';
  }

  issuedAt(cookie: Uint8Array): number | undefined {
    if (!(cookie instanceof Uint8Array) || cookie.length !== COOKIE_BYTES) return undefined;
    return Buffer.from(cookie.buffer, cookie.byteOffset, cookie.byteLength).readUInt32BE(0) * 1000;
  }

  rotate(next: Uint8Array = randomBytes(32)): void {
    const key = checkSecret(next, 'cookies.rotate(next)');
    this.previous = this.current;
    this.current = key;
  }

  private mac(key: Buffer, seconds: number, address: string, port: number): Buffer {
    const head = Buffer.allocUnsafe(6);
    head.writeUInt32BE(seconds, 0);
    head.writeUInt16BE(port & 0xffff, 4);
    return createHmac('sha256', key)
      .update(LABEL)
      .update(head)
      .update(canonicalPeer(address).address, 'latin1')
      .digest();
  }
}
