import type { Rejection } from '@sock/core';
import type { Admission } from './guard-admission.js';
import { after, type GuardContext, type GuardName, rejection } from './guard-context.js';
import { GuardReason } from './reasons.js';
import type { MaybePromise } from './store.js';

/** A decision about a datagram (`check`) or a strike reported from outside. */
export interface Decision {
  readonly guard: GuardName;
  readonly reason: string;
  readonly key: string;
  readonly address: string;
  readonly stage: 'datagram';
  readonly shadow: boolean;
}

/**
 * @internal The same decisions per datagram, for @sock/udp (sections `ip`, `bans`, `rates.datagrams`):
 * bans, the IP policy, datagrams/s and bytes/s per key. A rejection drops the datagram and strikes.
 */
export class Datagrams {
  constructor(
    private readonly ctx: GuardContext,
    private readonly admission: Admission,
    private readonly onDecision: ((decision: Decision) => void) | undefined,
  ) {}

  check(address: string, bytes = 0): MaybePromise<Rejection | undefined> {
    const ctx = this.ctx;
    const p = ctx.policy;
    const key = ctx.keyOf(address);
    if (key === undefined)
      return this.decide('ip', GuardReason.INVALID_ADDRESS, address, address, 'not an IP address', false);
    const now = ctx.now();
    return after(ctx.bans.banFor(address), (ban) => {
      if (ban) {
        const r = this.decide(
          'bans',
          GuardReason.BANNED,
          key,
          address,
          `${ban.key} is banned`,
          p.bans.shadow,
        );
        if (r) return r;
      }
      if (this.admission.ipDenied(address)) {
        const r = this.decide(
          'ip',
          GuardReason.IP_DENIED,
          key,
          address,
          `${address} is denied by the IP policy`,
          p.ip.shadow,
        );
        if (r) return r;
      }
      const dg = p.rates.datagramsPerKey;
      return after(dg ? ctx.store.take('datagrams', key, 1, dg.emissionMs, dg.burst, now) : 0, (wait) => {
        if (wait !== 0) {
          const r = this.limit(wait, GuardReason.RATE_DATAGRAMS, key, address);
          if (r) return r;
        }
        const db = p.rates.datagramBytesPerKey;
        if (!db || bytes <= 0) return undefined;
        return after(ctx.store.take('datagram-bytes', key, bytes, db.emissionMs, db.burst, now), (w) =>
          w === 0 ? undefined : this.limit(w, GuardReason.RATE_DATAGRAM_BYTES, key, address),
        );
      });
    });
  }

  private limit(wait: number, reason: GuardReason, key: string, address: string): Rejection | undefined {
    const p = this.ctx.policy;
    if (wait < 0) {
      return p.store.onFull === 'reject'
        ? this.decide(
            'connections',
            GuardReason.TABLE_FULL,
            key,
            address,
            'rate table full (fail-closed)',
            false,
          )
        : undefined;
    }
    const message = `over the limit; tokens due in ${Math.ceil(wait)}ms`;
    return this.decide('rates', reason, key, address, message, p.rates.shadow);
  }

  /** Count, report and strike a datagram decision; the rejection to return, or undefined in shadow mode. */
  private decide(
    guard: GuardName,
    reason: GuardReason,
    key: string,
    address: string,
    message: string,
    shadow: boolean,
  ): Rejection | undefined {
    const r = rejection(guard, reason, key, message, shadow);
    this.ctx.count(r, true);
    this.onDecision?.({ guard, reason, key, address, stage: 'datagram', shadow });
    if (shadow) return undefined;
    void this.ctx.bans.strike(address, reason);
    return r;
  }
}
