import {
  applyBan,
  applyStrike,
  type BanOutcome,
  type BanRule,
  type BanState,
  type StrikeOutcome,
} from './ban-rules.js';
import { parseIPv4 } from './ip.js';
import { LruTable, type OnFull, type TableStats } from './lru-table.js';

/** A value now, or later from a shared store. */
export type MaybePromise<T> = T | Promise<T>;

/** Outcome of `acquire`: counted, over the per-key maximum, or refused because the table is full. */
export type AcquireResult = 'ok' | 'limit' | 'full';

/** A ban as the store keeps it. `offences` outlives the ban itself until `forgetAt`, for escalation. */
export interface BanRecord {
  /** Clock time (ms) the ban ends; in the past once it has ended. */
  readonly until: number;
  /** Bans this key has earned so far, this one included. */
  readonly offences: number;
  /** Clock time (ms) after which the record, offences included, may be dropped. */
  readonly forgetAt: number;
}

/**
 * Where per-key state lives: connection counts, rate buckets, strikes, bans. Every method may answer
 * synchronously (the memory store always does, so the hot paths never wait) or with a promise (a shared
 * store such as Redis). Keys are addresses or IPv6 prefixes as `addressKey` makes them. Every table is
 * bounded; what happens when one is full is the store's `onFull` policy, reported in `stats()`.
 */
export interface GuardStore {
  /**
   * GCRA: take `cost` units from the bucket of `key` in `table`, refilled one unit per `emissionMs` up to
   * `burst` units. Resolves 0 when taken, the ms until it would be when limited, or -1 when the table is
   * full and refuses new keys (fail-closed).
   */
  take(
    table: string,
    key: string,
    cost: number,
    emissionMs: number,
    burst: number,
    now: number,
  ): MaybePromise<number>;
  /** Count one more open connection for `key` unless it already has `max`. */
  acquire(key: string, max: number): MaybePromise<AcquireResult>;
  /** Count one connection fewer for `key` (only after an `ok` acquire). */
  release(key: string): MaybePromise<void>;
  /**
   * One atomic step (ban-rules.ts): unless `banKey` is banned now, add `weight` strikes to `strikeKey`;
   * at the rule's threshold clear them and ban `banKey` with the escalating length its offences earn.
   * A shared store does it in one backend call (one Lua script, one IPC message) and broadcasts the ban.
   */
  strikeBan(
    strikeKey: string,
    banKey: string,
    weight: number,
    rule: BanRule,
    now: number,
    reason: string,
  ): MaybePromise<StrikeOutcome>;
  /**
   * Ban `key` for `durationMs` (undefined: the escalating length), never shortening a longer ban in force;
   * atomic like `strikeBan`. `reason` travels to other nodes.
   */
  putBan(
    key: string,
    durationMs: number | undefined,
    rule: BanRule,
    now: number,
    reason: string,
  ): MaybePromise<BanOutcome>;
  clearStrikes(key: string): MaybePromise<void>;
  /** The ban record of `key` (possibly an ended ban remembered for escalation), if any. */
  getBan(key: string, now: number): MaybePromise<BanRecord | undefined>;
  /** Forget a ban entirely; resolves whether there was one. */
  deleteBan(key: string): MaybePromise<boolean>;
  /** Keys currently banned (for snapshots; may be capped). */
  bannedKeys(
    now: number,
    limit: number,
  ): MaybePromise<Array<{ key: string; until: number; offences: number }>>;
  /** Table sizes, evictions and refusals. */
  stats(): StoreStats;
  /**
   * Optional, for shared stores: the accept decision in one call (one round trip, atomic): take one unit
   * of `rate` (if given), then, only if it was taken, `acquire(key, perKey)` (if `perKey` is finite).
   * `wait` is as `take` answers; `acquired` is undefined when no count was attempted.
   */
  admit?(
    key: string,
    rate: { readonly emissionMs: number; readonly burst: number } | undefined,
    perKey: number,
    now: number,
  ): MaybePromise<{ wait: number; acquired?: AcquireResult }>;
  /**
   * Optional, for shared stores: bans and unbans made elsewhere (another process or host). Guards pass
   * them to their `onBan` / `onUnban` hooks. Returns a function that stops the listener.
   */
  watchBans?(listener: BanListener): () => void;
}

