import type { Cluster, Worker } from 'node:cluster';
import { type Clock, parseDuration, SockError, SockErrorCode } from '@sock/core';
import { systemClock } from '@sock/core/internal';
import type { BanOutcome, BanRule, StrikeOutcome } from './ban-rules.js';
import {
  type Backend,
  type BackendEvents,
  type BanMessage,
  type SharedGuardStore,
  type SharedGuardStoreOptions,
  SharedStore,
} from './shared-store.js';
import {
  type AcquireResult,
  type BanRecord,
  createMemoryStore,
  type GuardStore,
  type MemoryStore,
  type MemoryStoreOptions,
} from './store.js';

/** Tag of every IPC message of the cluster store, so other messages on the same channel are left alone. */
const TAG = 'sock.guards';

interface Request {
  readonly tag: typeof TAG;
  readonly id: number;
  readonly op:
    | 'hello'
    | 'admit'
    | 'take'
    | 'release'
    | 'sync'
    | 'strikeBan'
    | 'putBan'
    | 'clear'
    | 'ban'
    | 'bans';
  readonly args: unknown[];
}

interface Reply {
  readonly tag: typeof TAG;
  readonly id?: number;
  readonly result?: unknown;
  readonly error?: string;
  /** A ban broadcast to every worker. */
  readonly ban?: BanMessage;
}

export interface ClusterStoreOptions extends SharedGuardStoreOptions {
  /** Resolve only once the primary answered and the bans are loaded. Default true. */
  waitForPrimary?: boolean;
}

/** A guards store in a `node:cluster` worker whose state lives in the primary (`serveClusterPrimary`). */
export type ClusterStore = SharedGuardStore;

export interface ClusterPrimaryOptions extends MemoryStoreOptions {
  /** The `node:cluster` module (default: imported). */
  cluster?: Cluster;
  /** Where the primary reads time (rate tables, ban expiry). Default the system clock. */
  clock?: Clock;
}

export interface ClusterPrimary {
  /** The primary's store (the shared state). */
  readonly store: GuardStore;
  /** Stop answering workers. */
  close(): void;
}

/**
 * For a `node:cluster` worker: guards' state shared through the primary (one host, no Redis), so a per-IP
 * limit of N holds across every worker serving the listener. Bans are mirrored in each worker (a ban check
 * never waits) and broadcast by the primary to all workers. The primary runs `serveClusterPrimary()`.
 */
export async function createClusterStore(options: ClusterStoreOptions = {}): Promise<ClusterStore> {
  if (typeof process.send !== 'function')
    throw new SockError(
      SockErrorCode.INVALID_OPTION,
      'createClusterStore runs in a node:cluster worker (no IPC channel here); in the primary call serveClusterPrimary()',
    );
  const timeout = options.timeout === undefined ? 50 : parseDuration(options.timeout, 'timeout');
  const node = `worker-${process.pid}`;
  const store = new SharedStore(
    {
      onStoreError: options.onStoreError,
      timeout,
      fallback: options.fallback,
      onError: options.onError,
      clock: options.clock,
    },
    node,
  );
  const backend = new IpcBackend(node, store.events, Math.max(timeout * 10, 1000));
  store.attach(backend);
  backend.start();
  if (options.waitForPrimary !== false) {
    try {
      await store.ready({ signal: options.signal });
    } catch (err) {
      await store.close();
      throw err;
    }
  }
  return store as unknown as ClusterStore;
}

