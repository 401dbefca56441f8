import type { Socket } from 'node:net';
import {
  type Clock,
  type ConnectionControl,
  type PeerAddress,
  type Plugin,
  parseDuration,
  type Rejection,
  SockError,
  SockErrorCode,
  type Verdict,
  type Violation,
} from '@sock/core';
import { systemClock } from '@sock/core/internal';
import { type BanEvent, Bans, type UnbanEvent } from './bans.js';
import { Admission } from './guard-admission.js';
import { after, connKey, GUARDS_PLUGIN, type GuardContext, type GuardName } from './guard-context.js';
import { Datagrams, type Decision } from './guard-datagrams.js';
import { FrameRates, hasFrameRates } from './guard-frame-rates.js';
import { ProxyPreface, trustedMatcher } from './guard-proxy.js';
import { Timeouts } from './guard-timeouts.js';
import { addressKey } from './ip.js';
import type { IpPolicyStats } from './ip-policy.js';
import { type Duration, type GuardsPolicy, type ResolvedPolicy, resolvePolicy } from './policy.js';
import { GUARD_REASONS, GuardReason } from './reasons.js';
import {
  createMemoryStore,
  type GuardStore,
  type MaybePromise,
  type SharedStoreStats,
  type StoreStats,
} from './store.js';

export type { BanEvent, Decision, GuardName, UnbanEvent };
export { GUARD_REASONS, GUARDS_PLUGIN };

export interface GuardsOptions {
  /** Where per-key state lives. Default: a bounded in-memory store per the policy's `store` section. */
  store?: GuardStore;
  /**
   * Where guards read time for what outlives a connection: rate and strike tables, bans and their expiry.
   * Default the system clock. Per-connection deadlines (timeouts, PROXY header, pauses) run on the
   * server's clock, `conn.clock`; in tests give both the same virtual clock (`@sock/core/testing`).
   * (Replaces the `now` option of 0.x.)
   */
  clock?: Clock;
  /** A key was banned, here or on another node of a shared store (not in bans shadow mode). Wire a firewall here. */
  onBan?: (event: BanEvent) => void;
  /** A ban was lifted by `unban()`. Bans that simply end are not reported: `durationMs` said when. */
  onUnban?: (event: UnbanEvent) => void;
  /** Every decision `check()` makes about a datagram (connections report through core's observers). */
  onDecision?: (decision: Decision) => void;
  /** Failures that close nothing: a reload with a bad line, a ban that could not be stored. */
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
    /** Strikes and bans not applied because the ban would cover a `bans.neverBan` entry. */
    readonly skipped: number;
    /** Bans that could not be stored (reported through `onError`). */
    readonly storeFailures: number;
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
  readonly policy: { readonly reloads: number; readonly reloadErrors: number };
}

/** Plain numbers for a metrics adapter, computed synchronously (no addresses). */
export interface GuardsStats {
  keys: number;
  maxKeys: number;
  evictions: number;
  strikes: number;
  bansIssued: number;
  bansActive: number;
  banStoreFailures: number;
  store: {
    kind: 'memory' | 'cluster' | 'redis';
    healthy: boolean;
    fallbackDecisions: number;
    errors: number;
  };
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
  /**
   * Ban an address (an IPv6 address: its key, the /64 by default) or a CIDR range (no wider than /8 of
   * IPv4 or /32 of IPv6, else it throws) for `duration` (default: the escalating duration its offences
   * earn). Never shortens a longer ban in force. Closes the covered connections (`bans.closeConnections`).
   */
  ban(addressOrRange: string, duration?: Duration, reason?: string): MaybePromise<void>;
  /** Lift a ban and forget the key's strikes; resolves whether it was banned. */
  unban(addressOrRange: string): MaybePromise<boolean>;
  /** Whether a ban in force covers the address (or the whole range). */
  isBanned(addressOrRange: string): MaybePromise<boolean>;
  /** The key `address` is counted under (IPv4 as is, IPv6 masked to the policy's prefix). */
  keyOf(address: string): string | undefined;
  snapshot(): MaybePromise<GuardsSnapshot>;
  /** Synchronous counters for metrics. */
  stats(): GuardsStats;
  /**
   * Apply a whole new policy: validated and its IP lists read first; on any error the current policy stays
   * and the promise rejects. The store section is not re-applied (the store keeps its size).
   */
  update(policy: GuardsPolicy): Promise<void>;
  /** Re-read the IP list files now (they also reload on change). Rejects, keeping the old lists, on a bad line. */
  reload(): Promise<void>;
  /** Stop watching files. Connections are not touched. */
  close(): void;
  /** The policy in force. */
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

class GuardsEngine implements Guards, GuardContext {
  policy: ResolvedPolicy;
  readonly plugin: Plugin;
  readonly store: GuardStore;
  readonly clock: Clock;
  readonly bans: Bans;
  private readonly admission: Admission;
  private readonly rates: FrameRates;
  private readonly timeouts: Timeouts;
  private readonly proxy: ProxyPreface;
  private readonly datagrams: Datagrams;
  private readonly unwatch: (() => void) | undefined;
  /** What the plug-ins were built with: a reload may not need a hook they lack. */
  private readonly frameHook: boolean;
  private proxyHooks = false;
  private reloads = 0;
  private reloadErrors = 0;
  private readonly rejected: Record<string, number> = Object.create(null);
  private readonly reported: Record<string, number> = Object.create(null);

