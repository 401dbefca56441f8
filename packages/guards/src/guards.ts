import type { Socket } from 'node:net';
import {
  type CloseInfo,
  type ConnectionControl,
  type PeerAddress,
  type Plugin,
  parseDuration,
  type Rejection,
  SockError,
  SockErrorCode,
  type Stage,
  type Verdict,
  type Violation,
} from '@sock/core';
import { type CidrMatcher, createCidrMatcher } from './cidr-matcher.js';
import { addressKey, parseCidr } from './ip.js';
import { IpPolicy, type IpPolicyStats } from './ip-policy.js';
import {
  type Duration,
  type GuardsPolicy,
  type ResolvedPolicy,
  type ResolvedRate,
  resolvePolicy,
} from './policy.js';
import { parseProxyHeader } from './proxy-protocol.js';
import {
  type AcquireResult,
  createMemoryStore,
  type GuardStore,
  type MaybePromise,
  type SharedStoreStats,
  type StoreStats,
} from './store.js';

/** Which guard made a decision. */
export type GuardName = 'ip' | 'connections' | 'rates' | 'timeouts' | 'bans' | 'proxy';

/** The plug-in name core reports for every guards decision. */
export const GUARDS_PLUGIN = 'guards';

/** Reason codes guards decide with, and the guard each belongs to. */
export const GUARD_REASONS: Readonly<Record<string, GuardName>> = {
  'ip-denied': 'ip',
  'invalid-address': 'ip',
  banned: 'bans',
  'conn-limit': 'connections',
  'conn-limit-ip': 'connections',
  'table-full': 'connections',
  'rate-connections': 'rates',
  'rate-messages': 'rates',
  'rate-bytes': 'rates',
  'rate-messages-ip': 'rates',
  'rate-bytes-ip': 'rates',
  'rate-datagrams': 'rates',
  'rate-datagram-bytes': 'rates',
  throttled: 'rates',
  'handshake-timeout': 'timeouts',
  'idle-timeout': 'timeouts',
  lifetime: 'timeouts',
  'min-rate': 'timeouts',
  'proxy-untrusted': 'proxy',
  'proxy-invalid': 'proxy',
  'proxy-timeout': 'proxy',
  'store-unavailable': 'connections',
};