class IpcBackend implements Backend {
  readonly kind = 'cluster' as const;
  private nextId = 1;
  private readonly calls = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }
  >();
  private up = false;
  private closed = false;
  private helloTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly node: string,
    private readonly events: BackendEvents,
    private readonly callTimeoutMs: number,
  ) {}

  get ready(): boolean {
    return this.up && process.connected;
  }

  private readonly onMessage = (msg: unknown) => {
    const m = msg as Reply;
    if (!m || m.tag !== TAG) return;
    if (m.ban) {
      this.events.message(m.ban);
      return;
    }
    const call = m.id === undefined ? undefined : this.calls.get(m.id);
    if (!call) return;
    this.calls.delete(m.id!);
    clearTimeout(call.timer);
    if (m.error !== undefined) call.reject(new Error(m.error));
    else call.resolve(m.result);
  };

  private readonly onDisconnect = () => {
    this.up = false;
    for (const [, c] of this.calls) {
      clearTimeout(c.timer);
      c.reject(new Error('IPC channel to the primary closed'));
    }
    this.calls.clear();
    this.events.down(new Error('IPC channel to the primary closed'));
  };

  start(): void {
    process.on('message', this.onMessage);
    process.on('disconnect', this.onDisconnect);
    this.hello();
  }

  /** Ask the primary until it answers (it may start serving after the worker). */
  private hello(): void {
    if (this.closed || !process.connected) return;
    this.call('hello', [this.node]).then(
      () => {
        this.up = true;
        this.events.up();
      },
      () => {
        // Real time, not the guards' clock: it waits on another process (the primary).
        this.helloTimer = setTimeout(() => this.hello(), 200);
        this.helloTimer.unref();
      },
    );
  }

  private call<T>(op: Request['op'], args: unknown[]): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (!process.connected || !process.send) {
        reject(new Error('no IPC channel to the primary'));
        return;
      }
      const id = this.nextId++;
      // Real time, not the guards' clock: it waits on another process (the primary).
      // Bounded: a call the primary never answers is dropped after callTimeoutMs.
      const timer = setTimeout(() => {
        this.calls.delete(id);
        reject(new Error(`primary did not answer ${op} within ${this.callTimeoutMs}ms`));
      }, this.callTimeoutMs);
      timer.unref();
      this.calls.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      const request: Request = { tag: TAG, id, op, args };
      process.send(request, undefined, undefined, (err) => {
        if (!err) return;
        const c = this.calls.get(id);
        if (!c) return;
        this.calls.delete(id);
        clearTimeout(c.timer);
        reject(err);
      });
    });
  }

  admit(key: string, emissionMs: number, burst: number, perKey: number) {
    return this.call<{ wait: number; acquired?: AcquireResult }>('admit', [key, emissionMs, burst, perKey]);
  }
  take(table: string, key: string, cost: number, emissionMs: number, burst: number) {
    return this.call<number>('take', [table, key, cost, emissionMs, burst]);
  }
  release(key: string) {
    return this.call<void>('release', [key]);
  }
  sync(entries: ReadonlyArray<readonly [string, number]>) {
    return this.call<void>('sync', [entries]);
  }
  /** One message: the primary strikes, bans and broadcasts in one turn of its event loop. */
  strikeBan(strikeKey: string, banKey: string, weight: number, rule: BanRule, reason: string) {
    return this.call<StrikeOutcome>('strikeBan', [strikeKey, banKey, weight, rule, reason]);
  }
  putBan(key: string, durationMs: number | undefined, rule: BanRule, reason: string) {
    return this.call<BanOutcome>('putBan', [key, durationMs ?? null, rule, reason]);
  }
  clearStrikes(key: string) {
    return this.call<void>('clear', [key]);
  }
  publish(message: BanMessage) {
    return this.call<boolean>('ban', [message]);
  }
  epoch() {
    return Promise.resolve('primary');
  }
  loadBans() {
    return this.call<Array<[string, BanRecord]>>('bans', []);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.up = false;
    clearTimeout(this.helloTimer);
    process.off('message', this.onMessage);
    process.off('disconnect', this.onDisconnect);
    for (const [, c] of this.calls) {
      clearTimeout(c.timer);
      c.reject(new Error('cluster store closed'));
    }
    this.calls.clear();
  }
}

/**
 * For the `node:cluster` primary: hold guards' state for every worker that uses `createClusterStore()`,
 * in one bounded memory store. Connection counts are kept per worker, so a worker that exits releases all
 * of its connections at once; bans are broadcast to every worker.
 */
