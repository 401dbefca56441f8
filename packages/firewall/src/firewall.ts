import type { Clock } from '@sock/core';
import { systemClock } from '@sock/core/internal';
import { collapse, type IpFamily, type IpTarget, overlaps, parseTarget } from './address.js';
import { assertBannable } from './bannable.js';
import { detectBackend } from './detect.js';
import type { Driver, KernelBackend } from './driver.js';
import { type Duration, parseDuration } from './duration.js';
import { FirewallError, FirewallErrorCode, quote, throwIfAborted } from './errors.js';
import { createIptablesDriver } from './iptables.js';
import {
  createLockoutCheck,
  type LockoutOptions,
  parseAdminCidrs,
  protectedTargets,
  sshConnection,
} from './lockout.js';
import { type BanElement, banSetOf, type Change, type PortRule, sanitizeComment } from './model.js';
import { createNftDriver } from './nftables.js';
import { type Protocol, parsePort, parseProtocol } from './port.js';
import {
  type BinaryName,
  type Command,
  type CommandRunner,
  createCommandRunner,
  validateNetns,
} from './runner.js';
import { type BanRecord, readState, type StateFile } from './state.js';
import { runTransaction } from './transaction.js';

/** Backends a firewall may use; `auto` picks nftables, else iptables. */
export type BackendName = KernelBackend | 'plan';

/** Options of {@link createFirewall}. Every field is optional. */
export interface FirewallOptions extends LockoutOptions {
  /** `'auto'` (default): nftables if usable, else iptables. `'plan'`: run nothing, return the commands. */
  backend?: 'auto' | BackendName;
  /** Which command dialect a `plan` backend renders. Default `'nftables'`. */
  planDialect?: KernelBackend;
  /** Our nftables table (`inet <table>`), or the prefix of our iptables chains and ipsets. Default `'sockfw'`. */
  table?: string;
  /** Path of the JSON state file (written atomically, mode 0600). Default: no persistence. */
  stateFile?: string;
  /** Run every command inside this network namespace (`ip netns exec`). */
  netns?: string;
  /** Run commands through this runner instead of the default `execFile` one (e.g. for logging). */
  runner?: CommandRunner;
  /** Absolute paths of binaries. Default: looked up in the standard sbin/bin directories. */
  binaries?: Partial<Record<BinaryName, string>>;
  /** Kill an external command that runs longer than this. Default 60 000 ms. */
  commandTimeoutMs?: number;
  /** Priority of our nftables base chains on the input and forward hooks. Default -10. */
  priority?: number;
  /** Capacity of each ban set. Default 1 048 576. */
  maxElements?: number;
  /** TTL of a ban given without one. Default `'1h'`. */
  defaultTtl?: Duration;
  /** How long an expired or lifted ban is remembered for its offence count. Default `'24h'`. */
  offenceMemory?: Duration;
  /** Where ban expiry and offence memory read time (epoch ms). Default the system clock. (Was `now`.) */
  clock?: Clock;
}

/** `{ signal }` accepted by every operation. */
export interface OperationOptions {
  signal?: AbortSignal;
}

/** Options of a ban. */
export interface BanOptions extends OperationOptions {
  /** How long the ban lasts: ms, a string like `'10m'`, or `'permanent'`. Default: `defaultTtl`. */
  ttl?: Duration | 'permanent';
  /** Why; stored in the state file and (sanitised) as the kernel element's comment. */
  reason?: string;
  /** Set to `'broad-prefix'` to allow prefixes broader than /8 (IPv4) or /32 (IPv6). */
  force?: 'broad-prefix';
}

/** One ban of a batch. */
export interface BanRequest {
  target: string;
  ttl?: Duration | 'permanent';
  reason?: string;
}

/** Options of {@link Firewall.banMany}. */
export interface BanManyOptions extends OperationOptions {
  /** Set to `'broad-prefix'` to allow prefixes broader than /8 (IPv4) or /32 (IPv6). */
  force?: 'broad-prefix';
  /**
   * `'throw'` (default): one invalid, protected or overlapping request fails the whole batch and
   * nothing runs. `'skip'`: leave such requests out, apply the rest, report them in `skipped`.
   */
  onInvalid?: 'throw' | 'skip';
}

/** Options of a port rule. */
export interface PortRuleOptions extends OperationOptions {
  /** Only traffic from this address or CIDR. Default: any source. */
  from?: string;
  /**
   * nftables, `allowPort` only: what to do when another table's input base chain drops by default, so
   * our accept cannot open the port. `'throw'` (default): `ERR_SOCK_FW_ALLOW_SHADOWED` naming table and
   * chain, nothing applied. `'apply'`: apply the rule anyway (it still overrides our own `denyPort`) and
   * return the error in `warnings`.
   */
  onShadowed?: 'throw' | 'apply';
}

