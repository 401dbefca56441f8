import { type ConnectionControl, toSockError, type Verdict } from '@sock/core';
import {
  after,
  GUARDS_PLUGIN,
  type GuardConn,
  type GuardContext,
  guardConn,
  rejection,
  startGuardConn,
} from './guard-context.js';
import { IpPolicy } from './ip-policy.js';
import type { Checker, ResolvedPolicy } from './policy.js';
import { GuardReason } from './reasons.js';
import type { AcquireResult } from './store.js';

/** Wait on the connection's (the server's) clock. */
function delay(conn: ConnectionControl, ms: number): Promise<void> {
  return new Promise((resolve) => conn.clock.setTimeout(resolve, ms));
}

/**
 * @internal The accept-time guard: bans (any range covering the peer), the IP policy, the global and
 * per-key connection counts and the connection rate, in that order. Sections: `ip`, `connections`,
 * `rates.connections`. Decides before a byte is read: a rejection costs one close.
 */
export class Admission {
  active = 0;
  ip: IpPolicy;

  constructor(private readonly ctx: GuardContext) {
    this.ip = new IpPolicy(ctx.policy.ip, (err) => ctx.error(err));
  }

  /** The IP policy of a new policy, built (files read) before anything is swapped. Throws on a bad list. */
  prepare(policy: GuardContext['policy']): IpPolicy {
    return new IpPolicy(policy.ip, (err) => this.ctx.error(err));
  }

  /** Swap in a prepared IP policy (reload). */
  swap(ip: IpPolicy): void {
    const old = this.ip;
    this.ip = ip;
    old.close();
  }

  ipDenied(address: string): boolean {
    return this.ipConsulted() && this.ip.check(address) === 'deny';
  }

  /** `ipDenied` for a dotted IPv4 address given as its number (`parseIPv4`'s result). */
  ipDeniedIPv4(value: number): boolean {
    return this.ipConsulted() && this.ip.checkIPv4(value) === 'deny';
  }

  /** A policy without rules that allows by default denies nothing: no lookup is made. */
  private ipConsulted(): boolean {
    return this.ip.hasRules || this.ctx.policy.ip.default === 'deny';
  }

  accept(conn: ConnectionControl): Verdict | Promise<Verdict> {
    const ctx = this.ctx;
    const address = conn.remoteAddress;
    const key = ctx.keyOf(address);
    // A peer gone before its address was read (or anything not an address) has no key: refused, counted
    // under nothing, struck never.
    if (key === undefined)
      return {
        reason: GuardReason.INVALID_ADDRESS,
        message: `ip: ${JSON.stringify(address)} is not an IP address`,
      };
    const state = startGuardConn(conn, key);
    // Every connection is known to the bans from here on: a ban closes it wherever it came in.
    ctx.bans.track(conn, key);

    // Bans first: a banned key is refused without earning more strikes (`banned` weighs 0). The memory
    // store answers at once: no continuation is made for it.
    const ban = ctx.bans.banFor(address);
    return ban instanceof Promise
      ? ban.then((b) => this.afterBans(conn, state, address, b))
      : this.afterBans(conn, state, address, ban);
  }

  /** The IP policy, the connection counts and the rate, once the bans have answered. */
  private afterBans(
    conn: ConnectionControl,
    state: GuardConn,
    address: string,
    ban: Awaited<ReturnType<GuardContext['bans']['banFor']>>,
  ): Verdict | Promise<Verdict> {
    const ctx = this.ctx;
    const p = ctx.policy;
    const key = state.key;
    if (ban) {
      const wait = Math.ceil((ban.record.until - ctx.now()) / 1000);
      const r = rejection(
        'bans',
        GuardReason.BANNED,
        key,
        `${ban.key} is banned for ${wait}s more`,
        p.bans.shadow,
      );
      if (!r.shadow) return r;
      conn.report(r, 'accept', GUARDS_PLUGIN);
    }
    if (this.ipDenied(address)) {
      const r = rejection(
        'ip',
        GuardReason.IP_DENIED,
        key,
        `${address} is denied by the IP policy`,
        p.ip.shadow,
      );
      if (!r.shadow) return r;
      conn.report(r, 'accept', GUARDS_PLUGIN);
    }
    // Counted now, released in `close`, which core calls once for every connection that entered accept.
    state.counted = true;
    this.active++;
    if (this.active > p.connections.max) {
      const r = rejection(
        'connections',
        GuardReason.CONN_LIMIT,
        key,
        `${p.connections.max} connections open`,
        p.connections.shadow,
      );
      if (!r.shadow) return r;
      conn.report(r, 'accept', GUARDS_PLUGIN);
    }
    return this.acceptRate(conn, state);
  }

  private acceptRate(conn: ConnectionControl, state: GuardConn): Verdict | Promise<Verdict> {
    const ctx = this.ctx;
    const p = ctx.policy;
    const rate = p.rates.connections;
    if (!rate) return this.acceptCount(conn, state);
    const now = ctx.now();
    const store = ctx.store;
    // A shared store takes the rate and counts the connection in one round trip.
    if (store.admit) {
      return after(store.admit(state.key, rate, p.connections.perKey, now), (a) =>
        this.afterRate(conn, state, a.wait, a.acquired),
      );
    }
    // The memory store answers at once: no continuation is made for it.
    const wait = store.take('connections', state.key, 1, rate.emissionMs, rate.burst, now);
    return wait instanceof Promise
      ? wait.then((w) => this.afterRate(conn, state, w, undefined))
      : this.afterRate(conn, state, wait, undefined);
  }