/** Bans learnt from a shared store (made on another node, or found in a resync). */
export interface BanListener {
  ban(event: { key: string; durationMs: number; reason: string; offences: number; until: number }): void;
  unban(event: { key: string; reason: 'manual'; offences: number }): void;
}

export interface StoreStats {
  /** Keys with at least one open connection. */
  readonly activeKeys: number;
  /** Bans in force now. */
  readonly bansActive: number;
  readonly tables: Readonly<Record<string, TableStats>>;
  /** A shared store's health: where decisions were made, failures, fallbacks (see `SharedStoreStats`). */
  readonly shared?: SharedStoreStats;
}

/** Counters of a shared store (Redis, or the cluster primary): what it decided, what the fallback did. */
export interface SharedStoreStats {
  readonly backend: 'redis' | 'cluster';
  /** `shared` while decisions go to the backend; `fallback` while they are made in this process. */
  readonly state: 'shared' | 'fallback';
  readonly onStoreError: 'fail-open' | 'fail-closed';
  /** Decisions the backend made. */
  readonly decisions: number;
  /** Decisions made by the local memory store because the backend was down or slow (fail-open). */
  readonly fallbackDecisions: number;
  /** Decisions refused `store-unavailable` (fail-closed). */
  readonly failedClosed: number;
  /** Backend calls that failed, and those that took longer than the decision timeout. */
  readonly errors: number;
  readonly timeouts: number;
  /** Times the backend came back (each followed by a ban resync). */
  readonly reconnects: number;
  readonly resyncs: number;
  /** Bans and unbans learnt from other nodes. */
  readonly bansReceived: number;
  /** Bans and unbans made here and not yet written to the backend (bounded). */
  readonly pendingBans: number;
}

export interface MemoryStoreOptions {
  /** Maximum keys per table (rate buckets, strikes, bans, connection counts). Default 100,000. */
  maxKeys?: number;
  /**
   * When a table is full of live entries: `evict` the least recently used one (fail-open: that key's
   * state is forgotten) or `reject` the new key (fail-closed: its connection is refused `table-full`).
   * Default `evict`. Connection counts are never evicted (that would lose a release): a full count table
   * always answers `full`, and the guards' `onFull` decides what that means. Bans that have ended (kept
   * only to escalate the next one) live in a table of their own that always evicts: they never take the
   * place of a ban in force, and a ban that cannot be stored is reported (`banStoreFailures`), never lost
   * silently.
   */
  onFull?: OnFull;
}

/**
 * Per-key state in this process, bounded: an LRU table per purpose, lazy expiry, no timers. Address and
 * prefix keys are stored as machine words (no string kept per key): a million keys fit in ~50 MB.
 */
export function createMemoryStore(options: MemoryStoreOptions = {}): GuardStore {
  return new MemoryStore(options.maxKeys ?? 100_000, options.onFull ?? 'evict');
}

/** Connection counts are few (bounded by open connections): an IPv4 key as a number, others as is. */
function compact(key: string): number | string {
  if (key.indexOf(':') >= 0) return key;
  const v = parseIPv4(key);
  return v < 0 ? key : v | 0;
}

/** @internal The memory store; the shared stores run the ban rules on its strikes while their backend is away. */
export class MemoryStore implements GuardStore, BanState {
  private readonly buckets = new Map<string, LruTable>();
  private readonly strikes: LruTable;
  /** Bans in force: [until, offences, forgetAt]. An ended ban leaves this table first. */
  private readonly bans: LruTable;
  /** Ended bans remembered for escalation until `forgetAt`: [forgetAt, offences, until]. Always evicts. */
  private readonly ended: LruTable;
  private readonly conns = new Map<number | string, number>();
  private connsFull = 0;
  /** No ended ban can be swept from `bans` before this time (the earliest `until` seen by the last sweep). */
  private nextSweep = 0;
  /** The latest clock time a call brought (the store has no clock of its own). */
  private lastNow = 0;