/** A ban as reported by {@link Firewall.list}. */
export interface BanInfo {
  target: string;
  family: IpFamily;
  kind: 'address' | 'cidr';
  reason: string;
  /** Remaining time in ms; null for a permanent ban. */
  ttlMs: number | null;
  /** Epoch ms when the ban ends; null for a permanent ban. */
  expiresAt: number | null;
  offences: number;
}

/** What an operation ran (or, for `plan`, would run). */
export interface ApplyResult {
  backend: BackendName;
  /** False for the plan backend and for no-op calls. */
  applied: boolean;
  /** The mutating commands in order; `input` is the content of the temp file given as `<input-file>`. */
  commands: Command[];
  /** Bans left out (by `restore()`, or `banMany` with `onInvalid: 'skip'`), with the error. */
  skipped?: SkippedBan[];
  /** What was applied but does not do all it says (an `allowPort` another table's drop overrides). */
  warnings?: FirewallError[];
}

/** A ban that was left out, and why. */
export interface SkippedBan {
  /** The target as given (or as stored). */
  target: string;
  /** The error that rejected it. */
  error: FirewallError;
}

/** A firewall of our own table/chain. Create with {@link createFirewall}. */
export interface Firewall {
  /** Our table / prefix name. */
  readonly table: string;
  /** The backend in use (detects it on first call when `'auto'`). */
  backend(options?: OperationOptions): Promise<BackendName>;
  /** Create our table, sets and chains if missing and re-apply allows and port rules. Idempotent. */
  init(options?: OperationOptions): Promise<ApplyResult>;
  /** Remove our table (or chains and sets) entirely. Idempotent. The state file is kept. */
  destroy(options?: OperationOptions): Promise<ApplyResult>;
  /** Ban one address or CIDR (for `options.ttl`, or permanently); refused for lockout and broad prefixes. */
  ban(target: string, options?: BanOptions): Promise<ApplyResult>;
  /** Ban many targets in one transaction: all of them, or (on any invalid one) none. */
  banMany(requests: readonly BanRequest[], options?: BanManyOptions): Promise<ApplyResult>;
  /** Lift the ban of one address or CIDR. Idempotent. */
  unban(target: string, options?: OperationOptions): Promise<ApplyResult>;
  /** Lift many bans in one transaction. */
  unbanMany(targets: readonly string[], options?: OperationOptions): Promise<ApplyResult>;
  /** Add to the allow set: accepted by our table before any ban or port rule. */
  allow(target: string, options?: OperationOptions & { force?: 'broad-prefix' }): Promise<ApplyResult>;
  /** Add many targets to the allow set in one transaction. */
  allowMany(
    targets: readonly string[],
    options?: OperationOptions & { force?: 'broad-prefix' },
  ): Promise<ApplyResult>;
  /** Remove from the allow set (admin CIDRs always stay). */
  disallow(target: string, options?: OperationOptions): Promise<ApplyResult>;
  /** Accept traffic to a port (optionally only from a source); checked before `denyPort` rules. */
  allowPort(port: number | string, protocol: Protocol, options?: PortRuleOptions): Promise<ApplyResult>;
  /** Drop traffic to a port (optionally only from a source). */
  denyPort(port: number | string, protocol: Protocol, options?: PortRuleOptions): Promise<ApplyResult>;
  /** Remove port rules matching port, protocol and `from` (both actions unless `action` is given). */
  removePortRule(
    port: number | string,
    protocol: Protocol,
    options?: PortRuleOptions & { action?: 'allow' | 'deny' },
  ): Promise<ApplyResult>;
  /** Live bans with remaining TTL, reason and offence count. */
  list(options?: OperationOptions): Promise<BanInfo[]>;
  /** Empty our bans, allow entries and port rules (admin CIDRs stay). Touches nothing outside our table. */
  flush(options?: OperationOptions): Promise<ApplyResult>;
  /** Re-apply every live ban of the state file with its remaining TTL in one transaction. */
  restore(options?: OperationOptions): Promise<ApplyResult>;
}

const TABLE_RE = /^[a-z][a-z0-9_]{0,15}$/;
const MAX_REASON = 200;

function invalidOption(name: string, value: unknown, hint: string): FirewallError {
  return new FirewallError(FirewallErrorCode.INVALID_OPTION, `invalid ${name} ${quote(value)}: ${hint}`, {
    details: { option: name, value },
  });
}

/** A command failed because our table, chain or set does not exist (someone removed it). */
function isMissingStructure(error: unknown): boolean {
  if (!FirewallError.isInstance(error) || error.code !== FirewallErrorCode.COMMAND_FAILED) return false;
  const stderr = String(error.details.stderr ?? '');
  return /No such file or directory|does not exist|doesn't exist/i.test(stderr);
}

