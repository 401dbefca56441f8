import type { ConnectionControl } from '@sock/core';
import { SockError, SockErrorCode, SockReason, toSockError } from '@sock/core';
import type { BanRule } from './ban-rules.js';
import { after, GUARDS_PLUGIN, type GuardContext } from './guard-context.js';
import { type Cidr, formatIPv4, parseIPv4 } from './ip.js';
import { addressRange, formatRange, narrowTo, parseRange, rangeContains, rangesOverlap } from './ip-range.js';
import type { Checker, ResolvedPolicy } from './policy.js';
import { describe } from './policy.js';
import { GuardReason } from './reasons.js';
import type { BanRecord, MaybePromise, MemoryStore } from './store.js';

export interface BanEvent {
  /** The banned key: an IPv4 address, an IPv6 prefix (`2001:db8:1:2::/64`), or a range (`198.51.100.0/24`). */
  readonly key: string;
  readonly durationMs: number;
  /** The reason of the strike that tipped it over, or `manual`. */
  readonly reason: string;
  /** How many times this key has been banned (within the `bans.forget` memory), this ban included. */
  readonly offences: number;
  /** Clock time (ms) the ban ends. */
  readonly until: number;
}

export interface UnbanEvent {
  readonly key: string;
  readonly reason: 'manual';
  readonly offences: number;
}

/** The firewall's width limits: a ban never covers more than a /8 of IPv4 or a /32 of IPv6. */
const WIDEST_BAN = { 4: 8, 6: 32 } as const;

export interface BansHooks {
  onBan?: (event: BanEvent) => void;
  onUnban?: (event: UnbanEvent) => void;
}

/**
 * @internal Strikes and bans: the one owner of every rule about them. The atomic strike → threshold →
 * escalation → ban step and "never shorten" live in the store (ban-rules.ts, the Redis scripts); this
 * module decides what to strike and ban and what a ban does:
 * - keys are never empty: a string that is not an address earns nothing;
 * - a ban covers a range (a key, a /128, an aggregate /24 or /48, a manual CIDR up to the firewall's
 *   width limits), and every accept checks every range width in use;
 * - a ban that would cover a `neverBan` entry is not issued: an IPv6 prefix ban narrows to the offender's
 *   /128, anything else is skipped (and counted);
 * - strikes also count per aggregate range, with their own threshold, so rotating keys is no escape;
 * - a ban closes the key's open connections on every listener these guards serve (`closeConnections`);
 * - a ban that cannot be stored is reported through `onError` and counted, and still closes connections
 *   and reaches `onBan` (the firewall): never silently "no ban".
 */
export class Bans {
  /** Open connections per key: one connection as itself (the common case, nothing allocated), more as a Set. */
  private readonly open = new Map<string, ConnectionControl | Set<ConnectionControl>>();
  private neverBan: Cidr[] = [];
  /** Range widths to probe at accept, per family (grown as bans of new widths are seen, never shrunk). */
  // Arrays, not Sets: every datagram and accept walks them, and a Set's iterator is an allocation.
  private readonly widths: Record<4 | 6, number[]> = { 4: [32], 6: [128] };
  strikes = 0;
  issued = 0;
  skipped = 0;
  storeFailures = 0;

  /**
   * `sharedStore`: the store is not this process's alone, so bans of any width may exist that this module
   * has not seen being made: the aggregate widths are probed from the start. With the private memory
   * store every ban passes through here, and a width is probed once a ban of it exists.
   */
  constructor(
    private readonly ctx: GuardContext,
    private readonly hooks: BansHooks,
    private readonly sharedStore = true,
  ) {
    this.configure();
  }

  /** Apply the policy in force (at start and after a reload). */
  configure(): void {
    const p = this.ctx.policy;
    this.neverBan = p.bans.neverBan.map((c) => parseRange(c)!).filter(Boolean);
    this.addWidth(6, p.ipv6Prefix);
    if (p.strikes.aggregate && this.sharedStore) {
      this.addWidth(4, p.strikes.aggregate.ipv4Prefix);
      this.addWidth(6, p.strikes.aggregate.ipv6Prefix);
    }
  }