  constructor(
    private readonly maxKeys: number,
    private readonly onFull: OnFull,
  ) {
    // strikes: [expiresAt, count]
    this.strikes = new LruTable(maxKeys, 2, onFull);
    this.bans = new LruTable(maxKeys, 3, onFull);
    this.ended = new LruTable(maxKeys, 3, 'evict');
  }

  private bucket(table: string): LruTable {
    let t = this.buckets.get(table);
    if (!t) {
      t = new LruTable(this.maxKeys, 1, this.onFull);
      this.buckets.set(table, t);
    }
    return t;
  }

  take(table: string, key: string, cost: number, emissionMs: number, burst: number, now: number): number {
    const t = this.bucket(table);
    return this.gcra(t, t.findAny(key), key, 0, cost, emissionMs, burst, now);
  }

  /**
   * `take` for an IPv4 address given as its number (`parseIPv4`'s result): the same bucket as its dotted
   * text, for a caller that parsed the address once for every table (the datagram check).
   */
  takeIPv4(
    table: string,
    value: number,
    cost: number,
    emissionMs: number,
    burst: number,
    now: number,
  ): number {
    const t = this.bucket(table);
    return this.gcra(t, t.findAnyIPv4(value), undefined, value, cost, emissionMs, burst, now);
  }

  /** GCRA on `slot` of `t` (-1: a new bucket for `key`, or for the IPv4 number `value` without one). */
  private gcra(
    t: LruTable,
    slot: number,
    key: string | undefined,
    value: number,
    cost: number,
    emissionMs: number,
    burst: number,
    now: number,
  ): number {
    // Field 0 is the theoretical arrival time (TAT); once it is in the past the bucket is full again,
    // which is exactly when the entry may be forgotten: expiry = TAT. A key taken again after that (every
    // datagram of a source under a high rate) reuses its expired slot: same answer, no reinsertion.
    const tat = slot < 0 ? now : Math.max(t.data[slot]!, now);
    const next = tat + cost * emissionMs;
    const tolerance = burst * emissionMs;
    if (next - now > tolerance) return Math.max(1, Math.ceil(next - tolerance - now));
    if (slot >= 0) t.data[slot] = next;
    else if ((key === undefined ? t.insertIPv4(value, next, now) : t.insert(key, next, now)) < 0) return -1;
    return 0;
  }

  acquire(key: string, max: number): AcquireResult {
    const k = compact(key);
    const count = this.conns.get(k) ?? 0;
    if (count >= max) return 'limit';
    if (count === 0 && this.conns.size >= this.maxKeys) {
      this.connsFull++;
      return 'full';
    }
    this.conns.set(k, count + 1);
    return 'ok';
  }

  release(key: string): void {
    const k = compact(key);
    const count = this.conns.get(k);
    if (count === undefined) return;
    if (count <= 1) this.conns.delete(k);
    else this.conns.set(k, count - 1);
  }

  addStrikes(key: string, weight: number, windowMs: number, now: number): number {
    if (now > this.lastNow) this.lastNow = now;
    let slot = this.strikes.find(key, now);
    if (slot < 0) {
      slot = this.strikes.insert(key, now + windowMs, now);
      if (slot < 0) return -1;
    }
    const total = this.strikes.data[slot * 2 + 1]! + weight;
    this.strikes.data[slot * 2 + 1] = total;
    return total;
  }

  strikeBan(strikeKey: string, banKey: string, weight: number, rule: BanRule, now: number): StrikeOutcome {
    return applyStrike(this, strikeKey, banKey, weight, rule, now);
  }

  putBan(key: string, durationMs: number | undefined, rule: BanRule, now: number): BanOutcome {
    return applyBan(this, key, durationMs, rule, now);
  }

  clearStrikes(key: string): void {
    this.strikes.delete(key);
  }