/** What this firewall believes is in the kernel: bans (with their history), allow entries, port rules. */
interface Memory {
  records: Map<string, BanRecord>;
  allows: Map<string, IpTarget>;
  ports: Map<string, PortRule>;
}

function portKey(r: PortRule): string {
  return `${r.action} ${r.protocol} ${r.port} ${r.from ?? '*'}`;
}

class FirewallImpl implements Firewall {
  readonly table: string;
  private readonly opts: FirewallOptions;
  private readonly runner: CommandRunner;
  private readonly admin: IpTarget[];
  private readonly defaultTtlMs: number;
  private readonly memoryMs: number;
  private readonly now: () => number;
  private readonly priority: number;
  private readonly maxElements: number;
  private queue: Promise<unknown> = Promise.resolve();
  private driver: Driver | undefined;
  private backendName: BackendName | undefined;
  private ready = false;
  private loaded = false;
  private records = new Map<string, BanRecord>();
  private allows = new Map<string, IpTarget>();
  private ports = new Map<string, PortRule>();

  constructor(options: FirewallOptions) {
    this.opts = options;
    const table = options.table ?? 'sockfw';
    if (typeof table !== 'string' || !TABLE_RE.test(table)) {
      throw invalidOption('table', table, 'use 1-16 characters: a lower-case letter, then a-z, 0-9 or _');
    }
    this.table = table;
    const backend = options.backend ?? 'auto';
    if (!['auto', 'nftables', 'iptables', 'plan'].includes(backend)) {
      throw invalidOption('backend', backend, "use 'auto', 'nftables', 'iptables' or 'plan'");
    }
    if (options.planDialect !== undefined && !['nftables', 'iptables'].includes(options.planDialect)) {
      throw invalidOption('planDialect', options.planDialect, "use 'nftables' or 'iptables'");
    }
    if (options.netns !== undefined) validateNetns(options.netns);
    if (
      options.stateFile !== undefined &&
      (typeof options.stateFile !== 'string' || options.stateFile.includes('\0') || options.stateFile === '')
    ) {
      throw invalidOption('stateFile', options.stateFile, 'pass a file path');
    }
    this.priority = options.priority ?? -10;
    if (!Number.isInteger(this.priority) || Math.abs(this.priority) > 1000) {
      throw invalidOption('priority', this.priority, 'pass an integer from -1000 to 1000');
    }
    this.maxElements = options.maxElements ?? 1_048_576;
    if (!Number.isInteger(this.maxElements) || this.maxElements < 1 || this.maxElements > 16_777_216) {
      throw invalidOption('maxElements', this.maxElements, 'pass an integer from 1 to 16777216');
    }
    this.admin = parseAdminCidrs(options.adminCidrs);
    this.defaultTtlMs = parseDuration(options.defaultTtl ?? '1h', 'defaultTtl');
    this.memoryMs = parseDuration(options.offenceMemory ?? '24h', 'offenceMemory');
    const clock = options.clock ?? systemClock;
    this.now = () => clock.now();
    this.runner =
      options.runner ??
      createCommandRunner({
        ...(options.netns !== undefined ? { netns: options.netns } : {}),
        ...(options.binaries ? { binaries: options.binaries } : {}),
        ...(options.commandTimeoutMs !== undefined ? { timeoutMs: options.commandTimeoutMs } : {}),
      });
  }

  // ---- plumbing -------------------------------------------------------------------------------