  private rule(threshold: number): BanRule {
    const p = this.ctx.policy;
    return {
      threshold,
      windowMs: p.strikes.windowMs,
      durationMs: p.bans.durationMs,
      factor: p.bans.factor,
      maxMs: p.bans.maxMs,
      forgetMs: p.bans.forgetMs,
    };
  }

  private protectedRange(range: Cidr): boolean {
    for (const n of this.neverBan) if (rangesOverlap(n, range)) return true;
    return false;
  }

  // ---- open connections ----

  track(conn: ConnectionControl, key: string): void {
    const held = this.open.get(key);
    if (held === undefined) this.open.set(key, conn);
    else if (held instanceof Set) held.add(conn);
    else if (held !== conn) this.open.set(key, new Set([held, conn]));
  }

  untrack(conn: ConnectionControl, key: string): void {
    const held = this.open.get(key);
    if (held === conn) this.open.delete(key);
    else if (held instanceof Set) {
      held.delete(conn);
      if (held.size === 0) this.open.delete(key);
    }
  }

  private connsOf(held: ConnectionControl | Set<ConnectionControl>): ConnectionControl[] {
    return held instanceof Set ? [...held] : [held];
  }

  /** Close every open connection from `range`, whichever listener it came in on. */
  private closeCovered(key: string, range: Cidr, until: number): void {
    if (!this.ctx.policy.bans.closeConnections) return;
    const wait = Math.max(0, Math.ceil((until - this.ctx.now()) / 1000));
    const close = (conn: ConnectionControl) => {
      if (conn.closing) return;
      conn.reject(
        { reason: GuardReason.BANNED, key, message: `bans: ${key} was banned for ${wait}s` },
        'frame',
        GUARDS_PLUGIN,
      );
    };
    // A ban of a connection key covers exactly the connections of that key (keys are one width).
    const exact = this.open.get(key);
    if (exact) {
      for (const conn of this.connsOf(exact)) close(conn);
      return;
    }
    for (const held of [...this.open.values()])
      for (const conn of this.connsOf(held)) {
        const peer = addressRange(conn.remoteAddress);
        if (peer && rangeContains(range, peer)) close(conn);
      }
  }

  // ---- checks ----

  private addWidth(family: 4 | 6, bits: number): void {
    const widths = this.widths[family];
    if (!widths.includes(bits)) widths.push(bits);
  }

  /** The ban in force that covers `address` (an address, or a range: a ban covering all of it), if any. */
  banFor(target: string | Cidr): MaybePromise<{ key: string; record: BanRecord } | undefined> {
    const now = this.ctx.now();
    const keys: string[] = [];
    // The accept path: a dotted IPv4 address, its ranges written without building a range object.
    const v4 = typeof target === 'string' && target.indexOf(':') < 0 ? parseIPv4(target) : -1;
    if (v4 >= 0) {
      const widths = this.widths[4];
      for (let w = 0; w < widths.length; w++) {
        const bits = widths[w]!;
        const network = bits === 0 ? 0 : (v4 & (0xffffffff << (32 - bits))) >>> 0;
        keys.push(bits === 32 ? (target as string) : `${formatIPv4(network)}/${bits}`);
      }
    } else {
      const range = typeof target === 'string' ? parseRange(target) : target;
      if (!range) return undefined;
      for (const bits of this.widths[range.family])
        if (bits <= range.bits) keys.push(formatRange(narrowTo(range, bits)));
    }
    return this.probe(keys, 0, now);
  }

  /**
   * `banFor` of a dotted IPv4 `address` already parsed (`value`, `parseIPv4`'s result) at `now`, against
   * the memory store `store`: the datagram check. Each range width in use is probed as `banFor` probes
   * it; the address itself (every source's first probe) by its number, so an address with no ban record
   * costs two table probes and no string. The rare record found is read back as `banFor` reads it.
   */
  banForIPv4(
    address: string,
    value: number,
    now: number,
    store: MemoryStore,
  ): { key: string; record: BanRecord } | undefined {
    const widths = this.widths[4];
    for (let w = 0; w < widths.length; w++) {
      const bits = widths[w]!;
      if (bits === 32 && store.banUntilIPv4(value, now) <= now) continue;
      const network = bits === 0 ? 0 : (value & (0xffffffff << (32 - bits))) >>> 0;
      const key = bits === 32 ? address : `${formatIPv4(network)}/${bits}`;
      const record = store.getBan(key, now);
      if (record && record.until > now) return { key, record };
    }
    return undefined;
  }