export async function serveClusterPrimary(options: ClusterPrimaryOptions = {}): Promise<ClusterPrimary> {
  const cluster = options.cluster ?? ((await import('node:cluster')).default as unknown as Cluster);
  if (!cluster.isPrimary)
    throw new SockError(SockErrorCode.INVALID_OPTION, 'serveClusterPrimary runs in the node:cluster primary');
  const maxKeys = options.maxKeys ?? 100_000;
  const clock = options.clock ?? systemClock;
  const store = createMemoryStore({ maxKeys, onFull: options.onFull }) as MemoryStore;
  /** Every ban record (bounded like the store), for the workers' resyncs. */
  const bans = new Map<string, BanRecord>();
  const counts = new Map<number, Map<string, number>>();

  const countsOf = (w: Worker) => {
    let c = counts.get(w.id);
    if (!c) {
      c = new Map();
      counts.set(w.id, c);
    }
    return c;
  };
  const setCount = (w: Worker, key: string, n: number) => {
    const c = countsOf(w);
    let have = c.get(key) ?? 0;
    for (; have < n; have++) store.acquire(key, Number.POSITIVE_INFINITY);
    for (; have > n; have--) store.release(key);
    if (n > 0) c.set(key, n);
    else c.delete(key);
  };
  const broadcast = (ban: BanMessage) => {
    for (const w of Object.values(cluster.workers ?? {})) {
      if (w?.isConnected()) w.send({ tag: TAG, ban } satisfies Reply, undefined, () => {});
    }
  };

  /** Keep a ban for the workers' resyncs (bounded: forgotten records go first) and broadcast it. */
  const remember = (w: Worker, key: string, record: BanRecord, reason: string, now: number) => {
    bans.delete(key);
    bans.set(key, record);
    if (bans.size > maxKeys) {
      for (const [k, b] of bans) if (b.forgetAt <= now) bans.delete(k);
      while (bans.size > maxKeys) bans.delete(bans.keys().next().value as string);
    }
    broadcast({ node: `worker-${w.process.pid}`, key, ...record, reason });
  };

  const handle = (w: Worker, r: Request): unknown => {
    const now = clock.now();
    const a = r.args as unknown;
    switch (r.op) {
      case 'hello':
        return true;
      case 'admit': {
        const [key, emissionMs, burst, perKey] = a as [string, number, number, number];
        const wait =
          emissionMs > 0 ? (store.take('connections', key, 1, emissionMs, burst, now) as number) : 0;
        if (wait !== 0 || perKey < 0) return { wait };
        const acquired = store.acquire(key, perKey) as AcquireResult;
        if (acquired === 'ok') countsOf(w).set(key, (countsOf(w).get(key) ?? 0) + 1);
        return { wait, acquired };
      }
      case 'take': {
        const [table, key, cost, emissionMs, burst] = a as [string, string, number, number, number];
        return store.take(table, key, cost, emissionMs, burst, now);
      }
      case 'release': {
        const [key] = a as [string];
        const have = countsOf(w).get(key) ?? 0;
        if (have > 0) setCount(w, key, have - 1);
        return undefined;
      }
      case 'sync': {
        const [entries] = a as [Array<[string, number]>];
        for (const [key, n] of entries) if (n >= 0) setCount(w, key, n);
        return undefined;
      }
      case 'strikeBan': {
        const [strikeKey, banKey, weight, rule, reason] = a as [string, string, number, BanRule, string];
        const outcome = store.strikeBan(strikeKey, banKey, weight, rule, now);
        if (outcome.ban) remember(w, banKey, outcome.ban, reason, now);
        return outcome;
      }
      case 'putBan': {
        const [key, durationMs, rule, reason] = a as [string, number | null, BanRule, string];
        const outcome = store.putBan(key, durationMs ?? undefined, rule, now);
        if (outcome.changed) remember(w, key, outcome.record, reason, now);
        return outcome;
      }
      case 'clear':
        store.clearStrikes((a as [string])[0]);
        return undefined;
      case 'ban': {
        const [m] = a as [BanMessage];
        let found = false;
        if (m.deleted) {
          found = bans.delete(m.key);
          store.deleteBan(m.key);
        } else {
          const record = { until: m.until ?? 0, offences: m.offences ?? 1, forgetAt: m.forgetAt ?? 0 };
          // A merge (a ban made while the primary was away) never shortens a ban the primary holds.
          const held = bans.get(m.key);
          if (m.merge && held && held.until >= record.until) return false;
          bans.delete(m.key);
          bans.set(m.key, record);
          store.setBan(m.key, record, now);
          // Bounded: forgotten records go first, then the oldest.
          if (bans.size > maxKeys) {
            for (const [k, b] of bans) if (b.forgetAt <= now) bans.delete(k);
            while (bans.size > maxKeys) bans.delete(bans.keys().next().value as string);
          }
        }
        broadcast(m);
        return found;
      }
      case 'bans': {
        const out: Array<[string, BanRecord]> = [];
        for (const [k, b] of bans) if (b.forgetAt > now) out.push([k, b]);
        return out;
      }
      default:
        throw new Error(`unknown operation ${String(r.op)}`);
    }
  };

  const onMessage = (w: Worker, msg: unknown) => {
    const r = msg as Request;
    if (!r || r.tag !== TAG || typeof r.id !== 'number') return;
    let reply: Reply;
    try {
      reply = { tag: TAG, id: r.id, result: handle(w, r) };
    } catch (err) {
      reply = { tag: TAG, id: r.id, error: (err as Error).message };
    }
    if (w.isConnected()) w.send(reply, undefined, () => {});
  };
  // A worker that exits (or crashes) releases every connection it counted.
  const onExit = (w: Worker) => {
    const c = counts.get(w.id);
    if (!c) return;
    for (const key of [...c.keys()]) setCount(w, key, 0);
    counts.delete(w.id);
  };
  cluster.on('message', onMessage);
  cluster.on('exit', onExit);
  return {
    store,
    close() {
      cluster.off('message', onMessage);
      cluster.off('exit', onExit);
    },
  };
}