  private exclusive<T>(signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(() => {
      throwIfAborted(signal);
      return fn();
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private get dialect(): KernelBackend {
    if (this.backendName === 'plan') return this.opts.planDialect ?? 'nftables';
    return this.backendName as KernelBackend;
  }

  private async resolve(signal?: AbortSignal): Promise<Driver> {
    if (this.driver) return this.driver;
    const wanted = this.opts.backend ?? 'auto';
    let kernel: KernelBackend;
    if (wanted === 'plan') kernel = this.opts.planDialect ?? 'nftables';
    else if (wanted === 'auto') {
      kernel = await detectBackend({
        runner: this.runner,
        ...(this.opts.binaries ? { binaries: this.opts.binaries } : {}),
        skipPrivilegeCheck: this.opts.runner !== undefined,
        ...(signal ? { signal } : {}),
      });
    } else kernel = wanted;
    const ctx = {
      table: this.table,
      runner: this.runner,
      dry: wanted === 'plan',
      priority: this.priority,
      maxElements: this.maxElements,
    };
    this.driver = kernel === 'nftables' ? createNftDriver(ctx) : createIptablesDriver(ctx);
    this.backendName = wanted === 'plan' ? 'plan' : kernel;
    return this.driver;
  }

  private get dry(): boolean {
    return this.backendName === 'plan';
  }

  private result(commands: Command[], skipped?: ApplyResult['skipped']): ApplyResult {
    return {
      backend: this.backendName!,
      applied: !this.dry && commands.length > 0,
      commands,
      ...(skipped ? { skipped } : {}),
    };
  }

  /** Load the state file once (records, allows, ports), then learn bans already in the kernel. */
  private async load(driver: Driver, signal?: AbortSignal): Promise<void> {
    if (this.loaded) return;
    if (this.opts.stateFile) {
      const state = await readState(this.opts.stateFile);
      if (state) this.adopt(state);
    }
    const now = this.now();
    for (const k of await driver.list(signal)) {
      if (this.records.has(k.target.text)) continue;
      this.records.set(k.target.text, {
        target: k.target.text,
        reason: k.comment ?? '',
        expiresAt: k.expiresSec === null ? null : now + k.expiresSec * 1000,
        firstBannedAt: now,
        lastBannedAt: now,
        offences: 1,
        active: true,
      });
    }
    this.loaded = true;
  }

  private adopt(state: StateFile): void {
    const bad = (what: string, value: unknown, cause?: unknown) =>
      new FirewallError(
        FirewallErrorCode.STATE_FILE,
        `state file ${JSON.stringify(this.opts.stateFile)} holds an invalid ${what} ${quote(value)}; fix or remove that entry`,
        { cause },
      );
    const records = new Map<string, BanRecord>();
    for (const r of state.bans) {
      let target: IpTarget;
      try {
        target = parseTarget(r?.target, { allowBroadPrefix: true });
      } catch (cause) {
        throw bad('ban target', r?.target, cause);
      }
      if (r.expiresAt !== null && !Number.isFinite(r.expiresAt)) throw bad('expiresAt', r.expiresAt);
      records.set(target.text, {
        target: target.text,
        reason: typeof r.reason === 'string' ? r.reason.slice(0, MAX_REASON) : '',
        expiresAt: r.expiresAt,
        firstBannedAt: Number(r.firstBannedAt) || 0,
        lastBannedAt: Number(r.lastBannedAt) || 0,
        offences: Number.isInteger(r.offences) && r.offences > 0 ? r.offences : 1,
        active: r.active !== false,
      });
    }
    const allows = new Map<string, IpTarget>();
    for (const a of state.allows) {
      try {
        const t = parseTarget(a, { allowBroadPrefix: true });
        allows.set(t.text, t);
      } catch (cause) {
        throw bad('allow entry', a, cause);
      }
    }
    const ports = new Map<string, PortRule>();
    for (const p of state.ports) {
      try {
        const rule = this.portRule(p?.action, p?.port, p?.protocol, p?.from);
        ports.set(portKey(rule), rule);
      } catch (cause) {
        throw bad('port rule', JSON.stringify(p), cause);
      }
    }
    this.records = records;
    this.allows = allows;
    this.ports = ports;
  }

  /** A deep copy of what we believe the kernel holds (commits mutate records in place). */
  private snapshot(): Memory {
    return {
      records: new Map([...this.records].map(([k, r]) => [k, { ...r }])),
      allows: new Map(this.allows),
      ports: new Map(this.ports),
    };
  }

  private adoptMemory(m: Memory): void {
    this.records = m.records;
    this.allows = m.allows;
    this.ports = m.ports;
  }

  /** The state file for `m`: records past their offence memory are forgotten. */
  private stateOf(m: Memory, now: number): StateFile {
    const bans: BanRecord[] = [];
    for (const r of m.records.values()) {
      const over = !r.active || (r.expiresAt !== null && r.expiresAt <= now);
      if (!(over && r.lastBannedAt + this.memoryMs <= now)) bans.push(r);
    }
    return {
      version: 1,
      table: this.table,
      savedAt: now,
      bans,
      allows: [...m.allows.keys()],
      ports: [...m.ports.values()],
    };
  }

  /** Every live ban of `m` with its remaining time, as kernel elements. */
  private liveElements(m: Memory, now: number): BanElement[] {
    const elements: BanElement[] = [];
    for (const r of m.records.values()) {
      if (!r.active || (r.expiresAt !== null && r.expiresAt <= now)) continue;
      const remaining = r.expiresAt === null ? null : r.expiresAt - now;
      elements.push({
        target: parseTarget(r.target, { allowBroadPrefix: true }),
        timeoutSec: remaining === null ? null : Math.max(1, Math.ceil(remaining / 1000)),
        comment: sanitizeComment(r.reason),
        refresh: false,
      });
    }
    return elements;
  }

  /** The changes that make the kernel hold exactly `m` (a rollback). */
  private fullChanges(m: Memory, now: number): Change[] {
    return [
      { type: 'replace-bans', elements: this.liveElements(m, now) },
      { type: 'set-allow', targets: collapse([...this.admin, ...m.allows.values()]) },
      { type: 'set-ports', rules: [...m.ports.values()] },
    ];
  }

  private allowChange(): Change {
    return { type: 'set-allow', targets: collapse([...this.admin, ...this.allows.values()]) };
  }

  private portsChange(): Change {
    return { type: 'set-ports', rules: [...this.ports.values()] };
  }

  /** Detect, load, and create our structure once; later calls are free. */
  private async ready_(signal?: AbortSignal): Promise<Driver> {
    const driver = await this.resolve(signal);
    await this.load(driver, signal);
    if (!this.ready) {
      await driver.init([this.allowChange(), this.portsChange()], signal);
      this.ready = true;
    }
    return driver;
  }

  /**
   * Every mutating operation: build the change and the in-memory result, then apply both through the
   * one transaction (`runTransaction`): the kernel and the state file change together or not at all.
   */
  private async transact(
    signal: AbortSignal | undefined,
    build: () => { changes: Change[]; commit: () => void; skipped?: SkippedBan[] },
  ): Promise<ApplyResult> {
    return this.exclusive(signal, async () => {
      const driver = await this.ready_(signal);
      const before = this.snapshot();
      const { changes, commit, skipped } = build();
      commit();
      const after = this.snapshot();
      this.adoptMemory(before);
      const now = this.now();
      const commands = await runTransaction({
        atomic: driver.name === 'nftables' || this.dry,
        state:
          this.opts.stateFile && !this.dry
            ? { path: this.opts.stateFile, content: this.stateOf(after, now) }
            : undefined,
        apply: async () => {
          try {
            return await driver.apply(changes, signal);
          } catch (error) {
            if (!isMissingStructure(error)) throw error;
            // Our table or sets were removed behind our back: recreate them once, then retry.
            this.ready = false;
            await this.ready_(signal);
            return driver.apply(changes, signal);
          }
        },
        // Not aborted by `signal`: a rollback, once needed, must run to the end.
        rollback: () => driver.apply(this.fullChanges(before, this.now())),
      });
      this.adoptMemory(after);
      return this.result(commands, skipped && skipped.length > 0 ? skipped : undefined);
    });
  }

  // ---- validation -----------------------------------------------------------------------------

  private ttlOf(ttl: Duration | 'permanent' | undefined): number | null {
    if (ttl === 'permanent') return null;
    return ttl === undefined ? this.defaultTtlMs : parseDuration(ttl, 'ttl');
  }

  private portRule(action: unknown, port: unknown, protocol: unknown, from: unknown): PortRule {
    if (action !== 'allow' && action !== 'deny')
      throw invalidOption('action', action, "use 'allow' or 'deny'");
    const rule: PortRule = { action, port: parsePort(port), protocol: parseProtocol(protocol) };
    if (from === undefined) return rule;
    return { ...rule, from: parseTarget(from, { allowBroadPrefix: true }).text };
  }

  /** Validate a whole batch of bans and build elements plus the commit; throws before anything runs. */
  private planBans(requests: readonly BanRequest[], force: boolean, skip: boolean) {
    if (!Array.isArray(requests))
      throw invalidOption('requests', requests, 'pass an array of { target, ttl?, reason? }');
    const check = createLockoutCheck(protectedTargets(this.opts, this.admin));
    const now = this.now();
    const overlap = this.dialect === 'nftables' ? this.overlapCheck(now) : undefined;
    const skipped: SkippedBan[] = [];
    // Batches repeat the same TTL and reason: parse and sanitise each distinct one once.
    const ttls = new Map<unknown, number | null>();
    const comments = new Map<string, string>();
    const byTarget = new Map<string, { target: IpTarget; ttlMs: number | null; reason: string }>();
    for (const req of requests) {
      try {
        if (req === null || typeof req !== 'object')
          throw invalidOption('ban request', req, 'pass { target, ttl?, reason? }');
        const target = parseTarget(req.target, { allowBroadPrefix: force });
        assertBannable(target);
        check(target);
        const reason = req.reason === undefined ? '' : req.reason;
        if (typeof reason !== 'string') throw invalidOption('reason', reason, 'pass a string');
        let ttlMs = ttls.get(req.ttl);
        if (ttlMs === undefined) {
          ttlMs = this.ttlOf(req.ttl);
          ttls.set(req.ttl, ttlMs);
        }
        overlap?.(target);
        byTarget.set(target.text, { target, ttlMs, reason: reason.slice(0, MAX_REASON) });
      } catch (error) {
        if (!skip || !FirewallError.isInstance(error)) throw error;
        skipped.push({ target: String((req as BanRequest | null)?.target), error });
      }
    }
    const elements: BanElement[] = [];
    for (const b of byTarget.values()) {
      const known = this.records.get(b.target.text);
      elements.push({
        target: b.target,
        timeoutSec: b.ttlMs === null ? null : Math.max(1, Math.ceil(b.ttlMs / 1000)),
        comment: comments.get(b.reason) ?? comments.set(b.reason, sanitizeComment(b.reason)).get(b.reason)!,
        refresh: known?.active === true,
      });
    }
    const commit = () => {
      for (const b of byTarget.values()) {
        const old = this.records.get(b.target.text);
        const remembered = old !== undefined && old.lastBannedAt + this.memoryMs > now;
        this.records.set(b.target.text, {
          target: b.target.text,
          reason: b.reason,
          expiresAt: b.ttlMs === null ? null : now + b.ttlMs,
          firstBannedAt: remembered ? old.firstBannedAt : now,
          lastBannedAt: now,
          offences: remembered ? old.offences + 1 : 1,
          active: true,
        });
      }
    };
    return { elements, commit, skipped };
  }

  /**
   * nftables interval sets refuse overlapping CIDRs and fail the whole batch: check each new CIDR
   * against live banned CIDRs and the batch so far, and say so up front.
   */
  private overlapCheck(now: number, action: 'ban' | 'unban' = 'ban'): (target: IpTarget) => void {
    const interval = (t: IpTarget) => {
      const set = banSetOf(t);
      return set === 'net4' || set === 'net6';
    };
    const known: IpTarget[] = [];
    for (const r of this.records.values()) {
      if (!r.active || (r.expiresAt !== null && r.expiresAt <= now) || !r.target.includes('/')) continue;
      const t = parseTarget(r.target, { allowBroadPrefix: true });
      if (interval(t)) known.push(t);
    }
    return (t) => {
      if (!interval(t)) return;
      for (const other of known) {
        if (other.text !== t.text && overlaps(t, other)) {
          const advice =
            action === 'ban'
              ? `nftables interval sets cannot hold both — unban ${other.text} first, or ban only the broader range`
              : `${t.text} itself is not banned; unban ${other.text} instead`;
          throw new FirewallError(
            FirewallErrorCode.OVERLAP,
            `CIDR ${t.text} overlaps ${other.text}, which is banned or earlier in the same batch; ${advice}`,
            { details: { target: t.text, other: other.text } },
          );
        }
      }
      known.push(t);
    };
  }

  // ---- public operations ----------------------------------------------------------------------

  async backend(options: OperationOptions = {}): Promise<BackendName> {
    await this.exclusive(options.signal, () => this.resolve(options.signal));
    return this.backendName!;
  }

  init(options: OperationOptions = {}): Promise<ApplyResult> {
    return this.exclusive(options.signal, async () => {
      const driver = await this.resolve(options.signal);
      await this.load(driver, options.signal);
      const commands = await driver.init([this.allowChange(), this.portsChange()], options.signal);
      this.ready = true;
      return this.result(commands);
    });
  }

  destroy(options: OperationOptions = {}): Promise<ApplyResult> {
    return this.exclusive(options.signal, async () => {
      const driver = await this.resolve(options.signal);
      const commands = await driver.destroy(options.signal);
      this.ready = false;
      return this.result(commands);
    });
  }

  ban(target: string, options: BanOptions = {}): Promise<ApplyResult> {
    const req: BanRequest = { target };
    if (options.ttl !== undefined) req.ttl = options.ttl;
    if (options.reason !== undefined) req.reason = options.reason;
    return this.banMany([req], options);
  }

  banMany(requests: readonly BanRequest[], options: BanManyOptions = {}): Promise<ApplyResult> {
    return this.transact(options.signal, () => {
      const force = this.force(options.force);
      if (options.onInvalid !== undefined && options.onInvalid !== 'throw' && options.onInvalid !== 'skip') {
        throw invalidOption('onInvalid', options.onInvalid, "use 'throw' or 'skip'");
      }
      const skip = options.onInvalid === 'skip';
      const { elements, commit, skipped } = this.planBans(requests, force, skip);
      return { changes: elements.length > 0 ? [{ type: 'ban', elements }] : [], commit, skipped };
    });
  }

  private force(value: unknown): boolean {
    if (value === undefined) return false;
    if (value === 'broad-prefix') return true;
    throw invalidOption('force', value, "the only force option is 'broad-prefix'");
  }

  unban(target: string, options: OperationOptions = {}): Promise<ApplyResult> {
    return this.unbanMany([target], options);
  }

  unbanMany(targets: readonly string[], options: OperationOptions = {}): Promise<ApplyResult> {
    return this.transact(options.signal, () => {
      if (!Array.isArray(targets))
        throw invalidOption('targets', targets, 'pass an array of addresses or CIDRs');
      const parsed = new Map<string, IpTarget>();
      const overlap = this.dialect === 'nftables' ? this.overlapCheck(this.now(), 'unban') : undefined;
      for (const t of targets) {
        const target = parseTarget(t, { allowBroadPrefix: true });
        if (!parsed.has(target.text)) overlap?.(target);
        parsed.set(target.text, target);
      }
      return {
        changes: parsed.size > 0 ? [{ type: 'unban', targets: [...parsed.values()] }] : [],
        commit: () => {
          for (const key of parsed.keys()) {
            const r = this.records.get(key);
            if (r) r.active = false;
          }
        },
      };
    });
  }

  allow(target: string, options: OperationOptions & { force?: 'broad-prefix' } = {}): Promise<ApplyResult> {
    return this.allowMany([target], options);
  }

  allowMany(
    targets: readonly string[],
    options: OperationOptions & { force?: 'broad-prefix' } = {},
  ): Promise<ApplyResult> {
    return this.transact(options.signal, () => {
      const force = this.force(options.force);
      if (!Array.isArray(targets))
        throw invalidOption('targets', targets, 'pass an array of addresses or CIDRs');
      const parsed = targets.map((t) => parseTarget(t, { allowBroadPrefix: force }));
      const before = new Map(this.allows);
      for (const t of parsed) this.allows.set(t.text, t);
      const change = this.allowChange();
      this.allows = before;
      return {
        changes: [change],
        commit: () => {
          for (const t of parsed) this.allows.set(t.text, t);
        },
      };
    });
  }

  disallow(target: string, options: OperationOptions = {}): Promise<ApplyResult> {
    return this.transact(options.signal, () => {
      const t = parseTarget(target, { allowBroadPrefix: true });
      const before = new Map(this.allows);
      this.allows.delete(t.text);
      const change = this.allowChange();
      this.allows = before;
      return { changes: [change], commit: () => this.allows.delete(t.text) };
    });
  }

  private async portOp(
    port: unknown,
    protocol: unknown,
    options: PortRuleOptions & { action?: 'allow' | 'deny' },
    mode: 'allow' | 'deny' | 'remove',
  ): Promise<ApplyResult> {
    if (
      options.onShadowed !== undefined &&
      options.onShadowed !== 'throw' &&
      options.onShadowed !== 'apply'
    ) {
      throw invalidOption('onShadowed', options.onShadowed, "use 'throw' or 'apply'");
    }
    const warnings = mode === 'allow' ? await this.shadowCheck(port, protocol, options) : [];
    const result = await this.transact(options.signal, () => {
      const next = new Map(this.ports);
      if (mode === 'remove') {
        const actions = options.action === undefined ? (['allow', 'deny'] as const) : [options.action];
        for (const action of actions)
          next.delete(portKey(this.portRule(action, port, protocol, options.from)));
      } else {
        const rule = this.portRule(mode, port, protocol, options.from);
        if (mode === 'deny') this.assertPortNotSsh(rule);
        next.set(portKey(rule), rule);
      }
      return {
        changes: [{ type: 'set-ports', rules: [...next.values()] }],
        commit: () => {
          this.ports = next;
        },
      };
    });
    return warnings.length > 0 ? { ...result, warnings } : result;
  }

  /**
   * nftables: an accept in our table does not stop another table's drop at the same hook. Find input
   * base chains that drop by default and refuse (or, with `onShadowed: 'apply'`, warn) up front.
   */
  private async shadowCheck(
    port: unknown,
    protocol: unknown,
    options: PortRuleOptions,
  ): Promise<FirewallError[]> {
    const rule = this.portRule('allow', port, protocol, options.from);
    const drops = await this.exclusive(options.signal, async () => {
      const driver = await this.resolve(options.signal);
      return driver.inputDrops ? driver.inputDrops(options.signal) : [];
    });
    if (drops.length === 0) return [];
    const names = drops.map(
      (d) =>
        `table ${d.family} ${d.table} chain ${d.chain} (hook input, priority ${d.priority}, policy drop)`,
    );
    const error = new FirewallError(
      FirewallErrorCode.ALLOW_SHADOWED,
      `allowPort ${rule.port}/${rule.protocol} cannot open the port: ${names.join('; ')} drops it, and an nftables accept in table inet ${this.table} cannot override another table's drop; add an accept for the port to that chain, or pass onShadowed: 'apply' to add our rule anyway (it still overrides our own denyPort)`,
      { details: { port: rule.port, protocol: rule.protocol, chains: drops } },
    );
    if ((options.onShadowed ?? 'throw') === 'throw') throw error;
    return [error];
  }

  /** Denying the port of the current SSH session to its peer would lock us out. */
  private assertPortNotSsh(rule: PortRule): void {
    if (rule.protocol !== 'tcp' || !(this.opts.protectSshPeer ?? true)) return;
    const ssh = sshConnection(this.opts.env ?? process.env);
    if (!ssh || ssh.localPort !== rule.port) return;
    if (rule.from !== undefined && !overlaps(parseTarget(rule.from, { allowBroadPrefix: true }), ssh.peer))
      return;
    throw new FirewallError(
      FirewallErrorCode.LOCKOUT,
      `refusing to deny tcp port ${rule.port}: the current SSH session (peer ${ssh.peer.text}) uses it; add the peer to adminCidrs first, or deny only other sources with { from }`,
      { details: { port: rule.port, peer: ssh.peer.text } },
    );
  }

  allowPort(port: number | string, protocol: Protocol, options: PortRuleOptions = {}): Promise<ApplyResult> {
    return this.portOp(port, protocol, options, 'allow');
  }

  denyPort(port: number | string, protocol: Protocol, options: PortRuleOptions = {}): Promise<ApplyResult> {
    return this.portOp(port, protocol, options, 'deny');
  }

  removePortRule(
    port: number | string,
    protocol: Protocol,
    options: PortRuleOptions & { action?: 'allow' | 'deny' } = {},
  ): Promise<ApplyResult> {
    return this.portOp(port, protocol, options, 'remove');
  }

  list(options: OperationOptions = {}): Promise<BanInfo[]> {
    return this.exclusive(options.signal, async () => {
      const driver = await this.resolve(options.signal);
      await this.load(driver, options.signal);
      const now = this.now();
      const info = (target: IpTarget, ttlMs: number | null, fallbackReason: string): BanInfo => {
        const r = this.records.get(target.text);
        return {
          target: target.text,
          family: target.family,
          kind: target.kind,
          reason: r?.reason || fallbackReason,
          ttlMs,
          expiresAt: ttlMs === null ? null : now + ttlMs,
          offences: r?.offences ?? 1,
        };
      };
      const out: BanInfo[] = [];
      if (this.dry) {
        for (const r of this.records.values()) {
          if (!r.active || (r.expiresAt !== null && r.expiresAt <= now)) continue;
          out.push(
            info(
              parseTarget(r.target, { allowBroadPrefix: true }),
              r.expiresAt === null ? null : r.expiresAt - now,
              '',
            ),
          );
        }
      } else {
        for (const k of await driver.list(options.signal)) {
          out.push(info(k.target, k.expiresSec === null ? null : k.expiresSec * 1000, k.comment ?? ''));
        }
      }
      return out.sort((a, b) => (a.target < b.target ? -1 : a.target > b.target ? 1 : 0));
    });
  }

  flush(options: OperationOptions = {}): Promise<ApplyResult> {
    return this.transact(options.signal, () => ({
      changes: [
        { type: 'replace-bans', elements: [] },
        { type: 'set-allow', targets: collapse(this.admin) },
        { type: 'set-ports', rules: [] },
      ],
      commit: () => {
        for (const r of this.records.values()) r.active = false;
        this.allows.clear();
        this.ports.clear();
      },
    }));
  }

  restore(options: OperationOptions = {}): Promise<ApplyResult> {
    return this.exclusive(options.signal, async () => {
      const driver = await this.resolve(options.signal);
      const path = this.opts.stateFile;
      // Restoring from a file that is not there would silently restore nothing: say so instead.
      if (path !== undefined && (await readState(path)) === undefined) {
        throw new FirewallError(
          FirewallErrorCode.STATE_MISSING,
          `state file ${JSON.stringify(path)} does not exist, so there is nothing to restore; check the path (sock fw restore --state <file>)`,
          { details: { path } },
        );
      }
      const wasLoaded = this.loaded;
      await this.load(driver, options.signal);
      if (wasLoaded && path) {
        // Loaded earlier: the file may have been replaced since (e.g. copied back from a backup).
        const state = await readState(path);
        if (state) this.adopt(state);
      }
      const now = this.now();
      const check = createLockoutCheck(protectedTargets(this.opts, this.admin));
      const skipped: SkippedBan[] = [];
      const live = this.snapshot();
      for (const [key, r] of live.records) {
        if (!r.active || (r.expiresAt !== null && r.expiresAt <= now)) continue;
        try {
          const target = parseTarget(r.target, { allowBroadPrefix: true });
          assertBannable(target);
          check(target);
        } catch (error) {
          skipped.push({ target: r.target, error: error as FirewallError });
          // Left out of the kernel (and reported every time); the state file keeps what it said.
          live.records.delete(key);
        }
      }
      // One kernel transaction and no state write: the file already says what is applied.
      const commands = await driver.init(this.fullChanges(live, now), options.signal);
      this.ready = true;
      return this.result(commands, skipped.length > 0 ? skipped : undefined);
    });
  }
}

/**
 * Create a firewall that manages one table (nftables) or one chain plus ipsets (iptables) of its
 * own. Nothing runs until the first operation; every input is validated before any command.
 */
export function createFirewall(options: FirewallOptions = {}): Firewall {
  return new FirewallImpl(options);
}