  constructor(
    policy: ResolvedPolicy,
    private readonly options: GuardsOptions,
  ) {
    this.policy = policy;
    this.clock = options.clock ?? systemClock;
    this.store = options.store ?? createMemoryStore(policy.store);
    this.bans = new Bans(
      this,
      { onBan: options.onBan, onUnban: options.onUnban },
      options.store !== undefined,
    );
    this.admission = new Admission(this);
    this.rates = new FrameRates(this);
    this.timeouts = new Timeouts(this);
    this.proxy = new ProxyPreface(this);
    this.datagrams = new Datagrams(this, this.admission, options.onDecision);
    this.frameHook = hasFrameRates(policy);
    this.plugin = this.createPlugin();
    // Bans made on other nodes of a shared store close connections here and reach this process's hooks.
    this.unwatch = this.store.watchBans?.({
      ban: (e) => this.bans.remoteBan(e),
      unban: (e) => this.options.onUnban?.(e),
    });
  }

  now(): number {
    return this.clock.now();
  }

  error(err: SockError): void {
    if (this.options.onError) this.options.onError(err);
    else process.emitWarning(err.message);
  }

  count(rejection: Rejection, closed: boolean): void {
    const table = closed && !rejection.shadow ? this.rejected : this.reported;
    table[rejection.reason] = (table[rejection.reason] ?? 0) + 1;
  }

  keyOf(address: string): string | undefined {
    return addressKey(address, this.policy.ipv6Prefix);
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
      close: (conn) => {
        this.timeouts.close(conn);
        this.admission.close(conn);
      },
    };
    // Only the hooks that do something: a pipeline without per-frame limits does no per-frame work.
    if (this.frameHook) plugin.frame = (conn, frame) => this.rates.frame(conn, frame);
    if (options.proxy ?? this.policy.proxy !== undefined) {
      if (!this.policy.proxy)
        throw new SockError(
          SockErrorCode.INVALID_OPTION,
          'createPlugin({ proxy: true }) needs a `proxy` section in the policy (proxy.trusted: the proxies to believe)',
        );
      this.proxyHooks = true;
      plugin.preface = (
        socket: Socket,
        conn: ConnectionControl,
      ): Promise<PeerAddress | Rejection | undefined> => this.proxy.preface(socket, conn);
    }
    return plugin;
  }

  private accept(conn: ConnectionControl): Verdict | Promise<Verdict> {
    const verdict = this.admission.accept(conn);
    return verdict instanceof Promise
      ? verdict.then((v) => this.admitted(conn, v))
      : this.admitted(conn, verdict);
  }

  /** Admission let the connection in (or only reported it): its deadlines start now. */
  private admitted(conn: ConnectionControl, verdict: Verdict): Verdict {
    if (!verdict || verdict.shadow) this.timeouts.start(conn);
    return verdict;
  }

