import type { Rejection, Stage, Verdict } from '@sock/core';

/** Where one inbound datagram came from, as guards see it (IPv4-mapped IPv6 already written as IPv4). */
export interface DatagramSource {
  readonly address: string;
  readonly port: number;
  readonly family: 'IPv4' | 'IPv6';
  /** Bytes in this datagram. */
  readonly size: number;
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
   * drop it (or, with `shadow: true`, only report it). Synchronous: this is the hot path.
   */
  admit?(source: DatagramSource): Verdict;
  /**
   * Every drop a source is to blame for (guards' own rejections, oversize or invalid datagrams, forged
   * cookies): strikes are counted here. Not called for drops that are ours (queue full, amplification).
   */
  violation?(source: DatagramSource, violation: DatagramViolation): void;
}

/** A guard from a bare admission function. */
export function admissionGuard(name: string, admit: (source: DatagramSource) => Verdict): DatagramGuard {
  return { name, admit };
}

export function isRejection(verdict: Verdict): verdict is Rejection {
  return typeof verdict === 'object' && verdict !== null && typeof verdict.reason === 'string';
}
