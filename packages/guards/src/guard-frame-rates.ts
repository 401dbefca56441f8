import { type ConnectionControl, toSockError, type Verdict } from '@sock/core';
import { GUARDS_PLUGIN, type GuardConn, type GuardContext, guardConn, rejection } from './guard-context.js';
import type { Checker, ExceedAction, ResolvedPolicy, ResolvedRate } from './policy.js';
import { GuardReason } from './reasons.js';

/** Whether a policy has any per-frame limit (a pipeline without one gets no frame hook at all). */
export function hasFrameRates(p: ResolvedPolicy): boolean {
  const r = p.rates;
  return !!(r.messagesPerConnection || r.bytesPerConnection || r.messagesPerKey || r.bytesPerKey);
}

/**
 * @internal Message and byte rates per connection and per key, on each frame (section `rates`). Message
 * excess acts per `rates.onExceed`; byte excess shapes by default (`rates.bytes.onExceed`, `pause`) and
 * weighs no strike: a fast legitimate client exceeds a byte rate, an abusive one is held back.
 */
export class FrameRates {
  constructor(private readonly ctx: GuardContext) {}

  frame(conn: ConnectionControl, frame: Buffer): Verdict {
    const state = guardConn(conn);
    if (state === undefined) return undefined;
    const key = state.key;
    const r = this.ctx.policy.rates;
    const now = this.ctx.now();
    const m = r.messagesPerConnection;
    if (m) {
      const wait = localTake(state, 'tatMessages', 1, m, now);
      if (wait > 0) return this.exceeded(conn, key, GuardReason.RATE_MESSAGES, wait, r.onExceed);
      // Shaping: the budget is spent, so the next frame waits — paused now, before it is decoded (core
      // stops decoding mid-read on a pause, so frames that arrived in the same read wait too).
      if (r.onExceed === 'pause' && !r.shadow)
        this.shape(conn, GuardReason.RATE_MESSAGES, wait + m.emissionMs, key);
    }
    const b = r.bytesPerConnection;
    if (b) {
      const wait = localTake(state, 'tatBytes', frame.length, b, now);
      if (wait > 0) return this.exceeded(conn, key, GuardReason.RATE_BYTES, wait, r.bytesOnExceed);
    }
    if (r.messagesPerKey) {
      const v = this.keyTake(
        conn,
        key,
        'messages',
        1,
        r.messagesPerKey,
        now,
        GuardReason.RATE_MESSAGES_IP,
        r.onExceed,
      );
      if (v) return v;
    }
    if (r.bytesPerKey) {
      const v = this.keyTake(
        conn,
        key,
        'bytes',
        frame.length,
        r.bytesPerKey,
        now,
        GuardReason.RATE_BYTES_IP,
        r.bytesOnExceed,
      );
      if (v) return v;
    }
    return undefined;
  }

  /** Pause reading until the next unit of budget is due (nothing when it is due now). */
  private shape(conn: ConnectionControl, reason: string, dueMs: number, key: string): void {
    if (dueMs <= 0) return;
    const wait = Math.ceil(dueMs);
    if (wait > this.ctx.policy.rates.maxPauseMs) return;
    conn.pauseReading(wait);
    conn.report(
      {
        reason: GuardReason.THROTTLED,
        key,
        message: `rates: ${reason} budget spent, reading paused ${wait}ms`,
      },
      'frame',
      GUARDS_PLUGIN,
    );
  }

  private keyTake(
    conn: ConnectionControl,
    key: string,
    table: string,
    cost: number,
    rate: ResolvedRate,
    now: number,
    reason: GuardReason,
    action: ExceedAction,
  ): Verdict {
    const wait = this.ctx.store.take(table, key, cost, rate.emissionMs, rate.burst, now);
    if (wait instanceof Promise) {
      // A shared store answers later: act on the connection then (one frame late).
      wait.then(
        (w) => {
          if (w > 0 && !conn.closing) {
            const v = this.exceeded(conn, key, reason, w, action);
            if (v) conn.reject(v, 'frame', GUARDS_PLUGIN);
          }
        },
        (err) => this.ctx.error(toSockError(err, 'store take')),
      );
      return undefined;
    }
    return wait > 0 ? this.exceeded(conn, key, reason, wait, action) : undefined;
  }