export interface BanEvent {
  /** The banned key: an IPv4 address or an IPv6 prefix (`2001:db8:1:2::/64`). */
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

/** A decision about a datagram (`check`) or a strike reported from outside. */
export interface Decision {
  readonly guard: GuardName;
  readonly reason: string;
  readonly key: string;
  readonly address: string;
  readonly stage: 'datagram';
  readonly shadow: boolean;
}

export interface GuardsOptions {
  /** Where per-key state lives. Default: a bounded in-memory store per the policy's `store` section. */
  store?: GuardStore;
  /** Clock in ms (tests inject one). Default `Date.now`. */
  now?: () => number;
  /** A key was banned (not called in bans shadow mode). Wire a firewall or a log here. */
  onBan?: (event: BanEvent) => void;
  /** A ban was lifted by `unban()`. Bans that simply end are not reported: `durationMs` said when. */
  onUnban?: (event: UnbanEvent) => void;
  /** Every decision `check()` makes about a datagram (connections report through core's observers). */
  onDecision?: (decision: Decision) => void;
  /** Failures that close nothing: an IP list reload with a bad line, a hook that threw. */
  onError?: (error: SockError) => void;
}

export interface PluginOptions {
  /** Read PROXY protocol headers on this plug-in's listeners. Default: whether the policy has `proxy`. */
  proxy?: boolean;
}

export interface GuardsSnapshot {
  readonly connections: { readonly active: number; readonly activeKeys: number };
  /** Decisions that closed a connection or dropped a datagram, by reason (core's own reasons included). */
  readonly rejected: Readonly<Record<string, number>>;
  /** Decisions only reported (shadow mode, throttling), by reason. */
  readonly reported: Readonly<Record<string, number>>;
  readonly strikes: number;
  readonly bans: {
    readonly issued: number;
    /** Bans not issued because the key is in `bans.neverBan`. */
    readonly skipped: number;
    /** Keys banned right now (at most 1000). */
    readonly active: ReadonlyArray<{
      readonly key: string;
      readonly until: number;
      readonly offences: number;
    }>;
  };
  readonly store: StoreStats['tables'];
  /** A shared store's health (Redis, cluster primary): fallbacks, failures, resyncs. */
  readonly shared?: SharedStoreStats;
  readonly ip: IpPolicyStats;
}

export interface Guards {
  /** The plug-in for `createServer({ plugins: [guards.plugin] })`. */
  readonly plugin: Plugin;
  /** Another plug-in sharing this state, e.g. for a second listener with (or without) PROXY protocol. */
  createPlugin(options?: PluginOptions): Plugin;
  /**
   * The same decisions for one datagram from `address` of `bytes` bytes (for @sock/udp): IP policy, bans,
   * datagrams/s and bytes/s per key. Undefined lets it through; a rejection (never a shadow one) drops it.
   * Strikes count as for connections. Synchronous with the memory store.
   */
  check(address: string, bytes?: number): MaybePromise<Rejection | undefined>;
  /** Count a violation against `address`'s key (e.g. a datagram that failed to decode). */
  strike(address: string, reason: string): MaybePromise<void>;
  /** Ban an address or key for `duration` (default: the escalating duration its offences earn). */
  ban(addressOrKey: string, duration?: Duration, reason?: string): MaybePromise<void>;
  /** Lift a ban and forget the key's strikes; resolves whether it was banned. */
  unban(addressOrKey: string): MaybePromise<boolean>;
  isBanned(addressOrKey: string): MaybePromise<boolean>;
  /** The key `address` is counted under (IPv4 as is, IPv6 masked to the policy's prefix). */
  keyOf(address: string): string | undefined;
  snapshot(): MaybePromise<GuardsSnapshot>;
  /** Re-read the IP list files now (they also reload on change). Rejects, keeping the old lists, on a bad line. */
  reload(): Promise<void>;
  /** Stop watching files. Connections are not touched. */
  close(): void;
  readonly policy: ResolvedPolicy;
}

/**
 * Guards for a sock server (and per datagram for @sock/udp): IP policy, connection limits, rate limits,
 * timeouts, strikes and bans, PROXY protocol, one validated policy. Throws a SockError naming the field
 * when the policy is invalid, or the file and line when an IP list file has a bad line.
 */
export function createGuards(policy: GuardsPolicy = {}, options: GuardsOptions = {}): Guards {
  return new GuardsEngine(resolvePolicy(policy), options);
}

const STATE = Symbol('sock.guards');

/** Per-connection state, in `conn.locals`: what was counted (so close releases exactly that), timers, rates. */
interface ConnState {
  readonly key: string;
  counted: boolean;
  keyCounted: boolean;
  timer: NodeJS.Timeout | undefined;
  firstFrameBy: number;
  lifetimeEnd: number;
  idleAt: number;
  lastBytes: number;
  rateAt: number;
  rateBytes: number;
  rateFrames: number;
  /** Shadow-mode timeouts already reported, by bit. */
  reportedTimeouts: number;
  tatMessages: number;
  tatBytes: number;
}

const T_HANDSHAKE = 1;
const T_IDLE = 2;
const T_LIFETIME = 4;
const T_MINRATE = 8;

function after<T, R>(value: MaybePromise<T>, next: (v: T) => MaybePromise<R>): MaybePromise<R> {
  return value instanceof Promise ? value.then(next) : next(value);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

class GuardsEngine implements Guards {
  readonly policy: ResolvedPolicy;
  readonly plugin: Plugin;
  private readonly store: GuardStore;
  private readonly now: () => number;
  private readonly ip: IpPolicy;
  private readonly neverBan: CidrMatcher<true>;
  private readonly trusted: CidrMatcher<true>;
  private readonly hasFrameHook: boolean;
  private readonly hasTimeouts: boolean;
  private readonly unwatch: (() => void) | undefined;
  private active = 0;
  private strikes = 0;
  private bansIssued = 0;
  private bansSkipped = 0;
  private readonly rejected: Record<string, number> = Object.create(null);
  private readonly reported: Record<string, number> = Object.create(null);

  constructor(
    policy: ResolvedPolicy,
    private readonly options: GuardsOptions,
  ) {
    this.policy = policy;
    this.now = options.now ?? Date.now;
    this.store = options.store ?? createMemoryStore(policy.store);
    this.ip = new IpPolicy(policy.ip, (err) => this.error(err));
    this.neverBan = createCidrMatcher(policy.bans.neverBan.map((cidr) => ({ cidr, value: true as const })));
    this.trusted = createCidrMatcher(
      (policy.proxy?.trusted ?? []).map((cidr) => ({ cidr, value: true as const })),
    );
    const r = policy.rates;
    this.hasFrameHook = !!(
      r.messagesPerConnection ||
      r.bytesPerConnection ||
      r.messagesPerKey ||
      r.bytesPerKey
    );
    const t = policy.timeouts;
    this.hasTimeouts = t.handshakeMs > 0 || t.idleMs > 0 || t.lifetimeMs > 0 || t.minRate !== undefined;
    this.plugin = this.createPlugin();
    // Bans made on other nodes of a shared store reach this process's hooks (and so its firewall).
    this.unwatch = this.store.watchBans?.({
      ban: (e) => {
        if (!policy.bans.shadow) this.options.onBan?.(e);
      },
      unban: (e) => this.options.onUnban?.(e),
    });
  }

  private error(err: SockError): void {
    if (this.options.onError) this.options.onError(err);
    else process.emitWarning(err.message);
  }

  keyOf(address: string): string | undefined {
    return addressKey(address, this.policy.ipv6Prefix);
  }

  /** An address or an existing key (`…/64`) as a key. */
  private normalizeKey(addressOrKey: string): string {
    const slash = addressOrKey.indexOf('/');
    if (slash < 0) return this.keyOf(addressOrKey) ?? addressOrKey;
    const cidr = parseCidr(addressOrKey);
    if (!cidr) return addressOrKey;
    return this.keyOf(addressOrKey.slice(0, slash)) ?? addressOrKey;
  }

  createPlugin(options: PluginOptions = {}): Plugin {
    const plugin: {
      name: string;
      preface?: Plugin['preface'];
      accept: NonNullable<Plugin['accept']>;
      frame?: Plugin['frame'];
      violation: NonNullable<Plugin['violation']>;
      close: NonNullable<Plugin['close']>;
    } = {
      name: GUARDS_PLUGIN,
      accept: (conn) => this.accept(conn),
      violation: (conn, v) => this.violation(conn, v),
      close: (conn, info) => this.close_(conn, info),
    };
    // Only the hooks that do something: a pipeline without per-frame limits does no per-frame work.
    if (this.hasFrameHook) plugin.frame = (conn, frame) => this.frame(conn, frame);
    if (options.proxy ?? this.policy.proxy !== undefined) {
      if (!this.policy.proxy)
        throw new TypeError('createPlugin({ proxy: true }) needs a `proxy` section in the policy');
      plugin.preface = (socket, conn) => this.preface(socket, conn);
    }
    return plugin;
  }

  // ---- counting and reporting ----

  private count(rejection: Rejection, closed: boolean): void {
    const table = closed && !rejection.shadow ? this.rejected : this.reported;
    table[rejection.reason] = (table[rejection.reason] ?? 0) + 1;
  }

  private rejection(
    guard: GuardName,
    reason: string,
    key: string,
    message: string,
    shadow: boolean,
  ): Rejection {
    return shadow
      ? { reason, key, message: `${guard}: ${message}`, shadow }
      : { reason, key, message: `${guard}: ${message}` };
  }

  private ipDenied(address: string): boolean {
    return (this.ip.hasRules || this.policy.ip.default === 'deny') && this.ip.check(address) === 'deny';
  }

  // ---- accept ----

  private accept(conn: ConnectionControl): Verdict | Promise<Verdict> {
    const p = this.policy;
    const address = conn.remoteAddress;
    const key = this.keyOf(address) ?? address;
    const state: ConnState = {
      key,
      counted: false,
      keyCounted: false,
      timer: undefined,
      firstFrameBy: 0,
      lifetimeEnd: 0,
      idleAt: 0,
      lastBytes: 0,
      rateAt: 0,
      rateBytes: 0,
      rateFrames: 0,
      reportedTimeouts: 0,
      tatMessages: 0,
      tatBytes: 0,
    };
    conn.locals.set(STATE, state);
    const now = this.now();

    // Bans first: a banned key is refused without earning more strikes (`banned` weighs 0).
    return after(this.store.getBan(key, now), (ban) => {
      if (ban && ban.until > now) {
        const wait = Math.ceil((ban.until - now) / 1000);
        const r = this.rejection('bans', 'banned', key, `${key} is banned for ${wait}s more`, p.bans.shadow);
        if (!r.shadow) return r;
        conn.report(r, 'accept', GUARDS_PLUGIN);
      }
      if (this.ipDenied(address)) {
        const r = this.rejection(
          'ip',
          'ip-denied',
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
        const r = this.rejection(
          'connections',
          'conn-limit',
          key,
          `${p.connections.max} connections open`,
          p.connections.shadow,
        );
        if (!r.shadow) return r;
        conn.report(r, 'accept', GUARDS_PLUGIN);
      }
      return this.acceptRate(conn, state, now);
    });
  }

  private acceptRate(conn: ConnectionControl, state: ConnState, now: number): Verdict | Promise<Verdict> {
    const p = this.policy;
    const rate = p.rates.connections;
    if (!rate) return this.acceptCount(conn, state);
    // A shared store takes the rate and counts the connection in one round trip.
    let acquired: AcquireResult | undefined;
    return after(
      this.store.admit
        ? after(this.store.admit(state.key, rate, p.connections.perKey, now), (a) => {
            acquired = a.acquired;
            return a.wait;
          })
        : this.store.take('connections', state.key, 1, rate.emissionMs, rate.burst, now),
      (wait): Verdict | Promise<Verdict> => {
        if (wait < 0) {
          if (p.store.onFull === 'reject')
            return this.rejection(
              'connections',
              'table-full',
              state.key,
              'rate table full (fail-closed)',
              false,
            );
        } else if (wait > 0) {
          const r = this.rejection(
            'rates',
            'rate-connections',
            state.key,
            `new connections from ${state.key} too fast (next in ${wait}ms)`,
            p.rates.shadow,
          );
          if (r.shadow) conn.report(r, 'accept', GUARDS_PLUGIN);
          else if (p.rates.onExceed === 'tarpit') return { ...r, tarpitMs: p.rates.tarpitMs };
          else if (p.rates.onExceed === 'pause' && wait <= p.rates.maxPauseMs) {
            // Shaping at accept: hold the (still paused) socket until the token is due, then take it.
            conn.report({ ...r, reason: 'throttled' }, 'accept', GUARDS_PLUGIN);
            return delay(wait).then(() => {
              if (conn.closing) return undefined;
              const again = this.store.take(
                'connections',
                state.key,
                1,
                rate.emissionMs,
                rate.burst,
                this.now(),
              );
              return after(again, (w): Verdict | Promise<Verdict> =>
                w > 0 ? r : this.acceptCount(conn, state),
              );
            });
          } else return r;
        }
        return this.acceptCount(conn, state, acquired);
      },
    );
  }

  private acceptCount(
    conn: ConnectionControl,
    state: ConnState,
    acquired?: AcquireResult,
  ): Verdict | Promise<Verdict> {
    const p = this.policy;
    const finish = (): Verdict => {
      if (this.hasTimeouts) this.startTimer(conn, state);
      return undefined;
    };
    if (p.connections.perKey === Number.POSITIVE_INFINITY) return finish();
    return after(acquired ?? this.store.acquire(state.key, p.connections.perKey), (result): Verdict => {
      if (result === 'ok') state.keyCounted = true;
      else if (result === 'limit') {
        const r = this.rejection(
          'connections',
          'conn-limit-ip',
          state.key,
          `${p.connections.perKey} connections open from ${state.key}`,
          p.connections.shadow,
        );
        if (!r.shadow) return r;
        conn.report(r, 'accept', GUARDS_PLUGIN);
      } else if (p.store.onFull === 'reject') {
        return this.rejection(
          'connections',
          'table-full',
          state.key,
          'connection count table full (fail-closed)',
          false,
        );
      }
      return finish();
    });
  }

  // ---- close ----

  private close_(conn: ConnectionControl, _info: CloseInfo): void {
    const state = conn.locals.get(STATE) as ConnState | undefined;
    if (!state) return;
    conn.locals.delete(STATE);
    if (state.timer) clearTimeout(state.timer);
    if (state.counted) this.active--;
    if (state.keyCounted) {
      const released = this.store.release(state.key);
      if (released instanceof Promise) released.catch((err) => this.error(toError(err, 'store release')));
    }
  }

  // ---- violations, strikes, bans ----

  private violation(conn: ConnectionControl, v: Violation): void {
    this.count(v, v.closed);
    if (v.shadow) return;
    const state = conn.locals.get(STATE) as ConnState | undefined;
    const key = state?.key ?? this.keyOf(conn.remoteAddress);
    if (key) void this.addStrikes(key, v.reason);
  }

  private addStrikes(key: string, reason: string): MaybePromise<void> {
    const weight = this.policy.strikes.weights[reason] ?? 1;
    if (weight <= 0) return;
    this.strikes += weight;
    const now = this.now();
    const s = this.policy.strikes;
    return after(this.store.strike(key, weight, s.windowMs, now), (total) => {
      if (total >= s.threshold) return this.banKey(key, reason, undefined, now);
    });
  }

  strike(address: string, reason: string): MaybePromise<void> {
    const key = this.normalizeKey(address);
    return this.addStrikes(key, reason);
  }

  private banKey(
    key: string,
    reason: string,
    durationMs: number | undefined,
    now: number,
  ): MaybePromise<void> {
    const b = this.policy.bans;
    const network = key.includes('/') ? key.slice(0, key.indexOf('/')) : key;
    if (this.neverBan.lookup(network)) {
      this.bansSkipped++;
      return;
    }
    return after(this.store.clearStrikes(key), () =>
      after(this.store.getBan(key, now), (previous) => {
        const offences = (previous?.offences ?? 0) + 1;
        const ms = durationMs ?? Math.min(b.maxMs, b.durationMs * b.factor ** (offences - 1));
        const until = now + ms;
        return after(
          this.store.setBan(key, { until, offences, forgetAt: until + b.forgetMs }, now, reason),
          (stored) => {
            if (!stored) {
              this.count({ reason: 'table-full' }, false);
              return;
            }
            this.bansIssued++;
            if (!b.shadow) this.options.onBan?.({ key, durationMs: ms, reason, offences, until });
          },
        );
      }),
    );
  }

  ban(addressOrKey: string, duration?: Duration, reason = 'manual'): MaybePromise<void> {
    const ms = duration === undefined ? undefined : parseDuration(duration, 'ban duration');
    const key = this.normalizeKey(addressOrKey);
    const now = this.now();
    // Manual bans respect neverBan like strike bans: an allowlisted key is never banned.
    return this.banKey(key, reason, ms, now);
  }

  unban(addressOrKey: string): MaybePromise<boolean> {
    const key = this.normalizeKey(addressOrKey);
    const now = this.now();
    return after(this.store.getBan(key, now), (ban) =>
      after(this.store.clearStrikes(key), () =>
        after(this.store.deleteBan(key), (existed) => {
          const wasBanned = existed && ban !== undefined && ban.until > now;
          if (wasBanned) this.options.onUnban?.({ key, reason: 'manual', offences: ban.offences });
          return wasBanned;
        }),
      ),
    );
  }

  isBanned(addressOrKey: string): MaybePromise<boolean> {
    const now = this.now();
    return after(
      this.store.getBan(this.normalizeKey(addressOrKey), now),
      (ban) => ban !== undefined && ban.until > now,
    );
  }

  // ---- frames: message and byte rates ----

  private frame(conn: ConnectionControl, frame: Buffer): Verdict {
    const state = conn.locals.get(STATE) as ConnState | undefined;
    if (!state) return undefined;
    const r = this.policy.rates;
    const now = this.now();
    const m = r.messagesPerConnection;
    if (m) {
      const wait = this.localTake(state, 'tatMessages', 1, m, now);
      if (wait > 0) return this.exceeded(conn, state, 'rate-messages', wait);
    }
    const b = r.bytesPerConnection;
    if (b) {
      const wait = this.localTake(state, 'tatBytes', frame.length, b, now);
      if (wait > 0) return this.exceeded(conn, state, 'rate-bytes', wait);
    }
    if (r.messagesPerKey) {
      const v = this.keyTake(conn, state, 'messages', 1, r.messagesPerKey, now, 'rate-messages-ip');
      if (v) return v;
    }
    if (r.bytesPerKey) {
      const v = this.keyTake(conn, state, 'bytes', frame.length, r.bytesPerKey, now, 'rate-bytes-ip');
      if (v) return v;
    }
    return undefined;
  }

  /** GCRA on the connection's own state. The frame is already read, so it is always charged. */
  private localTake(
    state: ConnState,
    field: 'tatMessages' | 'tatBytes',
    cost: number,
    rate: ResolvedRate,
    now: number,
  ): number {
    const tat = Math.max(state[field], now) + cost * rate.emissionMs;
    state[field] = tat;
    return tat - now - rate.burst * rate.emissionMs;
  }

  private keyTake(
    conn: ConnectionControl,
    state: ConnState,
    table: string,
    cost: number,
    rate: ResolvedRate,
    now: number,
    reason: string,
  ): Verdict {
    const wait = this.store.take(table, state.key, cost, rate.emissionMs, rate.burst, now);
    if (wait instanceof Promise) {
      // A shared store answers later: act on the connection then (one frame late).
      wait.then(
        (w) => {
          if (w > 0 && !conn.closing) {
            const v = this.exceeded(conn, state, reason, w);
            if (v) conn.reject(v, 'frame', GUARDS_PLUGIN);
          }
        },
        (err) => this.error(toError(err, 'store take')),
      );
      return undefined;
    }
    return wait > 0 ? this.exceeded(conn, state, reason, wait) : undefined;
  }

  private exceeded(conn: ConnectionControl, state: ConnState, reason: string, waitMs: number): Verdict {
    const r = this.policy.rates;
    const wait = Math.ceil(waitMs);
    const rejection = this.rejection(
      'rates',
      reason,
      state.key,
      `over the limit; tokens due in ${wait}ms`,
      r.shadow,
    );
    if (rejection.shadow) {
      conn.report(rejection, 'frame', GUARDS_PLUGIN);
      return undefined;
    }
    if (r.onExceed === 'tarpit') return { ...rejection, tarpitMs: r.tarpitMs };
    if (r.onExceed === 'pause' && wait <= r.maxPauseMs) {
      conn.pauseReading(wait);
      conn.report(
        { ...rejection, reason: 'throttled', message: `rates: ${reason}, reading paused ${wait}ms` },
        'frame',
        GUARDS_PLUGIN,
      );
      return undefined;
    }
    return rejection;
  }

  // ---- timeouts: one re-armed timer per connection ----

  private startTimer(conn: ConnectionControl, state: ConnState): void {
    const t = this.policy.timeouts;
    const now = this.now();
    // Deadlines count from accept on the guards' clock (`openedAt` is core's; the PROXY header, before
    // accept, has its own deadline).
    if (t.handshakeMs > 0) state.firstFrameBy = now + t.handshakeMs;
    if (t.lifetimeMs > 0) state.lifetimeEnd = now + t.lifetimeMs;
    if (t.idleMs > 0) state.idleAt = now + t.idleMs;
    state.lastBytes = conn.stats.bytesIn;
    state.rateAt = now;
    state.rateBytes = conn.stats.bytesIn;
    state.rateFrames = conn.stats.framesIn;
    this.arm(conn, state, now);
  }

  private arm(conn: ConnectionControl, state: ConnState, now: number): void {
    const t = this.policy.timeouts;
    let next = Number.POSITIVE_INFINITY;
    const off = state.reportedTimeouts;
    if (state.firstFrameBy > 0 && !(off & T_HANDSHAKE) && conn.stats.framesIn === 0)
      next = state.firstFrameBy;
    if (state.lifetimeEnd > 0 && !(off & T_LIFETIME)) next = Math.min(next, state.lifetimeEnd);
    if (state.idleAt > 0 && !(off & T_IDLE)) next = Math.min(next, state.idleAt);
    if (t.minRate && !(off & T_MINRATE)) next = Math.min(next, state.rateAt + t.minRate.graceMs);
    if (next === Number.POSITIVE_INFINITY) return;
    const timer = setTimeout(() => this.onTimer(conn, state), Math.max(0, next - now));
    timer.unref();
    state.timer = timer;
  }

  /** The deadline check: reads the connection's counters once, here, never per read. */
  private onTimer(conn: ConnectionControl, state: ConnState): void {
    state.timer = undefined;
    if (conn.closing) return;
    const t = this.policy.timeouts;
    const now = this.now();
    const { bytesIn, framesIn } = conn.stats;
    const off = state.reportedTimeouts;
    if (state.lifetimeEnd > 0 && !(off & T_LIFETIME) && now >= state.lifetimeEnd) {
      if (this.timeout(conn, state, T_LIFETIME, 'lifetime', 'frame', `open longer than ${t.lifetimeMs}ms`))
        return;
    }
    if (state.firstFrameBy > 0 && !(off & T_HANDSHAKE) && framesIn === 0 && now >= state.firstFrameBy) {
      if (
        this.timeout(
          conn,
          state,
          T_HANDSHAKE,
          'handshake-timeout',
          'handshake',
          `no complete frame within ${t.handshakeMs}ms`,
        )
      )
        return;
    }
    if (state.idleAt > 0) {
      if (bytesIn !== state.lastBytes) {
        state.lastBytes = bytesIn;
        state.idleAt = now + t.idleMs;
      } else if (!(off & T_IDLE) && now >= state.idleAt) {
        if (this.timeout(conn, state, T_IDLE, 'idle-timeout', 'frame', `nothing received for ${t.idleMs}ms`))
          return;
      }
    }
    const mr = t.minRate;
    if (mr && !(off & T_MINRATE) && now >= state.rateAt + mr.graceMs) {
      const elapsed = now - state.rateAt;
      const bytes = bytesIn - state.rateBytes;
      // Bytes arrived but no frame completed, slower than the minimum: a frame being trickled.
      if (framesIn === state.rateFrames && bytes > 0 && (bytes * 1000) / elapsed < mr.bytesPerSecond) {
        const message = `${bytes} bytes in ${elapsed}ms without completing a frame (minimum ${mr.bytesPerSecond} B/s)`;
        if (this.timeout(conn, state, T_MINRATE, 'min-rate', 'frame', message)) return;
      }
      state.rateAt = now;
      state.rateBytes = bytesIn;
      state.rateFrames = framesIn;
    }
    this.arm(conn, state, now);
  }

  /** Close for a timeout (true), or in shadow mode report it once and stop checking it (false). */
  private timeout(
    conn: ConnectionControl,
    state: ConnState,
    bit: number,
    reason: string,
    stage: Stage,
    message: string,
  ): boolean {
    const r = this.rejection('timeouts', reason, state.key, message, this.policy.timeouts.shadow);
    if (r.shadow) {
      state.reportedTimeouts |= bit;
      conn.report(r, stage, GUARDS_PLUGIN);
      return false;
    }
    conn.reject(r, stage, GUARDS_PLUGIN);
    return true;
  }

  // ---- PROXY protocol ----

  private preface(socket: Socket, conn: ConnectionControl): Promise<PeerAddress | Rejection | undefined> {
    const proxy = this.policy.proxy!;
    if (proxy.ports && !proxy.ports.includes(conn.localPort)) return Promise.resolve(undefined);
    const peer = conn.socketAddress;
    const key = this.keyOf(peer) ?? peer;
    const fail = (reason: string, message: string): Rejection => {
      const r = { reason, key, message: `proxy: ${message}` };
      // Preface rejections reach no violation hook (accept was not entered): count and strike here,
      // only untrusted peers: a trusted proxy relaying a broken client must not earn the ban.
      this.count(r, true);
      if (reason === 'proxy-untrusted') void this.addStrikes(key, reason);
      return r;
    };
    if (!this.trusted.lookup(peer)) {
      return Promise.resolve(fail('proxy-untrusted', `${peer} is not a trusted proxy`));
    }
    return new Promise((resolve) => {
      let buffered: Buffer = Buffer.alloc(0);
      let done = false;
      const finish = (result: PeerAddress | Rejection | undefined) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        socket.pause();
        socket.off('data', onData);
        socket.off('end', onEnd);
        socket.off('close', onEnd);
        resolve(result);
      };
      const onData = (chunk: Buffer) => {
        buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
        const header = parseProxyHeader(buffered, proxy.maxBytes);
        if (header.status === 'incomplete') {
          if (buffered.length >= proxy.maxBytes)
            finish(fail('proxy-invalid', `no complete header in ${proxy.maxBytes} bytes`));
          return;
        }
        if (header.status === 'invalid') {
          finish(fail('proxy-invalid', header.message));
          return;
        }
        finish(header.source ? { address: header.source.address, port: header.source.port } : undefined);
        // What followed the header is the client's stream: give it back, the socket stays paused.
        if (buffered.length > header.length) socket.unshift(buffered.subarray(header.length));
      };
      const onEnd = () => finish(fail('proxy-invalid', 'closed before a complete header'));
      const timer = setTimeout(
        () => finish(fail('proxy-timeout', `no complete header within ${proxy.timeoutMs}ms`)),
        proxy.timeoutMs,
      );
      timer.unref();
      socket.on('data', onData);
      socket.on('end', onEnd);
      socket.on('close', onEnd);
      socket.resume();
    });
  }

  // ---- datagrams ----

  check(address: string, bytes = 0): MaybePromise<Rejection | undefined> {
    const p = this.policy;
    const key = this.keyOf(address);
    if (key === undefined)
      return this.decide('ip', 'invalid-address', address, address, 'not an IP address', false);
    const now = this.now();
    return after(this.store.getBan(key, now), (ban) => {
      if (ban && ban.until > now) {
        const r = this.decide('bans', 'banned', key, address, `${key} is banned`, p.bans.shadow);
        if (r) return r;
      }
      if (this.ipDenied(address)) {
        const r = this.decide(
          'ip',
          'ip-denied',
          key,
          address,
          `${address} is denied by the IP policy`,
          p.ip.shadow,
        );
        if (r) return r;
      }
      const dg = p.rates.datagramsPerKey;
      return after(dg ? this.store.take('datagrams', key, 1, dg.emissionMs, dg.burst, now) : 0, (wait) => {
        if (wait !== 0) {
          const r = this.datagramLimit(wait, 'rate-datagrams', key, address);
          if (r) return r;
        }
        const db = p.rates.datagramBytesPerKey;
        if (!db || bytes <= 0) return undefined;
        return after(this.store.take('datagram-bytes', key, bytes, db.emissionMs, db.burst, now), (w) =>
          w === 0 ? undefined : this.datagramLimit(w, 'rate-datagram-bytes', key, address),
        );
      });
    });
  }

  private datagramLimit(wait: number, reason: string, key: string, address: string): Rejection | undefined {
    if (wait < 0) {
      return this.policy.store.onFull === 'reject'
        ? this.decide('connections', 'table-full', key, address, 'rate table full (fail-closed)', false)
        : undefined;
    }
    return this.decide(
      'rates',
      reason,
      key,
      address,
      `over the limit; tokens due in ${Math.ceil(wait)}ms`,
      this.policy.rates.shadow,
    );
  }

  /** Count, report and strike a datagram decision; the rejection to return, or undefined in shadow mode. */
  private decide(
    guard: GuardName,
    reason: string,
    key: string,
    address: string,
    message: string,
    shadow: boolean,
  ): Rejection | undefined {
    const r = this.rejection(guard, reason, key, message, shadow);
    this.count(r, true);
    this.options.onDecision?.({ guard, reason, key, address, stage: 'datagram', shadow });
    if (shadow) return undefined;
    void this.addStrikes(key, reason);
    return r;
  }

  // ---- snapshot and lifecycle ----

  snapshot(): MaybePromise<GuardsSnapshot> {
    const now = this.now();
    const stats = this.store.stats();
    return after(this.store.bannedKeys(now, 1000), (active) => ({
      connections: { active: this.active, activeKeys: stats.activeKeys },
      rejected: { ...this.rejected },
      reported: { ...this.reported },
      strikes: this.strikes,
      bans: { issued: this.bansIssued, skipped: this.bansSkipped, active },
      store: stats.tables,
      ...(stats.shared ? { shared: stats.shared } : {}),
      ip: this.ip.stats(),
    }));
  }

  reload(): Promise<void> {
    return this.ip.reload();
  }

  close(): void {
    this.unwatch?.();
    this.ip.close();
  }
}

function toError(err: unknown, context: string): SockError {
  if (SockError.isInstance(err)) return err;
  return new SockError(SockErrorCode.SOCKET_ERROR, `${context}: ${(err as Error)?.message ?? String(err)}`, {
    cause: err,
  });
}
