import { type Clock, SockError, SockErrorCode } from '@sock/core';
import { systemClock, unrefTimer } from '@sock/core/internal';
import { BanMirror } from './ban-mirror.js';
import {
  applyBan,
  applyStrike,
  type BanOutcome,
  type BanRule,
  type BanState,
  type StrikeOutcome,
} from './ban-rules.js';
import { GuardReason } from './reasons.js';
import {
  type AcquireResult,
  type BanListener,
  type BanRecord,
  createMemoryStore,
  type GuardStore,
  type MemoryStore,
  type MemoryStoreOptions,
  type SharedStoreStats,
  type StoreStats,
} from './store.js';

/**
 * What a shared store does when its backend (Redis, the cluster primary) is down or slower than the
 * decision timeout: `fail-open` decides in this process with the local memory store (per-process limits,
 * known bans) and counts it; `fail-closed` refuses the connection `store-unavailable`.
 */
export type OnStoreError = 'fail-open' | 'fail-closed';

/** A ban as it travels between nodes. `deleted` for an unban. */
export interface BanMessage {
  readonly node: string;
  readonly key: string;
  readonly until?: number;
  readonly offences?: number;
  readonly forgetAt?: number;
  readonly reason?: string;
  readonly deleted?: boolean;
  /** Write only if the backend has no record of the key, or an older ban (resync after a state loss). */
  readonly merge?: boolean;
}

/** @internal What a shared store needs from its backend. Every call may reject; the store decides what then. */
export interface Backend {
  readonly kind: 'redis' | 'cluster';
  /** Whether calls may be sent now (connected). */
  readonly ready: boolean;
  admit(
    key: string,
    emissionMs: number,
    burst: number,
    perKey: number,
  ): Promise<{ wait: number; acquired?: AcquireResult }>;
  take(table: string, key: string, cost: number, emissionMs: number, burst: number): Promise<number>;
  /** One connection fewer for `key` counted by this node. */
  release(key: string): Promise<void>;
  /** Set this node's counts exactly (`count`), or renew them as they are (`-1`). */
  sync(entries: ReadonlyArray<readonly [string, number]>): Promise<void>;
  /** One atomic strike step (ban-rules.ts); a ban it issues is stored and broadcast by the backend. */
  strikeBan(
    strikeKey: string,
    banKey: string,
    weight: number,
    rule: BanRule,
    reason: string,
  ): Promise<StrikeOutcome>;
  /** One atomic ban step, never shortening; stored and broadcast by the backend. */
  putBan(key: string, durationMs: number | undefined, rule: BanRule, reason: string): Promise<BanOutcome>;
  clearStrikes(key: string): Promise<void>;
  /** Store and broadcast a ban (or, `deleted`, an unban); resolves whether an unban found a ban. */
  publish(message: BanMessage): Promise<boolean>;
  /** The backend's state identity, created if missing: a new value means its state was lost. */
  epoch(): Promise<string>;
  /** Every ban record the backend holds. */
  loadBans(): Promise<Array<[string, BanRecord]>>;
  close(): Promise<void>;
}

/** @internal How the backend reports to its store. */
export interface BackendEvents {
  /** Connected (again): the store resyncs, then decides through the backend. */
  up(): void;
  /** Lost: decisions go to the fallback at once, without waiting for a timeout each. */
  down(error?: unknown): void;
  /** A ban or unban broadcast by any node (this one included). */
  message(message: BanMessage): void;
  error(error: unknown): void;
}

export interface SharedStoreOptions {
  /** What decisions do while the backend is down or slow. Default `fail-open`. */
  onStoreError?: OnStoreError;
  /** Longest wait for the backend per decision before `onStoreError` applies. Default 50 ms. */
  timeout?: number;
  /** The local store used while the backend is down (fail-open), and the bound of the ban mirror. */
  fallback?: MemoryStoreOptions;
  /** Renew this node's connection counts this often (they expire after 3× this). Default 10 s. */
  renewMs?: number;
  /** Most bans and unbans kept while the backend is down, written when it returns. Default 10,000. */
  maxPendingBans?: number;
  /** Backend failures (counted in the snapshot either way). */
  onError?: (error: SockError) => void;
  /** Clock for ban checks and retries. Default the system clock. */
  clock?: Clock;
}

