import { readFile } from 'node:fs/promises';
import { dirname, extname, resolve } from 'node:path';
import { parseDuration, SockError, SockErrorCode, type SockIssue } from '@sock/core';
import { resolveBans, resolveStrikes } from './bans.js';
import { resolveConnections, resolveIp } from './guard-admission.js';
import { resolveRates } from './guard-frame-rates.js';
import { resolveProxy } from './guard-proxy.js';
import { resolveTimeouts } from './guard-timeouts.js';
import { parseCidr } from './ip.js';
import type { OnFull } from './lru-table.js';
import { GuardReason } from './reasons.js';

/** Milliseconds, or a string such as `500ms`, `10s`, `5m`, `1h`, `1d` (core's `parseDuration`). */
export type Duration = number | string;

/** `rate` units per `per` (default `1s`), with bursts of up to `burst` units (default `rate`). */
export interface RateLimit {
  rate: number;
  per?: Duration;
  burst?: number;
}

/**
 * What to do when a rate is exceeded: `close` the connection, `tarpit` it (hold it open and paused for
 * `tarpit`, then close: the client's retry loop slows down), or `pause` reading until the tokens return
 * (traffic shaping; a wait longer than `maxPause` closes instead).
 */
export type ExceedAction = 'close' | 'tarpit' | 'pause';

/**
 * One policy for every guard; each section may be omitted (safe defaults apply) or set to `false` where
 * noted to turn that guard off. The same object may come from a JSON or YAML file (`loadPolicyFile`).
 */
export interface GuardsPolicy {
  /** IPv6 peers are counted per prefix of this many bits (an IPv6 user holds a /64 or more). Default 64. */
  ipv6Prefix?: number;
  ip?: IpPolicyOptions;
  connections?: ConnectionLimits;
  rates?: RateLimits;
  timeouts?: TimeoutOptions;
  strikes?: StrikeOptions;
  bans?: BanOptions;
  /** PROXY protocol v1/v2 (HAProxy). Off by default: never sniffed, only on listeners that enable it. */
  proxy?: ProxyOptions | false;
  store?: StoreOptions;
}

export interface IpPolicyOptions {
  /** What an address no rule covers gets. Default `allow`. */
  default?: 'allow' | 'deny';
  /** Addresses and CIDRs; the most specific rule wins, `deny` on a tie. */
  allow?: string[];
  deny?: string[];
  /** Files of one address or CIDR per line, `#` comments. Reloaded when they change. */
  allowFiles?: string[];
  denyFiles?: string[];
  /** Watch the files' directories and reload on change. Default true. */
  watch?: boolean;
  /** Wait this long after the last change before reloading. Default 200ms. */
  debounce?: Duration;
  shadow?: boolean;
}

export interface ConnectionLimits {
  /** Open connections in all. Default 10,000. */
  max?: number | false;
  /** Open connections per key (IPv4 address or IPv6 prefix). Default 32. */
  perKey?: number | false;
  shadow?: boolean;
}

export interface RateLimits {
  /** New connections per key. Default 10/s, burst 20. */
  connections?: RateLimit | false;
  /** Messages (frames). Default 1000/s per connection, no per-key limit. */
  messages?: { perConnection?: RateLimit | false; perKey?: RateLimit | false };
  /**
   * Inbound bytes. Default 1 MiB/s (burst 4 MiB) per connection, no per-key limit. Exceeding it shapes
   * (pauses reading until the tokens return) and never strikes: a fast legitimate client can hit it.
   * `onExceed` here overrides that (default `pause`, whatever `rates.onExceed` says).
   */
  bytes?: { perConnection?: RateLimit | false; perKey?: RateLimit | false; onExceed?: ExceedAction };
  /** Per-source limits for datagrams (`guards.check`). Default 200/s (burst 400) and 1 MiB/s. */
  datagrams?: { perKey?: RateLimit | false; bytesPerKey?: RateLimit | false };
  /** For message rates. Default `pause`; connection rates use `close` in its place, byte rates `bytes.onExceed`. */
  onExceed?: ExceedAction;
  /** How long a tarpitted connection is held. Default 5s. */
  tarpit?: Duration;
  /** Longest pause for shaping; a longer wait closes. Default 5s. */
  maxPause?: Duration;
  shadow?: boolean;
}

