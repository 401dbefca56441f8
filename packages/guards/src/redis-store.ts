import { randomBytes } from 'node:crypto';
import { parseDuration, SockError, SockErrorCode } from '@sock/core';
import type { BanOutcome, BanRule, StrikeOutcome } from './ban-rules.js';
import type { Duration } from './policy.js';
import {
  ADMIT,
  BAN,
  PUT_BAN,
  RELEASE,
  redisBanKeys,
  redisKeys,
  STRIKE_BAN,
  SYNC,
  TAKE,
} from './redis-scripts.js';
import {
  type Backend,
  type BackendEvents,
  type BanMessage,
  type SharedGuardStore,
  type SharedGuardStoreOptions,
  SharedStore,
} from './shared-store.js';
import type { AcquireResult, BanRecord } from './store.js';

/**
 * Connection options for the client the store creates (ioredis `RedisOptions`: `host`, `port`, `path`,
 * `username`, `password`, `db`, `tls`, …). The store always sets `enableOfflineQueue: false`,
 * `maxRetriesPerRequest: 1` and a `commandTimeout`, so nothing queues while Redis is away.
 */
export type RedisConnectionOptions = Record<string, unknown>;

/** The subset of an ioredis `Redis` (or `Cluster`) client the store uses. */
export interface RedisClientLike {
  readonly status: string;
}

export interface RedisStoreOptions extends SharedGuardStoreOptions {
  /**
   * Where Redis is: connection options (the store loads ioredis and creates its clients), or a Redis URL
   * (`redis://127.0.0.1:6379/0`). Ignored when `client` is given.
   */
  redis?: RedisConnectionOptions | string;
  /**
   * An ioredis `Redis` or `Cluster` client of your own (create it with `enableOfflineQueue: false`). The
   * store adds its commands, and `duplicate()`s it once for the ban subscription. You close it.
   */
  client?: RedisClientLike;
  /** Prefix of every key and of the ban channel. Default `sock:`. */
  prefix?: string;
  /**
   * Open-connection counts are leases this long, renewed by their node every third of it: if a process
   * dies, its counts vanish after this. Default 30 s.
   */
  lease?: Duration;
  /** Bans made while Redis is away, kept to write when it returns. Default 10,000. */
  maxPendingBans?: number;
  /** Resolve only once Redis answered and the bans are loaded; otherwise start in fallback. Default true. */
  waitForRedis?: boolean;
}

/**
 * A guards store in Redis: share it between every process and host that guards the same service.
 * `close()` unsubscribes and closes the clients the store created (not a `client` you gave it).
 */
export type RedisStore = SharedGuardStore;

// ioredis' command methods added by defineCommand, as the store calls them.
interface Commands {
  status: string;
  defineCommand(name: string, def: { numberOfKeys: number; lua: string }): void;
  duplicate(options?: Record<string, unknown>): Commands;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  off(event: string, listener: (...args: unknown[]) => void): unknown;
  subscribe(channel: string): Promise<unknown>;
  hscan(key: string, cursor: string, ...args: Array<string | number>): Promise<[string, string[]]>;
  del(key: string): Promise<number>;
  get(key: string): Promise<string | null>;
  set(key: string, value: string, nx: 'NX'): Promise<unknown>;
  pipeline(): Pipeline;
  quit(): Promise<unknown>;
  disconnect(): void;
  sockAdmit(...args: Array<string | number>): Promise<[number, number]>;
  sockTake(...args: Array<string | number>): Promise<number>;
  sockRelease(...args: Array<string | number>): Promise<number>;
  sockStrikeBan(...args: Array<string | number>): Promise<number[]>;
  sockPutBan(...args: Array<string | number>): Promise<number[]>;
  sockBan(...args: Array<string | number>): Promise<number>;
}

interface Pipeline {
  sockSync(...args: Array<string | number>): Pipeline;
  exec(): Promise<Array<[Error | null, unknown]> | null>;
}

const ACQUIRED: Array<AcquireResult | undefined> = [undefined, 'ok', 'limit'];

/**
 * Guards' state in Redis (ioredis, an optional peer dependency loaded only here): connection counts,
 * rate buckets, strikes and bans, each decision one Lua script in one round trip (accept = connection rate
 * and per-key count together). Bans are mirrored in every process and broadcast over pub/sub, so a ban
 * check never waits for Redis and a ban reaches every node in about one round trip; every (re)connection
 * reloads them all. While Redis is down or slow, `onStoreError` decides: the local memory store (fail-open)
 * or `store-unavailable` (fail-closed); Redis is used again as soon as it returns.
 */
