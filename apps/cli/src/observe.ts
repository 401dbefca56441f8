/**
 * `sock listen`'s observability: --metrics (Prometheus), --log (decision lines, rate-limited), --status
 * (the live page), all rendered by @sock/observe from one collector.
 */
import { type Observer, type Plugin, SockError, SockErrorCode } from '@sock/core';
import { type Components, createSockMetrics, type SockMetrics } from '@sock/observe';
import { type BanInfo, decisionLog } from '@sock/observe/pino';
import { prometheusMetrics, serveMetrics } from '@sock/observe/prometheus';
import { serveStatus } from '@sock/observe/status';
import type { Command } from 'commander';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import { UsageError } from './errors.js';
import { parseHostPort } from './parse.js';

export interface ObserveFlags {
  metrics?: string;
  status?: string;
  statusToken?: string;
  statusAllowRemote?: boolean;
}

export function addObserveFlags(cmd: Command): void {
  cmd
    .option('--metrics <host:port>', 'serve Prometheus metrics at http://host:port/metrics')
    .option(
      '--status <host:port>',
      'serve a live status page at http://host:port/ (loopback only by default)',
    )
    .option('--status-token <token>', 'require this bearer token for the status data (or SOCK_STATUS_TOKEN)')
    .option(
      '--status-allow-remote',
      'let --status bind a non-loopback address (it shows attackers and limits)',
    );
}

export interface Observe {
  readonly observers: Observer[];
  /** The handshake-timing plug-in when --metrics or --status asks for it (none costs no pipeline hook). */
  readonly plugins: Plugin[];
  readonly metrics: SockMetrics;
  ban(e: BanInfo): void;
  /** Start the HTTP endpoints; returns the summary parts and URLs. */
  serve(): Promise<{ summary: string[]; metricsUrl?: string; statusUrl?: string }>;
  close(): Promise<void>;
}

export function startObserve(flags: ObserveFlags, log: Logger, components: Components): Observe {
  const metricsAt = flags.metrics === undefined ? undefined : parseHostPort(flags.metrics, '--metrics');
  const statusAt = flags.status === undefined ? undefined : parseHostPort(flags.status, '--status');
  const token = flags.statusToken ?? process.env.SOCK_STATUS_TOKEN;
  if (token !== undefined && !statusAt) throw new UsageError('--status-token goes with --status <host:port>');
  const registry = new Registry();
  const metrics = metricsAt ? prometheusMetrics(registry, { components }) : createSockMetrics({ components });
  const decisions = decisionLog(log);
  const closers: Array<() => Promise<void>> = [];
  return {
    // Without --metrics or --status nobody reads the figures: no per-connection bookkeeping for them.
    observers: metricsAt || statusAt ? [metrics.observer(), decisions.observer] : [decisions.observer],
    plugins: metricsAt || statusAt ? [metrics.plugin()] : [],
    metrics,
    ban: (e) => decisions.ban(e),
    async serve() {
      const summary: string[] = [];
      const out: { summary: string[]; metricsUrl?: string; statusUrl?: string } = { summary };
      if (metricsAt) {
        const m = await serveMetrics(registry, metricsAt);
        closers.push(m.close);
        out.metricsUrl = m.url;
        summary.push(`metrics ${m.url}`);
      }
      if (statusAt) {
        try {
          const s = await serveStatus(metrics, {
            ...statusAt,
            allowRemote: flags.statusAllowRemote === true,
            ...(token === undefined ? {} : { token }),
          });
          closers.push(s.close);
          // The token stays out of the ready line (it may be logged); the page takes it as #token=.
          out.statusUrl = s.url.replace(/#token=.*$/, '');
          summary.push(`status ${out.statusUrl}${token ? ' (bearer token)' : ''}`);
        } catch (err) {
          if (!SockError.isInstance(err) || err.code !== SockErrorCode.INVALID_OPTION) throw err;
          const message = err.message
            .replace(/^serveStatus: /, '')
            .replace('allowRemote is set', '--status-allow-remote is given');
          throw new UsageError(`--status: ${message}`);
        }
      }
      return out;
    },
    async close() {
      decisions.close();
      await Promise.all(closers.map((c) => c()));
    },
  };
}
