/**
 * @sock/observe/pino: one structured log line per decision (open, close, refusal, ban, error) with
 * stable field names, under a line budget per interval so that an attack cannot flood the log: lines
 * past the budget are counted, and one summary line per interval says what was left out.
 *
 * ```ts
 * const log = decisionLog(pino());
 * createServer({ observers: [log.observer], … });
 * ```
 */
import { type Observer, parseDuration, SockError, SockErrorCode, type SockEvent } from '@sock/core';
import type { Level, Logger } from 'pino';
import { labelCap } from './label-cap.js';

export interface DecisionLogOptions {
  /** Lines written per interval; the rest are counted in the summary. Default 50. */
  maxLines?: number;
  /** The interval of the budget and of summary lines: ms or a duration string. Default `10s`. */
  interval?: number | string;
  /** Write open and close lines (level info). Default true. */
  connections?: boolean;
  /** Names the listener in every line (`listener` field). Default none. */
  listener?: string;
}

/** What guards' `onBan` hands over. */
export interface BanInfo {
  readonly key: string;
  readonly reason: string;
  readonly durationMs: number;
  readonly offences?: number;
}

export interface DecisionLog {
  /** For a server's (or UDP socket's) `observers`. */
  readonly observer: Observer;
  /** Log a ban (call it from guards' `onBan`). */
  ban(event: BanInfo): void;
  /** Write the summary of suppressed lines now (if any). */
  flush(): void;
  /** Flush and stop the interval timer. */
  close(): void;
}

const ORDER: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };

/**
 * Field names (stable; dashboards and alerts may key on them): `event` (`open`, `close`, `reject`,
 * `report`, `ban`, `error`, `suppressed`), `listener`, `conn` (connection id), `peer` (`address:port`),
 * `transport`, `reason`, `stage`, `plugin`, `key`, `code`, `durationMs`, `offences`, `bytesIn`,
 * `bytesOut`; the summary has `suppressed` (lines left out), `byEvent`, `byReason` and `intervalMs`.
 */
export function decisionLog(logger: Logger, options: DecisionLogOptions = {}): DecisionLog {
  const maxLines = options.maxLines ?? 50;
  if (!Number.isInteger(maxLines) || maxLines < 0) {
    throw new SockError(
      SockErrorCode.INVALID_OPTION,
      `decisionLog: maxLines must be an integer ≥ 0, got ${String(maxLines)}`,
    );
  }
  const intervalMs = parseDuration(options.interval ?? '10s', 'decisionLog interval');
  if (intervalMs < 1) {
    throw new SockError(SockErrorCode.INVALID_OPTION, 'decisionLog: interval must be at least 1 ms');
  }
  const base = options.listener === undefined ? {} : { listener: options.listener };
  const withConnections = options.connections ?? true;
  // Reasons in the summary are bounded like metric labels: a flood of odd reasons adds one `other`.
  const reasonOf = labelCap(64);
  let written = 0;
  let suppressed = 0;
  let worst = 0;
  let byEvent: Record<string, number> = {};
  let byReason: Record<string, number> = {};

  const write = (level: Level, event: string, fields: Record<string, unknown>, msg: string) => {
    if (!logger.isLevelEnabled(level)) return;
    if (written < maxLines) {
      written++;
      logger[level]({ event, ...base, ...fields }, msg);
      return;
    }
    suppressed++;
    worst = Math.max(worst, ORDER[level] ?? 30);
    byEvent[event] = (byEvent[event] ?? 0) + 1;
    if (typeof fields.reason === 'string') {
      const r = reasonOf(fields.reason);
      byReason[r] = (byReason[r] ?? 0) + 1;
    }
  };

  const flush = () => {
    if (suppressed > 0) {
      const level = (Object.keys(ORDER).find((k) => ORDER[k] === worst) ?? 'info') as Level;
      logger[level](
        { event: 'suppressed', ...base, suppressed, byEvent, byReason, intervalMs },
        `${suppressed} log lines suppressed in the last ${intervalMs} ms (more than ${maxLines} per interval)`,
      );
    }
    written = 0;
    suppressed = 0;
    worst = 0;
    byEvent = {};
    byReason = {};
  };
  const timer = setInterval(flush, intervalMs);
  timer.unref();

  const observer: Observer = (e: SockEvent) => {
    // Opens and closes are every connection's: at a level that writes no info line (the CLI's default,
    // warn), they cost one check, not a line's fields.
    if ((e.type === 'open' || e.type === 'close') && !logger.isLevelEnabled('info')) return;
    switch (e.type) {
      case 'open':
        if (withConnections)
          write('info', 'open', { conn: e.conn.id, peer: peer(e.conn), transport: e.conn.transport }, 'open');
        return;
      case 'close':
        if (withConnections)
          write(
            'info',
            'close',
            {
              conn: e.conn.id,
              peer: peer(e.conn),
              reason: e.reason,
              bytesIn: e.conn.stats.bytesIn,
              bytesOut: e.conn.stats.bytesOut,
            },
            'close',
          );
        return;
      case 'reject':
        write(
          'info',
          e.closed ? 'reject' : 'report',
          {
            conn: e.conn.id,
            peer: peer(e.conn),
            stage: e.stage,
            plugin: e.plugin,
            reason: e.reason,
            key: e.key,
            code: e.error?.code,
          },
          oneLine(e.message) ?? (e.closed ? 'rejected' : 'reported'),
        );
        return;
      case 'error':
        write(
          'error',
          'error',
          { conn: e.conn?.id, code: e.error.code, reason: e.error.reason },
          oneLine(e.error.message) ?? 'error',
        );
        return;
      default:
        return;
    }
  };

  return {
    observer,
    ban(e) {
      write(
        'warn',
        'ban',
        { key: e.key, reason: e.reason, durationMs: e.durationMs, offences: e.offences },
        'banned',
      );
    },
    flush,
    close() {
      clearInterval(timer);
      flush();
    },
  };
}

function peer(conn: { remoteAddress: string; remotePort: number }): string {
  return conn.remoteAddress.includes(':')
    ? `[${conn.remoteAddress}]:${conn.remotePort}`
    : `${conn.remoteAddress}:${conn.remotePort}`;
}

/**
 * OpenSSL's messages end in a newline and may carry several lines: a log line stays one line (a
 * pretty printer would otherwise print two per refused handshake) and at most 300 characters.
 */
function oneLine(message: string | undefined): string | undefined {
  if (message === undefined) return undefined;
  const line = message.replace(/\s*[\r\n]+\s*/g, ' ').trim();
  return line.length > 300 ? `${line.slice(0, 299)}…` : line || undefined;
}