/** What the Redis and cluster stores have in common. */
export interface SharedGuardStore extends GuardStore {
  /** This process's node id in the backend (connection counts, ban broadcasts). */
  readonly node: string;
  /** Resolves once the backend is in use (connected, bans loaded). */
  ready(options?: { signal?: AbortSignal }): Promise<void>;
  /** Stop listening and close what the store opened. */
  close(): Promise<void>;
}

/** Options of the Redis and cluster stores. */
export interface SharedGuardStoreOptions {
  /** Fail open (decide in this process) or closed (`store-unavailable`) while the backend is down or slow. Default `fail-open`. */
  onStoreError?: OnStoreError;
  /** Longest wait for the backend per decision. Default 50 ms. */
  timeout?: number | string;
  /** Local memory store for the fail-open fallback, and the bound of the ban mirror. Default 100,000 keys per table. */
  fallback?: MemoryStoreOptions;
  /** Backend failures (they are also counted in `stats().shared` and the guards snapshot). */
  onError?: (error: SockError) => void;
  /** Where the ban mirror reads time; give it the guards' `clock`. Default the system clock. */
  clock?: Clock;
  signal?: AbortSignal;
}

class Timeout extends Error {}

/**
 * @internal The part of every shared store that is not the backend: a local mirror of the bans (so a ban
 * check never waits), the fail-open fallback, per-decision timeouts, exact local bookkeeping of what this
 * node counted where (so every release goes where its acquire went), resync and reconciliation when the
 * backend returns.
 */
export class SharedStore implements GuardStore {
  readonly node: string;
  private backend!: Backend;
  private mirror: BanMirror;
  private readonly fallback: MemoryStore;
  private readonly onStoreError: OnStoreError;
  private readonly timeoutMs: number;
  private readonly maxPending: number;
  private readonly clock: Clock;
  /** Connections this node counted in the backend, and those counted in the fallback, per key. */
  private readonly remoteConns = new Map<string, number>();
  private readonly localConns = new Map<string, number>();
  /** Keys whose backend count may be wrong (a release or acquire outcome was lost): set exactly on sync. */
  private readonly dirty = new Set<string>();
  private readonly pending = new Map<string, BanMessage>();
  private readonly listeners = new Set<BanListener>();
  private synced = false;
  /** The backend's identity when we last synced (it changes when Redis restarts empty). */
  private epoch: string | undefined;
  private syncing: Promise<void> | undefined;
  /** Ban messages heard while a resync loads the backend's bans (applied to the new mirror after). */
  private heardDuringResync: BanMessage[] | undefined;
  private renewTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly counts = {
    decisions: 0,
    fallbackDecisions: 0,
    failedClosed: 0,
    errors: 0,
    timeouts: 0,
    reconnects: 0,
    resyncs: 0,
    bansReceived: 0,
  };

  constructor(
    private readonly options: SharedStoreOptions,
    node: string,
  ) {
    this.node = node;
    this.onStoreError = options.onStoreError ?? 'fail-open';
    if (this.onStoreError !== 'fail-open' && this.onStoreError !== 'fail-closed')
      throw new SockError(
        SockErrorCode.INVALID_OPTION,
        `onStoreError must be 'fail-open' or 'fail-closed', not ${String(this.onStoreError)}`,
      );
    this.timeoutMs = options.timeout ?? 50;
    this.maxPending = options.maxPendingBans ?? 10_000;
    this.clock = options.clock ?? systemClock;
    this.fallback = createMemoryStore(options.fallback) as MemoryStore;
    this.mirror = new BanMirror(options.fallback?.maxKeys ?? 100_000);
    const renewMs = options.renewMs ?? 10_000;
    this.renewTimer = setInterval(() => this.renew(), renewMs);
    this.renewTimer.unref();
  }

