import type { Rejection, Stage, Verdict } from '@sock/core';

/** Where one inbound datagram came from, as guards see it (IPv4-mapped IPv6 already written as IPv4). */
export interface DatagramSource {
  readonly address: string;
  readonly port: number;
  readonly family: 'IPv4' | 'IPv6';
  /** Bytes in this datagram. */
  readonly size: number;
  /**
   * True when the source proved its address: a server request that carries a valid cookie, a path
   * marked with `validate()`, or any source with `dangerouslyTrustSourceAddresses`. An unproven source
   * may have forged its address: it earns no strikes and no bans, whatever it sends.
   */
  readonly validated: boolean;
}

/** A decision reported against a source: passed to every guard's `violation` hook (strikes). */
export interface DatagramViolation {
  readonly stage: Stage;
  /** The guard that decided, or `udp`. */
  readonly plugin: string;
  readonly reason: string;
  readonly key?: string | undefined;
  /** True when the datagram was dropped for it; false for shadow decisions. */
  readonly dropped: boolean;
  readonly shadow: boolean;
}

/**
 * The per-datagram admission contract: what a guard does for UDP instead of core's connection pipeline.
 * Declare only the hooks you need; a socket with no `admit` hook does no per-datagram guard work.
 */
export interface DatagramGuard {
  readonly name: string;
  /**
   * Each inbound datagram, before it is decoded or counted towards anything. Return a rejection to
   * drop it (or, with `shadow: true`, only report it). Keep it synchronous: this is the hot path. A
   * promise (a shared store) is awaited, and the datagram is held meanwhile.
   */
  admit?(source: DatagramSource): Verdict | Promise<Verdict>;
  /**
   * Every drop a proven source is to blame for (guards' own rejections, oversize or invalid datagrams):
   * strikes are counted here. Not called for drops that are ours (queue full, amplification), nor for
   * any source that has not proven its address (`source.validated` false): its address may be forged.
   */
  violation?(source: DatagramSource, violation: DatagramViolation): void;
}

/**
 * Any per-address checker with this shape, such as `createGuards()` from @sock/guards (a structural
 * type: this package does not depend on guards). `check` decides on one datagram (IP policy, bans,
 * datagrams/s and bytes/s per key) and counts its own strikes, so it only sees proven sources; `strike`
 * records the drops other stages blame on a proven source (oversize, undecodable); `isBanned` drops
 * unproven datagrams claiming a banned address without counting anything against it.
 */
export interface DatagramChecker {
  check(address: string, bytes?: number): Verdict | Promise<Verdict>;
  strike?(address: string, reason: string): unknown;
  isBanned?(address: string): boolean | Promise<boolean>;
}

/** The name drops decided by a DatagramChecker are reported under. */
const CHECKER_NAME = 'guards';

/** A DatagramGuard as is, or one made from a DatagramChecker. */
export function toDatagramGuard(guard: DatagramGuard | DatagramChecker): DatagramGuard {
  if (!('check' in guard) || typeof guard.check !== 'function') return guard as DatagramGuard;
  const checker = guard;
  const strike = checker.strike;
  const isBanned = checker.isBanned;
  const banned = (source: DatagramSource): Verdict | Promise<Verdict> => {
    if (!isBanned) return undefined;
    const verdict = (hit: boolean): Verdict =>
      hit ? { reason: 'banned', message: `${source.address} is banned`, key: source.address } : undefined;
    const result = isBanned.call(checker, source.address);
    return result instanceof Promise ? result.then(verdict) : verdict(result);
  };
  return {
    name: CHECKER_NAME,
    // `check` strikes for what it refuses: an unproven source (maybe forged) only meets the ban list.
    admit: (source) => (source.validated ? checker.check(source.address, source.size) : banned(source)),
    ...(strike
      ? {
          violation(source: DatagramSource, violation: DatagramViolation) {
            // The checker already counted its own decisions; strikes from shadow reports are not earned.
            if (violation.plugin === CHECKER_NAME || violation.shadow) return;
            const result = strike.call(checker, source.address, violation.reason);
            if (result instanceof Promise) result.catch(() => {});
          },
        }
      : {}),
  };
}

export function isRejection(verdict: Verdict): verdict is Rejection {
  return typeof verdict === 'object' && verdict !== null && typeof verdict.reason === 'string';
}