  getBan(key: string, now: number): BanRecord | undefined {
    const slot = this.bans.find(key, now);
    if (slot >= 0) {
      const d = this.bans.data;
      return { until: d[slot * 3]!, offences: d[slot * 3 + 1]!, forgetAt: d[slot * 3 + 2]! };
    }
    const e = this.ended.find(key, now);
    if (e < 0) return undefined;
    const d = this.ended.data;
    return { forgetAt: d[e * 3]!, offences: d[e * 3 + 1]!, until: d[e * 3 + 2]! };
  }

  /**
   * `getBan(key, now)?.until ?? 0` for an IPv4 address given as its number, without building the record:
   * the datagram check asks it of every source, and almost none is banned.
   */
  banUntilIPv4(value: number, now: number): number {
    const slot = this.bans.findIPv4(value, now);
    if (slot >= 0) return this.bans.data[slot * 3]!;
    const e = this.ended.findIPv4(value, now);
    return e < 0 ? 0 : this.ended.data[e * 3 + 2]!;
  }

  /**
   * Store a record: the offence memory in `ended` (which always evicts), a ban in force in `bans` too.
   * Before a full `bans` table evicts or refuses, the bans that have ended are swept out: they go first,
   * whatever `onFull` says.
   */
  setBan(key: string, record: BanRecord, now: number): boolean {
    if (now > this.lastNow) this.lastNow = now;
    if (record.forgetAt > now) {
      let e = this.ended.find(key, now);
      if (e < 0) e = this.ended.insert(key, record.forgetAt, now);
      const d = this.ended.data;
      d[e * 3] = record.forgetAt;
      d[e * 3 + 1] = record.offences;
      d[e * 3 + 2] = record.until;
    }
    if (record.until <= now) {
      this.bans.delete(key);
      return true;
    }
    let slot = this.bans.find(key, now);
    if (slot < 0) {
      if (this.bans.size >= this.maxKeys && now >= this.nextSweep) this.sweep(now);
      slot = this.bans.insert(key, record.until, now);
    }
    if (slot < 0) return false;
    const d = this.bans.data;
    d[slot * 3] = record.until;
    d[slot * 3 + 1] = record.offences;
    d[slot * 3 + 2] = record.forgetAt;
    return true;
  }

  /** Drop every ended ban from `bans` (O(n), at most once per earliest end time of the bans in force). */
  private sweep(now: number): void {
    let earliest = Number.POSITIVE_INFINITY;
    const endedKeys: string[] = [];
    const d = this.bans.data;
    for (const [key, slot] of this.bans.entries(Number.NEGATIVE_INFINITY)) {
      const until = d[slot * 3]!;
      if (until <= now) endedKeys.push(key);
      else earliest = Math.min(earliest, until);
    }
    for (const key of endedKeys) this.bans.delete(key);
    this.nextSweep = earliest;
  }

  deleteBan(key: string): boolean {
    const a = this.bans.delete(key);
    const b = this.ended.delete(key);
    return a || b;
  }

  bannedKeys(now: number, limit: number): Array<{ key: string; until: number; offences: number }> {
    const out: Array<{ key: string; until: number; offences: number }> = [];
    const d = this.bans.data;
    for (const [key, slot] of this.bans.entries(now)) {
      if (out.length >= limit) break;
      out.push({ key, until: d[slot * 3]!, offences: d[slot * 3 + 1]! });
    }
    return out;
  }

  stats(): StoreStats {
    const tables: Record<string, TableStats> = {
      connections: {
        size: this.conns.size,
        max: this.maxKeys,
        evictions: 0,
        full: this.connsFull,
        expired: 0,
      },
      strikes: this.strikes.stats(),
      bans: this.bans.stats(),
      endedBans: this.ended.stats(),
    };
    for (const [name, t] of this.buckets) tables[name] = t.stats();
    let bansActive = 0;
    for (const _ of this.bans.entries(this.lastNow)) bansActive++;
    return { activeKeys: this.conns.size, bansActive, tables };
  }
}
