import type { Clock } from '@sock/core';
import { systemClock, unrefTimer } from '@sock/core/internal';
import { parseTarget } from './address.js';
import { MAX_DURATION_MS } from './duration.js';
import { FirewallError, FirewallErrorCode, quote } from './errors.js';
import type { BanRequest, Firewall } from './firewall.js';

/** What guards' ban hook hands over. */
export interface BanEvent {
  /** An IP address or CIDR (guards mask IPv6 to a prefix, e.g. /64). */
  key: string;
  /** How long the ban lasts in ms; `Infinity` = permanent. */
  durationMs: number;
  reason: string;
}

/** Options of {@link createBanBridge}. */
export interface BanBridgeOptions {
  /** Bans arriving within this many ms go to the kernel in one transaction. Default 100. */
  windowMs?: number;
  /** At most this many bans per second reach the firewall; the excess waits. Default 1000. */
  maxBansPerSecond?: number;
  /** Waiting bans beyond this are dropped (and counted). Default `maxBansPerSecond * 10`. */
  maxPending?: number;
  /** Called for every failed batch, skipped ban and dropped ban. Default: none (still counted in stats). */
  onError?: (error: FirewallError) => void;
  /** Where time is read (the per-second cap) and batches are timed. Default the system clock. (Was `now`.) */
  clock?: Clock;
}

/** Counters of a bridge: a synchronous snapshot of plain numbers (the metrics adapter reads it). */
export interface BanBridgeStats {
  /** Bans handed to the firewall and applied. */
  applied: number;
  /** Bans lost because the firewall failed them (a kernel or state-file failure, see onError). */
  failed: number;
  /** Unbans applied. */
  unbanned: number;
  /** Bans the firewall refused (invalid key, lockout, overlap). */
  rejected: number;
  /** Bans dropped because too many were waiting. */
  dropped: number;
  /** Transactions that failed (a failed batch of several bans is retried in halves, see `failed`). */
  failedBatches: number;
  /** Transactions run. */
  batches: number;
  /** Bans and unbans waiting for the next window. */
  pending: number;
}

/** The adapter guards call. `onBan`/`onUnban` never throw and return at once. */
export interface BanBridge {
  /** Queue the ban of `event.key` for `event.durationMs` (applied in batches). */
  onBan(event: BanEvent): void;
  /** Queue lifting the ban of `event.key`. */
  onUnban(event: Pick<BanEvent, 'key'> & Partial<BanEvent>): void;
  /** Apply everything waiting now (still capped per second); resolves when that batch is done. */
  flush(): Promise<void>;
  /** Stop the timer and apply what is waiting (within the cap); later events are ignored. */
  close(): Promise<void>;
  /** Counters for metrics: batches, applied, failed, pending. */
  stats(): BanBridgeStats;
}

function positiveInt(name: string, value: number): number {
  if (!Number.isInteger(value) || value <= 0) {
    throw new FirewallError(
      FirewallErrorCode.INVALID_OPTION,
      `invalid ${name} ${quote(value)}: pass a positive integer`,
    );
  }
  return value;
}

/**
 * Turn guards' ban hook into firewall bans: bans that arrive within `windowMs` are coalesced
 * (one per key, the last wins) into one `banMany` transaction, at most `maxBansPerSecond` per
 * second. Invalid or protected keys are skipped, not fatal to the batch.
 */