  /**
   * The first of `keys` banned at `now`. Synchronous while the store answers synchronously (the memory
   * store): no closure per check, which every datagram makes.
   */
  private probe(
    keys: readonly string[],
    from: number,
    now: number,
  ): MaybePromise<{ key: string; record: BanRecord } | undefined> {
    for (let i = from; i < keys.length; i++) {
      const key = keys[i]!;
      const record = this.ctx.store.getBan(key, now);
      if (record instanceof Promise) {
        return record.then((r) => (r && r.until > now ? { key, record: r } : this.probe(keys, i + 1, now)));
      }
      if (record && record.until > now) return { key, record };
    }
    return undefined;
  }

  /** Whether a ban in force covers `target`: an address (any ban holding it, a /128 included) or a range. */
  isBanned(target: string): MaybePromise<boolean> {
    const range = target.indexOf('/') < 0 ? parseRange(target.trim()) : this.target(target).range;
    if (!range) this.target(target); // throws the typed error
    return after(this.banFor(range!), (b) => b !== undefined);
  }

  /**
   * An address or a range as the ban target: an IPv4 address is itself, an IPv6 address is its key (its
   * /64 by default), a CIDR is that range. Throws for anything else, or a range wider than the firewall
   * allows (/8 of IPv4, /32 of IPv6).
   */
  target(text: string): { key: string; range: Cidr } {
    const trimmed = text.trim();
    let range = parseRange(trimmed);
    if (!range)
      throw new SockError(
        SockErrorCode.INVALID_OPTION,
        `not an IP address or CIDR: ${JSON.stringify(text)}; give an address (203.0.113.7) or a range (198.51.100.0/24)`,
      );
    if (trimmed.indexOf('/') < 0 && range.family === 6) range = narrowTo(range, this.ctx.policy.ipv6Prefix);
    if (range.bits < WIDEST_BAN[range.family])
      throw new SockError(
        SockErrorCode.INVALID_OPTION,
        `${trimmed} is wider than a /${WIDEST_BAN[range.family]} (the firewall's limit for IPv${range.family}); ban narrower ranges`,
      );
    return { key: formatRange(range), range };
  }

  // ---- strikes ----

  /**
   * Count a violation by `address` (or against a key). Nothing for an empty or invalid address, a
   * reason of weight 0, or a key that is banned right now (one burst, one ban).
   */
  strike(address: string, reason: string): MaybePromise<void> {
    const p = this.ctx.policy;
    const weight = p.strikes.weights[reason] ?? 1;
    if (weight <= 0 || !address) return;
    const peer = parseRange(address);
    if (!peer) return;
    let keyRange = peer;
    if (address.indexOf('/') < 0 && peer.family === 6) keyRange = narrowTo(peer, p.ipv6Prefix);
    const key = formatRange(keyRange);
    // The ban a key's strikes earn: the key itself, or (covering a never-ban entry) the offender alone.
    let banRange: Cidr | undefined = keyRange;
    if (this.protectedRange(keyRange)) {
      banRange = peer.bits > keyRange.bits && !this.protectedRange(peer) ? peer : undefined;
    }
    if (!banRange) {
      this.skipped++;
      return;
    }
    this.strikes += weight;
    const now = this.ctx.now();
    const banKey = formatRange(banRange);
    const done = (outcome: Awaited<ReturnType<typeof this.ctx.store.strikeBan>>): MaybePromise<void> => {
      if (outcome.alreadyBanned) return;
      if (outcome.ban) this.issued_(banKey, banRange!, outcome.ban, reason, outcome.stored !== false, now);
      return this.strikeAggregate(keyRange, weight, reason, now);
    };
    return this.guard(
      after(this.ctx.store.strikeBan(key, banKey, weight, this.rule(p.strikes.threshold), now, reason), done),
    );
  }