export async function createRedisStore(options: RedisStoreOptions): Promise<RedisStore> {
  const timeout = options.timeout === undefined ? 50 : parseDuration(options.timeout, 'timeout');
  const lease = options.lease === undefined ? 30_000 : parseDuration(options.lease, 'lease');
  const prefix = options.prefix ?? 'sock:';
  const node = randomBytes(8).toString('hex');
  const store = new SharedStore(
    {
      onStoreError: options.onStoreError,
      timeout,
      fallback: options.fallback,
      maxPendingBans: options.maxPendingBans,
      onError: options.onError,
      clock: options.clock,
      renewMs: Math.max(10, Math.floor(lease / 3)),
    },
    node,
  );
  let client: Commands;
  let own = false;
  if (options.client) client = options.client as unknown as Commands;
  else {
    if (options.redis === undefined)
      throw new SockError(
        SockErrorCode.INVALID_OPTION,
        'createRedisStore needs `redis` (options or URL) or `client`',
      );
    const Redis = await loadIoredis();
    const base = {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: Math.max(timeout * 4, 1000),
      connectTimeout: 2000,
      lazyConnect: false,
      retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 5), 1000),
    };
    client =
      typeof options.redis === 'string'
        ? (new Redis(options.redis, base) as Commands)
        : (new Redis({ ...options.redis, ...base }) as Commands);
    own = true;
  }
  const backend = new RedisBackend(client, own, prefix, node, lease, store.events);
  store.attach(backend);
  backend.start();
  const api = store as unknown as RedisStore;
  if (options.waitForRedis !== false) {
    try {
      await store.ready({ signal: options.signal });
    } catch (err) {
      await store.close();
      throw err;
    }
  }
  return api;
}

async function loadIoredis(): Promise<new (...args: unknown[]) => unknown> {
  try {
    const mod = (await import('ioredis')) as unknown as { default?: unknown; Redis?: unknown };
    return (mod.Redis ?? mod.default) as new (
      ...args: unknown[]
    ) => unknown;
  } catch (err) {
    throw new SockError(
      SockErrorCode.INVALID_OPTION,
      'createRedisStore needs the optional peer dependency ioredis (^5): install it next to @sock/guards',
      { cause: err },
    );
  }
}

class RedisBackend implements Backend {
  readonly kind = 'redis' as const;
  private subscriber: Commands | undefined;
  private readonly bans: ReturnType<typeof redisBanKeys>;
  private closed = false;
  private wasReady = false;
  private subscribed = false;

  constructor(
    private readonly client: Commands,
    private readonly own: boolean,
    private readonly prefix: string,
    private readonly node: string,
    private readonly lease: number,
    private readonly events: BackendEvents,
  ) {
    this.bans = redisBanKeys(prefix);
    client.defineCommand('sockAdmit', { numberOfKeys: 2, lua: ADMIT });
    client.defineCommand('sockTake', { numberOfKeys: 1, lua: TAKE });
    client.defineCommand('sockRelease', { numberOfKeys: 1, lua: RELEASE });
    client.defineCommand('sockSync', { numberOfKeys: 1, lua: SYNC });
    client.defineCommand('sockStrikeBan', { numberOfKeys: 3, lua: STRIKE_BAN });
    client.defineCommand('sockPutBan', { numberOfKeys: 2, lua: PUT_BAN });
    client.defineCommand('sockBan', { numberOfKeys: 2, lua: BAN });
  }

  get ready(): boolean {
    return this.client.status === 'ready' && this.subscribed && this.subscriber?.status === 'ready';
  }

  private readonly onError = (err: unknown) => this.events.error(err);
  private readonly onStatus = () => {
    if (this.closed) return;
    const ready = this.ready;
    if (ready && !this.wasReady) this.events.up();
    else if (!ready && this.wasReady) this.events.down();
    this.wasReady = ready;
  };

  start(): void {
    // The subscriber resubscribes itself (below), so ioredis must not try to before it is ready.
    const sub = this.client.duplicate({ autoResubscribe: false });
    this.subscriber = sub;
    for (const c of [this.client, sub]) {
      c.on('error', this.onError);
      for (const e of ['ready', 'close', 'end', 'reconnecting']) c.on(e, this.onStatus);
    }
    // ioredis re-subscribes by itself after a reconnection.
    sub.on('message', (channel: unknown, text: unknown) => {
      if (channel !== this.bans.channel) return;
      try {
        this.events.message(JSON.parse(String(text)) as BanMessage);
      } catch (err) {
        this.events.error(err);
      }
    });
    // Subscribe on every (re)connection of the subscriber: without an offline queue nothing waits.
    sub.on('ready', () => {
      sub.subscribe(this.bans.channel).then(() => {
        this.subscribed = true;
        this.onStatus();
      }, this.onError);
    });
    sub.on('close', () => {
      this.subscribed = false;
    });
    this.onStatus();
  }