export interface TimeoutOptions {
  /** From accept to the first complete frame (TLS included): an absolute deadline. Default 10s. */
  firstFrame?: Duration | false;
  /** @deprecated The old name of `firstFrame` (in core "handshake" means TLS); still accepted. */
  handshake?: Duration | false;
  /** No byte received for this long closes (checked lazily: closes within 1–2× this). Default 5m. */
  idle?: Duration | false;
  /** Absolute maximum lifetime. Default off. */
  lifetime?: Duration | false;
  /**
   * After `grace`, every `grace` period: bytes arrived but no frame completed, at fewer than
   * `bytesPerSecond`, closes (a trickled frame). Default 128 B/s after 10s.
   */
  minRate?: { bytesPerSecond: number; grace?: Duration } | false;
  shadow?: boolean;
}

export interface StrikeOptions {
  /** Strikes within `window` that ban the key. Default 10. */
  threshold?: number;
  /** Default 10m, starting at a key's first strike. */
  window?: Duration;
  /** Strikes per reason; unlisted reasons weigh 1. See `DEFAULT_STRIKE_WEIGHTS`. */
  weights?: Record<string, number>;
  /**
   * A second level of strikes per range (a /24 of IPv4, a /48 of IPv6 by default) with its own threshold,
   * so an attacker rotating through more keys than the store holds is banned as the range it rotates in.
   * Default threshold 50 within `window` (5 × `threshold` when that is higher: a range never bans before
   * one key of it could); `false` turns it off.
   */
  aggregate?: { threshold?: number; ipv4Prefix?: number; ipv6Prefix?: number } | false;
}

export interface BanOptions {
  /** First ban. Default 10m. */
  duration?: Duration;
  /** Each further ban lasts `factor` times the previous one. Default 2. */
  factor?: number;
  /** Longest ban. Default 7d. */
  max?: Duration;
  /** How long offences are remembered for escalation after a ban ends. Default 7d. */
  forget?: Duration;
  /**
   * Addresses or CIDRs never banned (your monitoring, your proxies). A ban that would cover one of them is
   * not issued: a strike ban of an IPv6 prefix holding a protected host bans the offender's own address
   * (/128) instead; a range (aggregate or manual) holding one is not banned at all.
   */
  neverBan?: string[];
  /** Close the banned key's open connections, on every listener these guards serve. Default true. */
  closeConnections?: boolean;
  shadow?: boolean;
}

export interface ProxyOptions {
  /** Proxies whose PROXY headers are believed; any other peer is rejected `proxy-untrusted`. */
  trusted: string[];
  /** Only on listeners bound to these local ports; default every listener the plug-in serves. */
  ports?: number[];
  /** The whole header must arrive within this. Default 5s. */
  timeout?: Duration;
  /** Largest header accepted (v1 is never more than 107 bytes). Default 536. */
  maxBytes?: number;
}

export interface StoreOptions {
  /** Maximum keys per table. Default 100,000. */
  maxKeys?: number;
  /** Full table: `evict` least recently used state (fail-open) or `reject` new keys (fail-closed). Default `evict`. */
  onFull?: OnFull;
}

export { DEFAULT_STRIKE_WEIGHTS } from './bans.js';

export interface ResolvedRate {
  readonly emissionMs: number;
  readonly burst: number;
}

/** The policy with every default applied and every duration in ms. */
export interface ResolvedPolicy {
  readonly ipv6Prefix: number;
  readonly ip: {
    readonly default: 'allow' | 'deny';
    readonly allow: readonly string[];
    readonly deny: readonly string[];
    readonly allowFiles: readonly string[];
    readonly denyFiles: readonly string[];
    readonly watch: boolean;
    readonly debounceMs: number;
    readonly shadow: boolean;
  };
  readonly connections: { readonly max: number; readonly perKey: number; readonly shadow: boolean };
  readonly rates: {
    readonly connections: ResolvedRate | undefined;
    readonly messagesPerConnection: ResolvedRate | undefined;
    readonly messagesPerKey: ResolvedRate | undefined;
    readonly bytesPerConnection: ResolvedRate | undefined;
    readonly bytesPerKey: ResolvedRate | undefined;
    readonly datagramsPerKey: ResolvedRate | undefined;
    readonly datagramBytesPerKey: ResolvedRate | undefined;
    readonly onExceed: ExceedAction;
    readonly bytesOnExceed: ExceedAction;
    readonly tarpitMs: number;
    readonly maxPauseMs: number;
    readonly shadow: boolean;
  };
  readonly timeouts: {
    readonly firstFrameMs: number;
    readonly idleMs: number;
    readonly lifetimeMs: number;
    readonly minRate: { readonly bytesPerSecond: number; readonly graceMs: number } | undefined;
    readonly shadow: boolean;
  };
  readonly strikes: {
    readonly threshold: number;
    readonly windowMs: number;
    readonly weights: Readonly<Record<string, number>>;
    readonly aggregate:
      | { readonly threshold: number; readonly ipv4Prefix: number; readonly ipv6Prefix: number }
      | undefined;
  };
  readonly bans: {
    readonly durationMs: number;
    readonly factor: number;
    readonly maxMs: number;
    readonly forgetMs: number;
    readonly neverBan: readonly string[];
    readonly closeConnections: boolean;
    readonly shadow: boolean;
  };
  readonly proxy:
    | {
        readonly trusted: readonly string[];
        readonly ports: readonly number[] | undefined;
        readonly timeoutMs: number;
        readonly maxBytes: number;
      }
    | undefined;
  readonly store: { readonly maxKeys: number; readonly onFull: OnFull };
}