  private now(): number {
    return this.clock.now();
  }

  /** Attach the backend (it needs this store's event handlers, so it is built after). */
  attach(backend: Backend): void {
    this.backend = backend;
  }

  /** The handlers the backend calls. */
  readonly events: BackendEvents = {
    up: () => {
      if (this.closed) return;
      this.counts.reconnects++;
      void this.resync();
    },
    down: (error) => {
      this.synced = false;
      if (error !== undefined) this.fail(error, 'backend lost');
    },
    message: (m) => this.onMessage(m),
    error: (error) => this.fail(error, 'backend'),
  };

  private get shared(): boolean {
    return this.synced && this.backend.ready;
  }

  private fail(error: unknown, context: string): void {
    this.counts.errors++;
    const err = SockError.isInstance(error)
      ? error
      : new SockError(
          SockErrorCode.SOCKET_ERROR,
          `${this.backend?.kind ?? 'shared'} store: ${context}: ${(error as Error)?.message ?? String(error)}`,
          { cause: error },
        );
    this.options.onError?.(err);
  }

  private unavailable(key: string): SockError {
    this.counts.failedClosed++;
    return new SockError(
      SockErrorCode.REJECTED,
      `${this.backend.kind} store unavailable; refusing ${key} (onStoreError: fail-closed)`,
      { reason: GuardReason.STORE_UNAVAILABLE },
    );
  }