  private violation(conn: ConnectionControl, v: Violation): void {
    this.count(v, v.closed);
    // A fault of our own side (core marks a throwing plug-in hook so) is never the peer's strike.
    if (v.shadow || (v as { fault?: string }).fault === 'server') return;
    const key = connKey(conn);
    // Closing already: a ban this strike earns must not close it a second time.
    if (v.closed && key !== undefined) this.bans.untrack(conn, key);
    // The peer's own address (not only its key): a ban narrowed to one IPv6 host needs it.
    void this.bans.strike(conn.remoteAddress, v.reason);
  }

  // ---- strikes and bans (the Bans module owns the rules) ----

  strike(address: string, reason: string): MaybePromise<void> {
    return this.bans.strike(address, reason);
  }

  ban(addressOrRange: string, duration?: Duration, reason = GuardReason.MANUAL): MaybePromise<void> {
    const ms = duration === undefined ? undefined : parseDuration(duration, 'ban duration');
    return this.bans.ban(addressOrRange, ms, reason);
  }

  unban(addressOrRange: string): MaybePromise<boolean> {
    return this.bans.unban(addressOrRange);
  }

  isBanned(addressOrRange: string): MaybePromise<boolean> {
    return this.bans.isBanned(addressOrRange);
  }

  check(address: string, bytes = 0): MaybePromise<Rejection | undefined> {
    return this.datagrams.check(address, bytes);
  }

  // ---- policy ----

  async update(input: GuardsPolicy): Promise<void> {
    try {
      const next = resolvePolicy(input);
      if (hasFrameRates(next) && !this.frameHook)
        throw new SockError(
          SockErrorCode.INVALID_OPTION,
          'the new policy sets message or byte rates, which the running plug-in was built without (no frame hook): restart to apply it',
          { reason: GuardReason.POLICY_INVALID },
        );
      if (next.proxy === undefined && this.proxyHooks)
        throw new SockError(
          SockErrorCode.INVALID_OPTION,
          'the new policy removes the proxy section while a listener reads PROXY headers: restart to apply it',
          { reason: GuardReason.POLICY_INVALID },
        );
      // Build everything first (IP list files are read here): nothing is swapped unless all of it worked.
      const ip = this.admission.prepare(next);
      const trusted = trustedMatcher(next);
      this.policy = next;
      this.admission.swap(ip);
      this.proxy.swap(trusted);
      this.bans.configure();
      this.reloads++;
    } catch (err) {
      this.reloadErrors++;
      throw err;
    }
  }

  reload(): Promise<void> {
    return this.admission.ip.reload();
  }

  snapshot(): MaybePromise<GuardsSnapshot> {
    const now = this.now();
    const stats = this.store.stats();
    return after(this.store.bannedKeys(now, 1000), (active) => ({
      connections: { active: this.admission.active, activeKeys: stats.activeKeys },
      rejected: { ...this.rejected },
      reported: { ...this.reported },
      strikes: this.bans.strikes,
      bans: {
        issued: this.bans.issued,
        skipped: this.bans.skipped,
        storeFailures: this.bans.storeFailures,
        active,
      },
      store: stats.tables,
      ...(stats.shared ? { shared: stats.shared } : {}),
      ip: this.admission.ip.stats(),
      policy: { reloads: this.reloads, reloadErrors: this.reloadErrors },
    }));
  }

  stats(): GuardsStats {
    const s = this.store.stats();
    let keys = 0;
    let evictions = 0;
    for (const t of Object.values(s.tables)) {
      keys = Math.max(keys, t.size);
      evictions += t.evictions;
    }
    const shared = s.shared;
    return {
      keys,
      maxKeys: this.policy.store.maxKeys,
      evictions,
      strikes: this.bans.strikes,
      bansIssued: this.bans.issued,
      bansActive: s.bansActive,
      banStoreFailures: this.bans.storeFailures,
      store: shared
        ? {
            kind: shared.backend,
            healthy: shared.state === 'shared',
            fallbackDecisions: shared.fallbackDecisions,
            errors: shared.errors,
          }
        : { kind: 'memory', healthy: true, fallbackDecisions: 0, errors: 0 },
    };
  }

  close(): void {
    this.unwatch?.();
    this.admission.ip.close();
  }
}