  /** Act on the connection rate's answer (`wait` ms until a token; negative: the table is full). */
  private afterRate(
    conn: ConnectionControl,
    state: GuardConn,
    wait: number,
    acquired: AcquireResult | undefined,
  ): Verdict | Promise<Verdict> {
    const ctx = this.ctx;
    const p = ctx.policy;
    const rate = p.rates.connections!;
    if (wait < 0) {
      if (p.store.onFull === 'reject')
        return rejection(
          'connections',
          GuardReason.TABLE_FULL,
          state.key,
          'rate table full (fail-closed)',
          false,
        );
    } else if (wait > 0) {
      const r = rejection(
        'rates',
        GuardReason.RATE_CONNECTIONS,
        state.key,
        `new connections from ${state.key} too fast (next in ${wait}ms)`,
        p.rates.shadow,
      );
      if (r.shadow) conn.report(r, 'accept', GUARDS_PLUGIN);
      else if (p.rates.onExceed === 'tarpit') return { ...r, tarpitMs: p.rates.tarpitMs };
      else if (p.rates.onExceed === 'pause' && wait <= p.rates.maxPauseMs) {
        // Shaping at accept: hold the (still paused) socket until the token is due, then take it.
        conn.report({ ...r, reason: GuardReason.THROTTLED }, 'accept', GUARDS_PLUGIN);
        return delay(conn, wait).then(() => {
          if (conn.closing) return undefined;
          const again = ctx.store.take('connections', state.key, 1, rate.emissionMs, rate.burst, ctx.now());
          return after(again, (w): Verdict | Promise<Verdict> => (w > 0 ? r : this.acceptCount(conn, state)));
        });
      } else return r;
    }
    return this.acceptCount(conn, state, acquired);
  }

  private acceptCount(
    conn: ConnectionControl,
    state: GuardConn,
    acquired?: AcquireResult,
  ): Verdict | Promise<Verdict> {
    const p = this.ctx.policy;
    if (p.connections.perKey === Number.POSITIVE_INFINITY) return undefined;
    return after(acquired ?? this.ctx.store.acquire(state.key, p.connections.perKey), (result): Verdict => {
      if (result === 'ok') state.keyCounted = true;
      else if (result === 'limit') {
        const r = rejection(
          'connections',
          GuardReason.CONN_LIMIT_IP,
          state.key,
          `${p.connections.perKey} connections open from ${state.key}`,
          p.connections.shadow,
        );
        if (!r.shadow) return r;
        conn.report(r, 'accept', GUARDS_PLUGIN);
      } else if (p.store.onFull === 'reject') {
        return rejection(
          'connections',
          GuardReason.TABLE_FULL,
          state.key,
          'connection count table full (fail-closed)',
          false,
        );
      }
      return undefined;
    });
  }

  /** Release exactly what accept counted. */
  close(conn: ConnectionControl): void {
    const state = guardConn(conn);
    if (!state) return;
    this.ctx.bans.untrack(conn, state.key);
    // Released once: core calls close once, and a second call finds nothing counted.
    if (state.counted) this.active--;
    state.counted = false;
    if (state.keyCounted) {
      state.keyCounted = false;
      const released = this.ctx.store.release(state.key);
      if (released instanceof Promise)
        released.catch((err) => this.ctx.error(toSockError(err, 'store release')));
    }
  }
}

/** The `ip` section. */
export function resolveIp(c: Checker, input: unknown): ResolvedPolicy['ip'] {
  const ip = c.section(input, ['ip'], [
    'default',
    'allow',
    'deny',
    'allowFiles',
    'denyFiles',
    'watch',
    'debounce',
    'shadow',
  ] as const);
  return {
    default: c.oneOf(ip.default, ['ip', 'default'], ['allow', 'deny'] as const, 'allow'),
    allow: c.cidrs(ip.allow, ['ip', 'allow']),
    deny: c.cidrs(ip.deny, ['ip', 'deny']),
    allowFiles: c.strings(ip.allowFiles, ['ip', 'allowFiles']),
    denyFiles: c.strings(ip.denyFiles, ['ip', 'denyFiles']),
    watch: c.bool(ip.watch, ['ip', 'watch'], true),
    debounceMs: c.duration(ip.debounce, ['ip', 'debounce'], 200),
    shadow: c.bool(ip.shadow, ['ip', 'shadow'], false),
  };
}

/** The `connections` section. */
export function resolveConnections(c: Checker, input: unknown): ResolvedPolicy['connections'] {
  const conns = c.section(input, ['connections'], ['max', 'perKey', 'shadow'] as const);
  return {
    max: c.limit(conns.max, ['connections', 'max'], 10_000),
    perKey: c.limit(conns.perKey, ['connections', 'perKey'], 32),
    shadow: c.bool(conns.shadow, ['connections', 'shadow'], false),
  };
}