  async admit(key: string, emissionMs: number, burst: number, perKey: number) {
    const k = redisKeys(this.prefix, key);
    const [wait, acquired] = await this.client.sockAdmit(
      k.rate('connections'),
      k.conns,
      this.node,
      emissionMs,
      burst,
      perKey,
      this.lease,
    );
    const a = ACQUIRED[acquired];
    return a === undefined ? { wait } : { wait, acquired: a };
  }

  take(table: string, key: string, cost: number, emissionMs: number, burst: number): Promise<number> {
    return this.client.sockTake(redisKeys(this.prefix, key).rate(table), cost, emissionMs, burst);
  }

  async release(key: string): Promise<void> {
    await this.client.sockRelease(redisKeys(this.prefix, key).conns, this.node, this.lease);
  }

  async sync(entries: ReadonlyArray<readonly [string, number]>): Promise<void> {
    // One pipeline, split in chunks; on a Cluster ioredis sends each slot's part to its node.
    for (let i = 0; i < entries.length; i += 1000) {
      const p = this.client.pipeline();
      for (const [key, n] of entries.slice(i, i + 1000))
        p.sockSync(redisKeys(this.prefix, key).conns, this.node, n, this.lease);
      const results = await p.exec();
      const failed = results?.find(([err]) => err);
      if (failed) throw failed[0];
    }
  }

  async strikeBan(
    strikeKey: string,
    banKey: string,
    weight: number,
    rule: BanRule,
    reason: string,
  ): Promise<StrikeOutcome> {
    const [state, strikes, until, offences, forgetAt] = await this.client.sockStrikeBan(
      this.bans.strikes(strikeKey),
      this.bans.records,
      this.bans.index,
      banKey,
      weight,
      Math.max(1, Math.ceil(rule.windowMs)),
      rule.threshold,
      ...this.banTail(rule, reason),
    );
    if (state === 2) return { strikes: 0, alreadyBanned: true };
    if (state === 0) return { strikes: strikes! };
    return {
      strikes: strikes!,
      ban: { until: until!, offences: offences!, forgetAt: forgetAt! },
      stored: true,
    };
  }

  async putBan(
    key: string,
    durationMs: number | undefined,
    rule: BanRule,
    reason: string,
  ): Promise<BanOutcome> {
    const [changed, until, offences, forgetAt] = await this.client.sockPutBan(
      this.bans.records,
      this.bans.index,
      key,
      durationMs === undefined ? '' : Math.round(durationMs),
      ...this.banTail(rule, reason),
    );
    return {
      record: { until: until!, offences: offences!, forgetAt: forgetAt! },
      changed: changed === 1,
      stored: true,
    };
  }

  /** The arguments both ban scripts end with, in their order: the ban rule, where to announce, who and why. */
  private banTail(rule: BanRule, reason: string): Array<string | number> {
    return [rule.durationMs, rule.factor, rule.maxMs, rule.forgetMs, this.bans.channel, this.node, reason];
  }

  async clearStrikes(key: string): Promise<void> {
    await this.client.del(this.bans.strikes(key));
  }

  async publish(m: BanMessage): Promise<boolean> {
    const found = await this.client.sockBan(
      this.bans.records,
      this.bans.index,
      m.key,
      m.deleted ? '' : String(m.until),
      m.deleted ? '' : String(m.offences),
      m.deleted ? '' : String(m.forgetAt),
      this.bans.channel,
      JSON.stringify(m),
      m.merge ? '1' : '0',
    );
    return found === 1;
  }

  async epoch(): Promise<string> {
    await this.client.set(this.bans.epoch, randomBytes(8).toString('hex'), 'NX');
    return (await this.client.get(this.bans.epoch)) ?? '';
  }

  async loadBans(): Promise<Array<[string, BanRecord]>> {
    const out: Array<[string, BanRecord]> = [];
    let cursor = '0';
    do {
      const [next, fields] = await this.client.hscan(this.bans.records, cursor, 'COUNT', 1000);
      for (let i = 0; i + 1 < fields.length; i += 2) {
        const [until, offences, forgetAt] = fields[i + 1]!.split(':').map(Number);
        if (until === undefined || offences === undefined || forgetAt === undefined) continue;
        out.push([fields[i]!, { until, offences, forgetAt }]);
      }
      cursor = next;
    } while (cursor !== '0');
    return out;
  }

  async close(): Promise<void> {
    this.closed = true;
    const sub = this.subscriber;
    this.client.off('error', this.onError);
    for (const e of ['ready', 'close', 'end', 'reconnecting']) this.client.off(e, this.onStatus);
    // The subscriber is always ours; the main client only when we made it.
    if (sub) sub.disconnect();
    if (this.own) {
      await this.client.quit().catch(() => this.client.disconnect());
    }
  }
}