type Path = ReadonlyArray<string | number>;

/** @internal Collects every problem with a policy, each with the field it concerns (each guard resolves its own section with it). */
export class Checker {
  readonly issues: SockIssue[] = [];

  fail(path: Path, message: string): undefined {
    this.issues.push({ message: `${fieldName(path)}: ${message}`, path: [...path] });
    return undefined;
  }

  section<K extends string>(value: unknown, path: Path, keys: readonly K[]): Partial<Record<K, unknown>> {
    if (value === undefined) return {};
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      this.fail(path, `expected an object, got ${describe(value)}`);
      return {};
    }
    for (const k of Object.keys(value)) {
      if (!(keys as readonly string[]).includes(k)) {
        this.fail([...path, k], `unknown field (expected one of ${keys.join(', ')})`);
      }
    }
    return value as Partial<Record<K, unknown>>;
  }

  number(
    value: unknown,
    path: Path,
    fallback: number,
    opts: { min?: number; max?: number; int?: boolean } = {},
  ): number {
    if (value === undefined) return fallback;
    const { min = 0, max = Number.MAX_SAFE_INTEGER, int = false } = opts;
    if (
      typeof value !== 'number' ||
      !Number.isFinite(value) ||
      value < min ||
      value > max ||
      (int && !Number.isInteger(value))
    ) {
      this.fail(
        path,
        `expected ${int ? 'an integer' : 'a number'} from ${min} to ${max}, got ${describe(value)}`,
      );
      return fallback;
    }
    return value;
  }

  /** A positive limit, or `false` (off → 0 internally meaning unlimited). */
  limit(value: unknown, path: Path, fallback: number): number {
    if (value === false) return Number.POSITIVE_INFINITY;
    return this.number(value, path, fallback, { min: 1, int: true });
  }

  bool(value: unknown, path: Path, fallback: boolean): boolean {
    if (value === undefined) return fallback;
    if (typeof value !== 'boolean') {
      this.fail(path, `expected true or false, got ${describe(value)}`);
      return fallback;
    }
    return value;
  }

  duration(value: unknown, path: Path, fallback: number, allowOff = false): number {
    if (value === undefined) return fallback;
    if (value === false && allowOff) return 0;
    if (typeof value !== 'number' && typeof value !== 'string') {
      this.fail(
        path,
        `expected a duration (ms or a string like "10s")${allowOff ? ' or false' : ''}, got ${describe(value)}`,
      );
      return fallback;
    }
    try {
      return parseDuration(value, fieldName(path));
    } catch {
      this.fail(path, `expected a duration (ms or a string like "10s"), got ${describe(value)}`);
      return fallback;
    }
  }

  oneOf<T extends string>(value: unknown, path: Path, choices: readonly T[], fallback: T): T {
    if (value === undefined) return fallback;
    if (!(choices as readonly unknown[]).includes(value)) {
      this.fail(
        path,
        `expected one of ${choices.map((c) => JSON.stringify(c)).join(', ')}, got ${describe(value)}`,
      );
      return fallback;
    }
    return value as T;
  }

  strings(value: unknown, path: Path): string[] {
    if (value === undefined) return [];
    if (!Array.isArray(value)) {
      this.fail(path, `expected an array of strings, got ${describe(value)}`);
      return [];
    }
    const out: string[] = [];
    value.forEach((v, i) => {
      if (typeof v !== 'string') this.fail([...path, i], `expected a string, got ${describe(v)}`);
      else out.push(v);
    });
    return out;
  }

  cidrs(value: unknown, path: Path): string[] {
    const list = this.strings(value, path);
    list.forEach((c, i) => {
      if (!parseCidr(c.trim())) this.fail([...path, i], `not an IP address or CIDR: ${JSON.stringify(c)}`);
    });
    return list.map((c) => c.trim());
  }

  rate(value: unknown, path: Path, fallback: RateLimit | false): ResolvedRate | undefined {
    const v = value === undefined ? fallback : value;
    if (v === false) return undefined;
    const r = this.section(v, path, ['rate', 'per', 'burst'] as const);
    if (typeof v !== 'object' || v === null) return undefined;
    if (r.rate === undefined) return this.fail([...path, 'rate'], 'required: units per `per`');
    const rate = this.number(r.rate, [...path, 'rate'], 1, { min: Number.MIN_VALUE });
    const per = this.duration(r.per, [...path, 'per'], 1000);
    if (per <= 0) this.fail([...path, 'per'], 'must be more than 0');
    const burst = this.number(r.burst, [...path, 'burst'], Math.max(1, rate), { min: 1 });
    return { emissionMs: per / rate, burst };
  }
}