  /** The backend's answer within the decision timeout, or a rejection. */
  private timed<T>(call: () => Promise<T>, late?: (value: T) => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let done = false;
      // Real time, not the guards' clock: it waits on the backend (Redis, the primary), a real peer.
      const timer = setTimeout(() => {
        done = true;
        this.counts.timeouts++;
        reject(new Timeout(`no answer within ${this.timeoutMs}ms`));
      }, this.timeoutMs);
      call().then(
        (value) => {
          if (done) return late?.(value);
          done = true;
          clearTimeout(timer);
          resolve(value);
        },
        (err) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          reject(err);
        },
      );
    });
  }

  /** Run a decision on the backend, or per `onStoreError` when it is down, fails or is too slow. */
  private decide<T>(
    key: string,
    remote: () => Promise<T>,
    local: () => T,
    late?: (value: T) => void,
  ): Promise<T> {
    if (!this.shared) {
      try {
        return Promise.resolve(this.degraded(key, local));
      } catch (err) {
        return Promise.reject(err);
      }
    }
    return this.timed(remote, late).then(
      (value) => {
        this.counts.decisions++;
        return value;
      },
      (err) => {
        if (!(err instanceof Timeout)) this.fail(err, 'decision');
        return this.degraded(key, local);
      },
    );
  }

  private degraded<T>(key: string, local: () => T): T {
    if (this.onStoreError === 'fail-closed') throw this.unavailable(key);
    this.counts.fallbackDecisions++;
    return local();
  }

  // ---- decisions ----

  take(table: string, key: string, cost: number, emissionMs: number, burst: number, now: number) {
    return this.decide(
      key,
      () => this.backend.take(table, key, cost, emissionMs, burst),
      () => this.fallback.take(table, key, cost, emissionMs, burst, now) as number,
    );
  }

  acquire(key: string, max: number) {
    return this.admit(key, undefined, max, 0).then((r) => r.acquired ?? 'ok');
  }

  admit(
    key: string,
    rate: { readonly emissionMs: number; readonly burst: number } | undefined,
    perKey: number,
    now: number,
  ): Promise<{ wait: number; acquired?: AcquireResult }> {
    const max = perKey === Number.POSITIVE_INFINITY ? -1 : perKey;
    const result = this.decide(
      key,
      () => this.backend.admit(key, rate?.emissionMs ?? 0, rate?.burst ?? 0, max),
      () => {
        const wait = rate
          ? (this.fallback.take('connections', key, 1, rate.emissionMs, rate.burst, now) as number)
          : 0;
        if (wait !== 0 || max < 0) return { wait };
        const acquired = this.fallback.acquire(key, max) as AcquireResult;
        if (acquired === 'ok') bump(this.localConns, key, 1);
        return { wait, acquired, local: true };
      },
      (late) => {
        // The backend counted a connection after the timeout sent it to the fallback: take it back.
        if (late.acquired === 'ok') {
          this.dirty.add(key);
          this.syncKey(key);
        }
      },
    );
    return result.then((r) => {
      if (r.acquired === 'ok' && !('local' in r)) bump(this.remoteConns, key, 1);
      return r.acquired === undefined ? { wait: r.wait } : { wait: r.wait, acquired: r.acquired };
    });
  }

  release(key: string): void {
    if (bump(this.localConns, key, -1)) {
      this.fallback.release(key);
      return;
    }
    if (!bump(this.remoteConns, key, -1)) return;
    if (!this.shared) {
      this.dirty.add(key);
      return;
    }
    this.timed(() => this.backend.release(key)).catch((err) => {
      if (!(err instanceof Timeout)) this.fail(err, 'release');
      this.dirty.add(key);
    });
  }

  // ---- strikes and bans: one backend call each; while it is away, the same rules run here ----

  /** The rules' state while the backend is away: local strikes, the ban mirror, bans queued to publish. */
  private localState(reason: string): BanState {
    return {
      getBan: (key, now) => this.mirror.get(key, now),
      setBan: (key, record) => {
        this.mirror.set(key, record);
        // Merged when written: a longer ban another node made meanwhile is kept (never shorten).
        this.queue({ node: this.node, key, ...record, reason, merge: true });
        return true;
      },
      addStrikes: (key, weight, windowMs, now) => this.fallback.addStrikes(key, weight, windowMs, now),
      clearStrikes: (key) => this.fallback.clearStrikes(key),
    };
  }

  strikeBan(
    strikeKey: string,
    banKey: string,
    weight: number,
    rule: BanRule,
    now: number,
    reason: string,
  ): StrikeOutcome | Promise<StrikeOutcome> {
    const local = () => applyStrike(this.localState(reason), strikeKey, banKey, weight, rule, now);
    if (!this.shared) return local();
    const mirror = (o: StrikeOutcome) => {
      if (o.ban) this.mirror.set(banKey, o.ban);
      return o;
    };
    return this.timed(() => this.backend.strikeBan(strikeKey, banKey, weight, rule, reason), mirror).then(
      mirror,
      (err) => {
        if (!(err instanceof Timeout)) this.fail(err, 'strike');
        return local();
      },
    );
  }

  putBan(
    key: string,
    durationMs: number | undefined,
    rule: BanRule,
    now: number,
    reason: string,
  ): BanOutcome | Promise<BanOutcome> {
    const local = () => applyBan(this.localState(reason), key, durationMs, rule, now);
    if (!this.shared) return local();
    const mirror = (o: BanOutcome) => {
      if (o.changed) this.mirror.set(key, o.record);
      return o;
    };
    return this.timed(() => this.backend.putBan(key, durationMs, rule, reason), mirror).then(
      mirror,
      (err) => {
        if (!(err instanceof Timeout)) this.fail(err, 'ban');
        return local();
      },
    );
  }

  clearStrikes(key: string): void | Promise<void> {
    this.fallback.clearStrikes(key);
    if (!this.shared) return;
    return this.timed(() => this.backend.clearStrikes(key)).catch((err) => {
      if (!(err instanceof Timeout)) this.fail(err, 'clear strikes');
    });
  }

  // ---- bans: a local mirror answers at once; the backend stores and broadcasts ----

  getBan(key: string, now: number): BanRecord | undefined {
    return this.mirror.get(key, now);
  }

  deleteBan(key: string): boolean {
    const existed = this.mirror.delete(key);
    this.send({ node: this.node, key, deleted: true });
    return existed;
  }

  bannedKeys(now: number, limit: number) {
    return this.mirror.active(now, limit);
  }

  watchBans(listener: BanListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private send(message: BanMessage): void {
    if (!this.shared) {
      this.queue(message);
      return;
    }
    this.backend.publish(message).catch((err) => {
      this.fail(err, 'ban');
      this.queue(message);
    });
  }

  /** Bounded: beyond `maxPendingBans` the oldest pending ban is dropped (it still holds here). */
  private queue(message: BanMessage): void {
    this.pending.delete(message.key);
    this.pending.set(message.key, message);
    if (this.pending.size > this.maxPending) {
      const oldest = this.pending.keys().next().value as string;
      this.pending.delete(oldest);
      this.counts.errors++;
    }
  }

  private onMessage(m: BanMessage): void {
    if (m.node === this.node) return;
    this.counts.bansReceived++;
    // A resync in flight builds a new mirror from what it loaded: this message must reach that one too.
    this.heardDuringResync?.push(m);
    const now = this.now();
    if (m.deleted) {
      const before = this.mirror.get(m.key, now);
      this.mirror.delete(m.key);
      if (before && before.until > now) this.emitUnban(m.key, before.offences);
      return;
    }
    const record = { until: m.until ?? 0, offences: m.offences ?? 1, forgetAt: m.forgetAt ?? 0 };
    const before = this.mirror.get(m.key, now);
    this.mirror.set(m.key, record);
    if (record.until > now && before?.until !== record.until)
      this.emitBan(m.key, record, m.reason ?? GuardReason.REMOTE, now);
  }

  private emitBan(key: string, r: BanRecord, reason: string, now: number): void {
    for (const l of this.listeners) {
      try {
        l.ban({ key, durationMs: r.until - now, reason, offences: r.offences, until: r.until });
      } catch (err) {
        this.fail(err, 'ban listener');
      }
    }
  }

  private emitUnban(key: string, offences: number): void {
    for (const l of this.listeners) {
      try {
        l.unban({ key, reason: GuardReason.MANUAL, offences });
      } catch (err) {
        this.fail(err, 'unban listener');
      }
    }
  }

  // ---- (re)connection: write what waited, set counts exactly, reload every ban ----

  /** Resolves once the backend is in use (after a resync), or rejects on `signal`. */
  async ready(options: { signal?: AbortSignal } = {}): Promise<void> {
    const signal = options.signal;
    while (!this.shared) {
      signal?.throwIfAborted();
      if (this.syncing) await this.syncing.catch(() => {});
      // Real time, not the guards' clock: it waits on the backend to connect.
      else await new Promise((r) => setTimeout(r, 10));
    }
  }

  resync(): Promise<void> {
    if (this.syncing) return this.syncing;
    this.syncing = this.doResync().finally(() => {
      this.syncing = undefined;
    });
    return this.syncing;
  }

  private async doResync(): Promise<void> {
    try {
      for (const [key, message] of [...this.pending]) {
        await this.backend.publish(message);
        if (this.pending.get(key) === message) this.pending.delete(key);
      }
      // Connections admitted by the fallback now count in the backend: the shared limit sees them.
      for (const [key, n] of this.localConns) {
        for (let i = 0; i < n; i++) this.fallback.release(key);
        bump(this.remoteConns, key, n);
        this.dirty.add(key);
      }
      this.localConns.clear();
      await this.flushDirty();
      // A backend that lost its state (Redis restarted without persistence) gets our bans back; one we
      // knew is the truth (it holds unbans made while we were away).
      const epoch = await this.backend.epoch();
      if (this.epoch !== undefined && epoch !== this.epoch) {
        for (const [key, r] of this.mirror.entries(this.now()))
          await this.backend.publish({ node: this.node, key, ...r, merge: true });
      }
      this.epoch = epoch;
      this.heardDuringResync = [];
      const records = await this.backend.loadBans();
      const now = this.now();
      const next = new BanMirror(this.options.fallback?.maxKeys ?? 100_000);
      for (const [key, r] of records) {
        if (r.forgetAt <= now) continue;
        next.set(key, r);
        const before = this.mirror.get(key, now);
        if (r.until > now && before?.until !== r.until) this.emitBan(key, r, GuardReason.RESYNC, now);
      }
      // What was broadcast while the bans loaded is newer than the load (or as new): apply it on top.
      for (const m of this.heardDuringResync) {
        if (m.deleted) next.delete(m.key);
        else next.set(m.key, { until: m.until ?? 0, offences: m.offences ?? 1, forgetAt: m.forgetAt ?? 0 });
      }
      this.heardDuringResync = undefined;
      for (const b of this.mirror.active(now, Number.MAX_SAFE_INTEGER)) {
        if (!next.get(b.key, now) || next.get(b.key, now)!.until <= now) this.emitUnban(b.key, b.offences);
      }
      this.mirror = next;
      this.counts.resyncs++;
      this.synced = this.backend.ready;
    } catch (err) {
      this.heardDuringResync = undefined;
      this.fail(err, 'resync');
      this.synced = false;
      // Try again shortly while the backend claims to be up; a real loss re-announces itself with `up`.
      if (!this.closed && this.backend.ready) {
        unrefTimer(this.clock.setTimeout(() => void this.resync(), 200));
      }
    }
  }

  private async flushDirty(): Promise<void> {
    if (this.dirty.size === 0) return;
    const keys = [...this.dirty];
    this.dirty.clear();
    try {
      await this.backend.sync(keys.map((k) => [k, this.remoteConns.get(k) ?? 0] as const));
    } catch (err) {
      for (const k of keys) this.dirty.add(k);
      throw err;
    }
  }

  private syncKey(key: string): void {
    if (!this.shared) return;
    this.flushDirty().catch((err) => this.fail(err, 'sync'));
    void key;
  }

  /** Keep this node's counts alive in the backend (a node that dies stops renewing; its counts expire). */
  private renew(): void {
    if (!this.shared) return;
    const entries: Array<readonly [string, number]> = [];
    for (const [key, n] of this.remoteConns) entries.push([key, this.dirty.delete(key) ? n : -1]);
    for (const key of this.dirty) entries.push([key, this.remoteConns.get(key) ?? 0]);
    this.dirty.clear();
    if (entries.length === 0) return;
    this.backend.sync(entries).catch((err) => {
      this.fail(err, 'renew');
      for (const [key] of entries) this.dirty.add(key);
    });
  }

  stats(): StoreStats {
    const fb = this.fallback.stats();

    let active = 0;
    for (const n of this.remoteConns.values()) if (n > 0) active++;
    const shared: SharedStoreStats = {
      backend: this.backend.kind,
      state: this.shared ? 'shared' : 'fallback',
      onStoreError: this.onStoreError,
      ...this.counts,
      pendingBans: this.pending.size,
    };
    return {
      activeKeys: active + fb.activeKeys,
      bansActive: this.mirror.active(this.now(), Number.MAX_SAFE_INTEGER).length,
      tables: { ...fb.tables, bans: this.mirror.stats() },
      shared,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.synced = false;
    clearInterval(this.renewTimer);
    this.listeners.clear();
    await this.backend.close();
  }
}

/** Add `delta` to a count; false (and nothing changed) when it would go below zero. */
function bump(map: Map<string, number>, key: string, delta: number): boolean {
  const n = (map.get(key) ?? 0) + delta;
  if (n < 0) return false;
  if (n === 0) map.delete(key);
  else map.set(key, n);
  return true;
}
