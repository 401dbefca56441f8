import type { ConnectionControl, Stage } from '@sock/core';
import { unrefTimer } from '@sock/core/internal';
import { GUARDS_PLUGIN, type GuardContext, guardConn, rejection } from './guard-context.js';
import type { Checker, ResolvedPolicy } from './policy.js';
import { GuardReason } from './reasons.js';

/** One re-armed timer per connection and the counters it last saw (kept in the connection's GuardConn). */
export interface Deadlines {
  /** A handle of `conn.clock`. */
  timer: unknown;
  firstFrameBy: number;
  lifetimeEnd: number;
  idleAt: number;
  lastBytes: number;
  rateAt: number;
  rateBytes: number;
  rateFrames: number;
  /** Shadow-mode timeouts already reported, by bit. */
  reported: number;
}

const T_FIRST_FRAME = 1;
const T_IDLE = 2;
const T_LIFETIME = 4;
const T_MINRATE = 8;

function hasTimeouts(p: ResolvedPolicy): boolean {
  const t = p.timeouts;
  return t.firstFrameMs > 0 || t.idleMs > 0 || t.lifetimeMs > 0 || t.minRate !== undefined;
}

/**
 * @internal Deadlines (section `timeouts`): the first complete frame, idleness, lifetime and a minimum byte
 * rate for a frame being trickled (slowloris). One timer per connection, re-armed for the next deadline;
 * the connection's counters are read when it fires, never per read.
 */
export class Timeouts {
  constructor(private readonly ctx: GuardContext) {}

  start(conn: ConnectionControl): void {
    if (!hasTimeouts(this.ctx.policy)) return;
    const owner = guardConn(conn);
    if (!owner) return;
    const t = this.ctx.policy.timeouts;
    const now = conn.clock.now();
    const state: Deadlines = {
      timer: undefined,
      // Deadlines count from accept on the server's clock (the PROXY header has its own deadline).
      firstFrameBy: t.firstFrameMs > 0 ? now + t.firstFrameMs : 0,
      lifetimeEnd: t.lifetimeMs > 0 ? now + t.lifetimeMs : 0,
      idleAt: t.idleMs > 0 ? now + t.idleMs : 0,
      lastBytes: conn.stats.bytesIn,
      rateAt: now,
      rateBytes: conn.stats.bytesIn,
      rateFrames: conn.stats.framesIn,
      reported: 0,
    };
    owner.deadlines = state;
    this.arm(conn, state, now);
  }

  close(conn: ConnectionControl): void {
    const owner = guardConn(conn);
    const state = owner?.deadlines;
    if (!state) return;
    owner.deadlines = undefined;
    if (state.timer !== undefined) conn.clock.clearTimeout(state.timer);
  }

  private arm(conn: ConnectionControl, state: Deadlines, now: number): void {
    const t = this.ctx.policy.timeouts;
    let next = Number.POSITIVE_INFINITY;
    const off = state.reported;
    if (state.firstFrameBy > 0 && !(off & T_FIRST_FRAME) && conn.stats.framesIn === 0)
      next = state.firstFrameBy;
    if (state.lifetimeEnd > 0 && !(off & T_LIFETIME)) next = Math.min(next, state.lifetimeEnd);
    if (state.idleAt > 0 && !(off & T_IDLE)) next = Math.min(next, state.idleAt);
    if (t.minRate && !(off & T_MINRATE)) next = Math.min(next, state.rateAt + t.minRate.graceMs);
    if (next === Number.POSITIVE_INFINITY) return;
    const timer = conn.clock.setTimeout(() => this.onTimer(conn, state), Math.max(0, next - now));
    unrefTimer(timer);
    state.timer = timer;
  }