function fieldName(path: Path): string {
  let out = 'policy';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : `.${p}`;
  return out;
}

/** @internal A value, short, for an error message. */
export function describe(value: unknown): string {
  if (value === undefined) return 'undefined';
  try {
    const s = JSON.stringify(value);
    return s.length > 60 ? `${s.slice(0, 57)}...` : s;
  } catch {
    return String(value);
  }
}

/**
 * Check a policy and apply the defaults. Throws a SockError `ERR_SOCK_INVALID_OPTION` listing every
 * problem, each naming its field (`policy.rates.connections.rate: expected a number ...`); the same
 * problems are in `error.issues` with their paths.
 */
export function resolvePolicy(input: unknown = {}, source = 'policy'): ResolvedPolicy {
  const c = new Checker();
  const top = c.section(input, [], [
    'ipv6Prefix',
    'ip',
    'connections',
    'rates',
    'timeouts',
    'strikes',
    'bans',
    'proxy',
    'store',
  ] as const);
  // Each guard resolves its own section; its file says what the fields mean.
  const resolved: ResolvedPolicy = {
    ipv6Prefix: c.number(top.ipv6Prefix, ['ipv6Prefix'], 64, { min: 1, max: 128, int: true }),
    ip: resolveIp(c, top.ip),
    connections: resolveConnections(c, top.connections),
    rates: resolveRates(c, top.rates),
    timeouts: resolveTimeouts(c, top.timeouts),
    strikes: resolveStrikes(c, top.strikes),
    bans: resolveBans(c, top.bans),
    proxy: resolveProxy(c, top.proxy),
    store: resolveStore(c, top.store),
  };
  if (c.issues.length > 0) {
    throw new SockError(
      SockErrorCode.INVALID_OPTION,
      `${source}: ${c.issues.length === 1 ? 'invalid' : `${c.issues.length} problems`}: ${c.issues.map((i) => i.message).join('; ')}`,
      { issues: c.issues, reason: GuardReason.POLICY_INVALID },
    );
  }
  return resolved;
}

/**
 * Read a policy from a JSON (`.json`) or YAML (`.yaml`, `.yml`) file and check it. List files it names
 * (`ip.allowFiles`, `ip.denyFiles`) are resolved against the policy file's directory. Errors name the
 * file and the field.
 */
export async function loadPolicyFile(
  path: string,
  options: { signal?: AbortSignal } = {},
): Promise<GuardsPolicy> {
  const text = await readFile(path, { encoding: 'utf8', signal: options.signal });
  let data: unknown;
  try {
    // yaml is loaded only when a YAML file is read: JSON users never load it.
    data = extname(path).toLowerCase() === '.json' ? JSON.parse(text) : await parseYaml(text);
  } catch (err) {
    throw new SockError(
      SockErrorCode.INVALID_OPTION,
      `${path}: not valid ${extname(path) === '.json' ? 'JSON' : 'YAML'}: ${(err as Error).message}`,
      {
        cause: err,
        reason: GuardReason.POLICY_INVALID,
      },
    );
  }
  if (data === null || data === undefined) data = {};
  resolvePolicy(data, path);
  const policy = data as GuardsPolicy;
  const base = dirname(path);
  if (policy.ip) {
    policy.ip = {
      ...policy.ip,
      ...(policy.ip.allowFiles ? { allowFiles: policy.ip.allowFiles.map((f) => resolve(base, f)) } : {}),
      ...(policy.ip.denyFiles ? { denyFiles: policy.ip.denyFiles.map((f) => resolve(base, f)) } : {}),
    };
  }
  return policy;
}

async function parseYaml(text: string): Promise<unknown> {
  const { parse } = await import('yaml');
  return parse(text);
}

function resolveStore(c: Checker, input: unknown): ResolvedPolicy['store'] {
  const store = c.section(input, ['store'], ['maxKeys', 'onFull'] as const);
  return {
    maxKeys: c.number(store.maxKeys, ['store', 'maxKeys'], 100_000, { min: 1, max: 50_000_000, int: true }),
    onFull: c.oneOf(store.onFull, ['store', 'onFull'], ['evict', 'reject'] as const, 'evict'),
  };
}