  private strikeAggregate(keyRange: Cidr, weight: number, reason: string, now: number): MaybePromise<void> {
    const agg = this.ctx.policy.strikes.aggregate;
    if (!agg) return;
    const bits = keyRange.family === 4 ? agg.ipv4Prefix : agg.ipv6Prefix;
    if (bits >= keyRange.bits) return;
    const range = narrowTo(keyRange, bits);
    if (this.protectedRange(range)) {
      this.skipped++;
      return;
    }
    const key = formatRange(range);
    return after(this.ctx.store.strikeBan(key, key, weight, this.rule(agg.threshold), now, reason), (o) => {
      if (o.ban) this.issued_(key, range, o.ban, reason, o.stored !== false, now);
    });
  }

  /** A store failure in a strike or ban is reported, never thrown into a hook. */
  private guard(value: MaybePromise<void>): MaybePromise<void> {
    if (!(value instanceof Promise)) return value;
    return value.catch((err) => {
      this.storeFailures++;
      this.ctx.error(toSockError(err, 'bans: store failed'));
    });
  }

  // ---- bans ----

  /** Ban an address or range for `durationMs` (default: the escalating length), never shortening. */
  ban(target: string, durationMs: number | undefined, reason: string): MaybePromise<void> {
    const { key, range } = this.target(target);
    if (this.protectedRange(range)) {
      this.skipped++;
      return;
    }
    const now = this.ctx.now();
    const rule = this.rule(this.ctx.policy.strikes.threshold);
    return this.guard(
      after(this.ctx.store.putBan(key, durationMs, rule, now, reason), (o) => {
        if (o.changed) this.issued_(key, range, o.record, reason, o.stored, now);
      }),
    );
  }

  /**
   * Lift the ban of an address's key or of a range, and forget its strikes. An IPv6 address also lifts
   * a ban of that address alone (the /128 a never-ban neighbour narrowed a ban to).
   */
  unban(target: string): MaybePromise<boolean> {
    const { key } = this.target(target);
    const keys = [key];
    const alone = target.indexOf('/') < 0 ? addressRange(target.trim()) : undefined;
    if (alone && alone.family === 6 && formatRange(alone) !== key) keys.push(formatRange(alone));
    const next = (i: number, any: boolean): MaybePromise<boolean> =>
      i >= keys.length ? any : after(this.unbanKey(keys[i]!), (was) => next(i + 1, any || was));
    return next(0, false);
  }

  private unbanKey(key: string): MaybePromise<boolean> {
    const store = this.ctx.store;
    const now = this.ctx.now();
    return after(store.getBan(key, now), (ban) =>
      after(store.clearStrikes(key), () =>
        after(store.deleteBan(key), (existed) => {
          const wasBanned = existed && ban !== undefined && ban.until > now;
          if (wasBanned) this.hooks.onUnban?.({ key, reason: GuardReason.MANUAL, offences: ban.offences });
          return wasBanned;
        }),
      ),
    );
  }

  /** A ban made here: count it, close what it covers, tell `onBan` (not in shadow mode). */
  private issued_(
    key: string,
    range: Cidr,
    record: BanRecord,
    reason: string,
    stored: boolean,
    now: number,
  ): void {
    this.addWidth(range.family, range.bits);
    if (stored) this.issued++;
    else {
      this.storeFailures++;
      this.ctx.error(
        new SockError(
          SockErrorCode.REJECTED,
          `bans: the ban of ${key} could not be stored (store full of bans in force, onFull: reject); its connections are closed and onBan is told, but the next accept is not refused by this process: raise store.maxKeys`,
          { reason: GuardReason.BAN_STORE_FULL },
        ),
      );
    }
    if (this.ctx.policy.bans.shadow) return;
    this.closeCovered(key, range, record.until);
    this.hooks.onBan?.({
      key,
      durationMs: record.until - now,
      reason,
      offences: record.offences,
      until: record.until,
    });
  }

  /** A ban learnt from another node of a shared store: it closes connections here too. */
  remoteBan(event: BanEvent): void {
    const range = parseRange(event.key);
    if (range) this.addWidth(range.family, range.bits);
    if (this.ctx.policy.bans.shadow) return;
    if (range) this.closeCovered(event.key, range, event.until);
    this.hooks.onBan?.(event);
  }
}

/**
 * Strike weights for reasons that are not the peer's fault, or already punished: 0. Everything else
 * (including core's `frame-too-large`, `validation-failed`, `invalid-message`) weighs 1 unless set.
 */