  private onTimer(conn: ConnectionControl, state: Deadlines): void {
    state.timer = undefined;
    if (conn.closing) return;
    const t = this.ctx.policy.timeouts;
    const now = conn.clock.now();
    const { bytesIn, framesIn } = conn.stats;
    const off = state.reported;
    if (state.lifetimeEnd > 0 && !(off & T_LIFETIME) && now >= state.lifetimeEnd) {
      if (
        this.timeout(
          conn,
          state,
          T_LIFETIME,
          GuardReason.LIFETIME,
          'frame',
          `open longer than ${t.lifetimeMs}ms`,
        )
      )
        return;
    }
    if (state.firstFrameBy > 0 && !(off & T_FIRST_FRAME) && framesIn === 0 && now >= state.firstFrameBy) {
      // The reason keeps its old name: metrics and strike weights key on it.
      const message = `no complete frame within ${t.firstFrameMs}ms`;
      if (this.timeout(conn, state, T_FIRST_FRAME, GuardReason.HANDSHAKE_TIMEOUT, 'handshake', message))
        return;
    }
    if (state.idleAt > 0) {
      if (bytesIn !== state.lastBytes) {
        state.lastBytes = bytesIn;
        state.idleAt = now + t.idleMs;
      } else if (!(off & T_IDLE) && now >= state.idleAt) {
        if (
          this.timeout(
            conn,
            state,
            T_IDLE,
            GuardReason.IDLE_TIMEOUT,
            'frame',
            `nothing received for ${t.idleMs}ms`,
          )
        )
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
        if (this.timeout(conn, state, T_MINRATE, GuardReason.MIN_RATE, 'frame', message)) return;
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
    state: Deadlines,
    bit: number,
    reason: GuardReason,
    stage: Stage,
    message: string,
  ): boolean {
    // The key lives on the connection's GuardConn, which holds these deadlines.
    const key = guardConn(conn)?.key ?? conn.remoteAddress;
    const r = rejection('timeouts', reason, key, message, this.ctx.policy.timeouts.shadow);
    if (r.shadow) {
      state.reported |= bit;
      conn.report(r, stage, GUARDS_PLUGIN);
      return false;
    }
    conn.reject(r, stage, GUARDS_PLUGIN);
    return true;
  }
}

/** The `timeouts` section (`handshake` is the old name of `firstFrame`). */
export function resolveTimeouts(c: Checker, input: unknown): ResolvedPolicy['timeouts'] {
  const t = c.section(input, ['timeouts'], [
    'firstFrame',
    'handshake',
    'idle',
    'lifetime',
    'minRate',
    'shadow',
  ] as const);
  let minRate: ResolvedPolicy['timeouts']['minRate'] = { bytesPerSecond: 128, graceMs: 10_000 };
  if (t.minRate === false) minRate = undefined;
  else if (t.minRate !== undefined) {
    const m = c.section(t.minRate, ['timeouts', 'minRate'], ['bytesPerSecond', 'grace'] as const);
    if (m.bytesPerSecond === undefined) c.fail(['timeouts', 'minRate', 'bytesPerSecond'], 'required');
    minRate = {
      bytesPerSecond: c.number(m.bytesPerSecond, ['timeouts', 'minRate', 'bytesPerSecond'], 128, { min: 1 }),
      graceMs: c.duration(m.grace, ['timeouts', 'minRate', 'grace'], 10_000),
    };
    if (minRate.graceMs <= 0) c.fail(['timeouts', 'minRate', 'grace'], 'must be more than 0');
  }
  if (t.firstFrame !== undefined && t.handshake !== undefined)
    c.fail(['timeouts', 'handshake'], 'the old name of firstFrame: set one of them, not both');
  return {
    firstFrameMs:
      t.handshake !== undefined
        ? c.duration(t.handshake, ['timeouts', 'handshake'], 10_000, true)
        : c.duration(t.firstFrame, ['timeouts', 'firstFrame'], 10_000, true),
    idleMs: c.duration(t.idle, ['timeouts', 'idle'], 300_000, true),
    lifetimeMs: c.duration(t.lifetime, ['timeouts', 'lifetime'], 0, true),
    minRate,
    shadow: c.bool(t.shadow, ['timeouts', 'shadow'], false),
  };
}