  private exceeded(
    conn: ConnectionControl,
    key: string,
    reason: GuardReason,
    waitMs: number,
    action: ExceedAction,
  ): Verdict {
    const r = this.ctx.policy.rates;
    const wait = Math.ceil(waitMs);
    const rej = rejection('rates', reason, key, `over the limit; tokens due in ${wait}ms`, r.shadow);
    if (rej.shadow) {
      conn.report(rej, 'frame', GUARDS_PLUGIN);
      return undefined;
    }
    if (action === 'tarpit') return { ...rej, tarpitMs: r.tarpitMs };
    if (action === 'pause' && wait <= r.maxPauseMs) {
      conn.pauseReading(wait);
      conn.report(
        { ...rej, reason: GuardReason.THROTTLED, message: `rates: ${reason}, reading paused ${wait}ms` },
        'frame',
        GUARDS_PLUGIN,
      );
      return undefined;
    }
    return rej;
  }
}

/** GCRA on the connection's own state. The frame is already read, so it is always charged. */
function localTake(
  state: GuardConn,
  field: 'tatMessages' | 'tatBytes',
  cost: number,
  rate: ResolvedRate,
  now: number,
): number {
  const tat = Math.max(state[field], now) + cost * rate.emissionMs;
  state[field] = tat;
  return tat - now - rate.burst * rate.emissionMs;
}

/** The `rates` section (connection and datagram rates included: admission and datagrams read them). */
export function resolveRates(c: Checker, input: unknown): ResolvedPolicy['rates'] {
  const rates = c.section(input, ['rates'], [
    'connections',
    'messages',
    'bytes',
    'datagrams',
    'onExceed',
    'tarpit',
    'maxPause',
    'shadow',
  ] as const);
  const messages = c.section(rates.messages, ['rates', 'messages'], ['perConnection', 'perKey'] as const);
  const bytes = c.section(rates.bytes, ['rates', 'bytes'], ['perConnection', 'perKey', 'onExceed'] as const);
  const datagrams = c.section(rates.datagrams, ['rates', 'datagrams'], ['perKey', 'bytesPerKey'] as const);
  const actions = ['close', 'tarpit', 'pause'] as const;
  return {
    connections: c.rate(rates.connections, ['rates', 'connections'], { rate: 10, burst: 20 }),
    messagesPerConnection: c.rate(messages.perConnection, ['rates', 'messages', 'perConnection'], {
      rate: 1000,
      burst: 2000,
    }),
    messagesPerKey: c.rate(messages.perKey, ['rates', 'messages', 'perKey'], false),
    bytesPerConnection: c.rate(bytes.perConnection, ['rates', 'bytes', 'perConnection'], {
      rate: 1 << 20,
      burst: 4 << 20,
    }),
    bytesPerKey: c.rate(bytes.perKey, ['rates', 'bytes', 'perKey'], false),
    datagramsPerKey: c.rate(datagrams.perKey, ['rates', 'datagrams', 'perKey'], { rate: 200, burst: 400 }),
    datagramBytesPerKey: c.rate(datagrams.bytesPerKey, ['rates', 'datagrams', 'bytesPerKey'], {
      rate: 1 << 20,
      burst: 2 << 20,
    }),
    onExceed: c.oneOf(rates.onExceed, ['rates', 'onExceed'], actions, 'pause'),
    bytesOnExceed: c.oneOf(bytes.onExceed, ['rates', 'bytes', 'onExceed'], actions, 'pause'),
    tarpitMs: c.duration(rates.tarpit, ['rates', 'tarpit'], 5000),
    maxPauseMs: c.duration(rates.maxPause, ['rates', 'maxPause'], 5000),
    shadow: c.bool(rates.shadow, ['rates', 'shadow'], false),
  };
}
