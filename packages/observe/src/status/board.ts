import type { ListenerFigures, SockMetrics } from '../collector.js';
import { guardsSource, readStats } from '../components.js';
import type { TopKey } from '../top-keys.js';
import { createRing } from './ring.js';

/** One point of history: figures over the sampling interval that ended at `t`. */
export interface StatusSample {
  /** Clock time (ms). */
  readonly t: number;
  /** Connections open at `t`, over all listeners. */
  readonly open: number;
  /** Connections opened during the interval. */
  readonly opened: number;
  /** Refusals that closed a connection or dropped a datagram during the interval, by reason. */
  readonly rejected: Readonly<Record<string, number>>;
}

/** What `/status.json` returns (and the page shows). */
export interface StatusReport {
  readonly now: number;
  readonly startedAt: number;
  readonly sampleEveryMs: number;
  readonly totals: {
    readonly opened: number;
    readonly open: number;
    readonly closed: number;
    readonly rejected: number;
    readonly reported: number;
  };
  readonly listeners: readonly ListenerFigures[];
  /** Refusals since start, by reason (closed connections and dropped datagrams). */
  readonly rejectedByReason: Readonly<Record<string, number>>;
  readonly history: readonly StatusSample[];
  readonly topKeys: readonly TopKey[];
  readonly bans: ReadonlyArray<{
    key: string;
    until: number;
    secondsLeft: number;
    offences?: number | undefined;
  }>;
  readonly bansActive: number | undefined;
  readonly certificates: ReadonlyArray<{ subject: string; notAfter: number; secondsLeft: number }>;
  /** Components' own `stats()` as they are now. */
  readonly components: Readonly<Record<string, unknown>>;
}

export interface StatusBoardOptions {
  /** Sampling interval of the history (ms). Default 1000. */
  sampleEveryMs?: number;
  /** Samples kept (a ring buffer). Default 600: ten minutes at one per second. */
  historySize?: number;
  /** Bans listed (soonest to expire last). Default 50. */
  maxBans?: number;
  /** Top keys listed. Default 10. */
  topKeys?: number;
  now?: () => number;
}

export interface StatusBoard {
  report(): Promise<StatusReport>;
  /** Take one sample now (the timer does it every `sampleEveryMs`). */
  sample(): void;
  close(): void;
}

/** Bounded history of a collector's figures, sampled on a timer, for the status page. */
export function createStatusBoard(metrics: SockMetrics, options: StatusBoardOptions = {}): StatusBoard {
  const now = options.now ?? Date.now;
  const sampleEveryMs = options.sampleEveryMs ?? 1000;
  const history = createRing<StatusSample>(options.historySize ?? 600);
  const startedAt = now();
  let lastOpened = 0;
  let lastRejected: Record<string, number> = {};
  const sample = () => {
    const figures = metrics.listeners();
    const opened = figures.reduce((n, f) => n + f.opened, 0);
    const open = figures.reduce((n, f) => n + f.open, 0);
    const byReason = metrics.refusals();
    const delta: Record<string, number> = {};
    for (const [r, n] of Object.entries(byReason)) {
      const d = n - (lastRejected[r] ?? 0);
      if (d > 0) delta[r] = d;
    }
    history.push({ t: now(), open, opened: opened - lastOpened, rejected: delta });
    lastOpened = opened;
    lastRejected = byReason;
  };
  sample();
  const timer = setInterval(sample, sampleEveryMs);
  timer.unref();

  return {
    sample,
    close() {
      clearInterval(timer);
    },
    async report() {
      const t = now();
      const listeners = metrics.listeners();
      const sum = (k: 'opened' | 'open' | 'closed' | 'rejected' | 'reported') =>
        listeners.reduce((n, f) => n + f[k], 0);
      const components: Record<string, unknown> = {};
      for (const [kind, source] of Object.entries(metrics.components)) {
        try {
          components[kind] = readStats(source) ?? null;
        } catch (err) {
          components[kind] = { error: (err as Error).message };
        }
      }
      const guards = guardsSource(metrics.components.guards);
      const snap = guards?.snapshot ? await guards.snapshot() : undefined;
      const active = snap?.bans?.active ?? [];
      const bans = [...active]
        .sort((a, b) => b.until - a.until)
        .slice(0, options.maxBans ?? 50)
        .map((b) => ({
          key: b.key,
          until: b.until,
          secondsLeft: Math.max(0, Math.round((b.until - t) / 1000)),
          offences: b.offences,
        }));
      const tls = components.tls as
        | { certificates?: Array<{ subject: string; notAfter: number }> }
        | null
        | undefined;
      const certificates = (tls?.certificates ?? []).map((c) => ({
        subject: c.subject,
        notAfter: c.notAfter,
        secondsLeft: Math.round((c.notAfter - t) / 1000),
      }));
      const guardStats = components.guards as { bansActive?: number } | null | undefined;
      return {
        now: t,
        startedAt,
        sampleEveryMs,
        totals: {
          opened: sum('opened'),
          open: sum('open'),
          closed: sum('closed'),
          rejected: sum('rejected'),
          reported: sum('reported'),
        },
        listeners,
        rejectedByReason: metrics.refusals(),
        history: history.toArray(),
        topKeys: metrics.topKeys(options.topKeys ?? 10),
        bans,
        bansActive: guardStats?.bansActive ?? (snap ? active.length : undefined),
        certificates,
        components,
      };
    },
  };
}