export const DEFAULT_STRIKE_WEIGHTS: Readonly<Record<string, number>> = {
  [GuardReason.BANNED]: 0,
  [GuardReason.CONN_LIMIT]: 0,
  [GuardReason.TABLE_FULL]: 0,
  [GuardReason.THROTTLED]: 0,
  [SockReason.SERVER_CLOSING]: 0,
  [GuardReason.STORE_UNAVAILABLE]: 0,
  [SockReason.DRAIN_TIMEOUT]: 0,
  [SockReason.HANDLER_ERROR]: 0,
  [SockReason.SOCKET_ERROR]: 0,
  [SockReason.FRAME_TOO_LARGE]: 2,
  [GuardReason.IP_DENIED]: 1,
  // Shaping, not abuse: a fast legitimate client exceeds a byte rate.
  [GuardReason.RATE_BYTES]: 0,
  [GuardReason.RATE_BYTES_IP]: 0,
  // A throwing hook is the operator's bug, never the peer's.
  [SockReason.PLUGIN_ERROR]: 0,
  // A health check of a trusted proxy resets before any header: never the proxy's offence.
  [GuardReason.PROXY_INVALID]: 0,
  [GuardReason.PROXY_TIMEOUT]: 0,
};

/** The `strikes` section. */
export function resolveStrikes(c: Checker, input: unknown): ResolvedPolicy['strikes'] {
  const strikes = c.section(input, ['strikes'], ['threshold', 'window', 'weights', 'aggregate'] as const);
  const threshold = c.number(strikes.threshold, ['strikes', 'threshold'], 10, { min: 1 });
  // A range's own threshold, unless set, is never below five keys' worth: below the per-key threshold
  // one key's strikes would ban its whole /24 before the key itself (a policy that raised `threshold`
  // to tolerate a noisy client would still see its neighbours banned at 50).
  const aggregateDefault = Math.max(50, 5 * threshold);
  let aggregate: ResolvedPolicy['strikes']['aggregate'];
  if (strikes.aggregate !== false) {
    const a = c.section(strikes.aggregate, ['strikes', 'aggregate'], [
      'threshold',
      'ipv4Prefix',
      'ipv6Prefix',
    ] as const);
    aggregate = {
      threshold: c.number(a.threshold, ['strikes', 'aggregate', 'threshold'], aggregateDefault, { min: 1 }),
      ipv4Prefix: c.number(a.ipv4Prefix, ['strikes', 'aggregate', 'ipv4Prefix'], 24, {
        min: 8,
        max: 31,
        int: true,
      }),
      ipv6Prefix: c.number(a.ipv6Prefix, ['strikes', 'aggregate', 'ipv6Prefix'], 48, {
        min: 32,
        max: 127,
        int: true,
      }),
    };
  }
  const weights: Record<string, number> = { ...DEFAULT_STRIKE_WEIGHTS };
  const w = strikes.weights;
  if (w !== undefined) {
    if (typeof w !== 'object' || w === null || Array.isArray(w))
      c.fail(['strikes', 'weights'], `expected an object of reason: weight, got ${describe(w)}`);
    else
      for (const [reason, weight] of Object.entries(w))
        weights[reason] = c.number(weight, ['strikes', 'weights', reason], 1);
  }
  return {
    threshold,
    windowMs: c.duration(strikes.window, ['strikes', 'window'], 600_000),
    weights,
    aggregate,
  };
}

/** The `bans` section. */
export function resolveBans(c: Checker, input: unknown): ResolvedPolicy['bans'] {
  const bans = c.section(input, ['bans'], [
    'duration',
    'factor',
    'max',
    'forget',
    'neverBan',
    'closeConnections',
    'shadow',
  ] as const);
  return {
    durationMs: c.duration(bans.duration, ['bans', 'duration'], 600_000),
    factor: c.number(bans.factor, ['bans', 'factor'], 2, { min: 1 }),
    maxMs: c.duration(bans.max, ['bans', 'max'], 7 * 86_400_000),
    forgetMs: c.duration(bans.forget, ['bans', 'forget'], 7 * 86_400_000),
    neverBan: c.cidrs(bans.neverBan, ['bans', 'neverBan']),
    closeConnections: c.bool(bans.closeConnections, ['bans', 'closeConnections'], true),
    shadow: c.bool(bans.shadow, ['bans', 'shadow'], false),
  };
}