export function createBanBridge(firewall: Firewall, options: BanBridgeOptions = {}): BanBridge {
  const windowMs = positiveInt('windowMs', options.windowMs ?? 100);
  const perSecond = positiveInt('maxBansPerSecond', options.maxBansPerSecond ?? 1000);
  const maxPending = positiveInt('maxPending', options.maxPending ?? perSecond * 10);
  const clock = options.clock ?? systemClock;
  const now = () => clock.now();
  const report = (error: FirewallError) => {
    try {
      options.onError?.(error);
    } catch {
      // A throwing error hook must not break the bridge; the error is already counted.
    }
  };
  const bans = new Map<string, BanRequest>();
  const unbans = new Set<string>();
  const stats = { applied: 0, failed: 0, unbanned: 0, rejected: 0, dropped: 0, failedBatches: 0, batches: 0 };
  let tokens = perSecond;
  let refilledAt = now();
  /** A handle of `clock`. */
  let timer: unknown;
  let running: Promise<void> = Promise.resolve();
  let closed = false;

  const schedule = (delay = windowMs) => {
    if (timer !== undefined || closed) return;
    timer = clock.setTimeout(() => {
      timer = undefined;
      void drain();
    }, delay);
    unrefTimer(timer);
  };

  const take = (): BanRequest[] => {
    const t = now();
    tokens = Math.min(perSecond, tokens + ((t - refilledAt) * perSecond) / 1000);
    refilledAt = t;
    const n = Math.min(bans.size, Math.floor(tokens));
    const out: BanRequest[] = [];
    for (const [key, req] of bans) {
      if (out.length >= n) break;
      out.push(req);
      bans.delete(key);
    }
    tokens -= out.length;
    return out;
  };

  /**
   * One transaction for the batch. Invalid, protected and unbannable keys are skipped up front; if the
   * kernel still refuses the batch (one element it will not take), it is retried in halves, so one bad
   * ban costs itself and a few extra transactions, never the rest of the batch.
   */
  const apply = async (batch: BanRequest[]): Promise<void> => {
    stats.batches++;
    try {
      const result = await firewall.banMany(batch, { onInvalid: 'skip' });
      const skipped = result.skipped ?? [];
      stats.rejected += skipped.length;
      stats.applied += batch.length - skipped.length;
      for (const s of skipped) report(s.error);
    } catch (e) {
      stats.failedBatches++;
      const retry = FirewallError.isInstance(e) && e.code === FirewallErrorCode.COMMAND_FAILED;
      if (batch.length > 1 && retry) {
        const half = Math.ceil(batch.length / 2);
        await apply(batch.slice(0, half));
        await apply(batch.slice(half));
        return;
      }
      stats.failed += batch.length;
      report(e as FirewallError);
    }
  };

  const drain = (): Promise<void> => {
    running = running.then(async () => {
      const lift = [...unbans];
      unbans.clear();
      const batch = take();
      if (lift.length > 0) {
        stats.batches++;
        try {
          await firewall.unbanMany(lift);
          stats.unbanned += lift.length;
        } catch (e) {
          stats.failedBatches++;
          report(e as FirewallError);
        }
      }
      if (batch.length > 0) await apply(batch);
      // Bans held back by the cap go in a later window, when tokens have refilled.
      if (bans.size > 0) schedule(Math.max(windowMs, Math.ceil(1000 / perSecond)));
    });
    return running;
  };

  return {
    onBan(event) {
      if (closed) return;
      const key = typeof event?.key === 'string' ? event.key : String(event?.key);
      let ttl: number | 'permanent';
      const d = event?.durationMs;
      if (d === Number.POSITIVE_INFINITY) ttl = 'permanent';
      else if (typeof d === 'number' && d > 0) ttl = Math.min(d, MAX_DURATION_MS);
      else {
        stats.rejected++;
        report(
          new FirewallError(
            FirewallErrorCode.INVALID_DURATION,
            `ban of ${quote(key)} has durationMs ${quote(d)}; guards must send a positive number of ms`,
          ),
        );
        return;
      }
      if (!bans.has(key) && bans.size >= maxPending) {
        stats.dropped++;
        report(
          new FirewallError(
            FirewallErrorCode.RATE_LIMITED,
            `ban of ${quote(key)} dropped: ${maxPending} bans are already waiting (maxPending); raise maxBansPerSecond or maxPending`,
          ),
        );
        return;
      }
      unbans.delete(key);
      bans.set(key, { target: key, ttl, reason: typeof event.reason === 'string' ? event.reason : '' });
      schedule();
    },
    onUnban(event) {
      if (closed) return;
      const key = typeof event?.key === 'string' ? event.key : String(event?.key);
      try {
        parseTarget(key, { allowBroadPrefix: true });
      } catch (e) {
        stats.rejected++;
        report(e as FirewallError);
        return;
      }
      bans.delete(key);
      unbans.add(key);
      schedule();
    },
    flush() {
      if (timer !== undefined) {
        clock.clearTimeout(timer);
        timer = undefined;
      }
      return drain();
    },
    async close() {
      closed = true;
      if (timer !== undefined) {
        clock.clearTimeout(timer);
        timer = undefined;
      }
      await drain();
    },
    stats: () => ({ ...stats, pending: bans.size + unbans.size }),
  };
}
