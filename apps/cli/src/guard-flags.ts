import type { GuardsPolicy } from '@sock/guards';
import type { Command } from 'commander';
import { UsageError } from './errors.js';
import { collect, parseCount, parseDur, parseRate } from './parse.js';

export interface GuardFlags {
  allow?: string[];
  deny?: string[];
  allowfile?: string[];
  denyfile?: string[];
  maxConns?: string;
  maxConnsPerIp?: string;
  connRate?: string;
  msgRate?: string;
  onExceed?: string;
  idleTimeout?: string;
  handshakeTimeout?: string;
  banAfter?: string;
  banTime?: string;
  proxyProtocol?: boolean;
  trustedProxy?: string[];
  config?: string;
}

/** The guard flags of `sock listen` (ncat names where ncat has the flag). */
export function addGuardFlags(cmd: Command): Command {
  return cmd
    .option('--allow <cidr>', 'allow only these addresses/CIDRs (repeatable; others are refused)', collect)
    .option('--deny <cidr>', 'refuse these addresses/CIDRs (repeatable)', collect)
    .option(
      '--allowfile <file>',
      'file of allowed addresses/CIDRs, one per line (reloaded on change)',
      collect,
    )
    .option(
      '--denyfile <file>',
      'file of refused addresses/CIDRs, one per line (reloaded on change)',
      collect,
    )
    .option('-m, --max-conns <n>', 'most connections open at once')
    .option('--max-conns-per-ip <n>', 'most connections open per IPv4 address / IPv6 /64')
    .option('--conn-rate <rate>', 'new connections per IP, e.g. 10/s or 100/m')
    .option('--msg-rate <rate>', 'messages per connection, e.g. 50/s')
    .option('--on-exceed <action>', 'when --msg-rate is exceeded: close, tarpit or pause (default close)')
    .option('-i, --idle-timeout <dur>', 'close a connection silent for this long, e.g. 30s')
    .option('--handshake-timeout <dur>', 'deadline from accept to the first complete message (slowloris)')
    .option('--ban-after <strikes>', 'ban an IP after this many strikes (violations) within 10 minutes')
    .option('--ban-time <dur>', 'first ban duration, doubled for each repeat offence (default 10m)')
    .option('--proxy-protocol', 'read PROXY protocol v1/v2 headers (only from --trusted-proxy peers)')
    .option('--trusted-proxy <cidr>', 'a proxy whose PROXY headers are believed (repeatable)', collect)
    .option(
      '--config <file>',
      'policy file (JSON or YAML): guards and/or tls sections, or a plain guards policy; flags override it',
    );
}

/**
 * The guards policy the flags ask for, on top of the `--config` file's guards part (already loaded and
 * checked), with a short summary for the ready line; undefined when none.
 */
export function guardPolicy(
  flags: GuardFlags,
  fromFile?: GuardsPolicy,
): { policy: GuardsPolicy; summary: string[] } | undefined {
  const summary: string[] = [];
  let policy: GuardsPolicy = {};
  if (fromFile) {
    policy = fromFile;
    summary.push(`config ${flags.config}`);
  }
  const ip = { ...(policy.ip ?? {}) };
  if (flags.allow?.length || flags.allowfile?.length) {
    ip.allow = [...(ip.allow ?? []), ...(flags.allow ?? [])];
    ip.allowFiles = [...(ip.allowFiles ?? []), ...(flags.allowfile ?? [])];
    ip.default = 'deny';
    summary.push(`allow ${[...(flags.allow ?? []), ...(flags.allowfile ?? [])].join(',')}`);
  }
  if (flags.deny?.length || flags.denyfile?.length) {
    ip.deny = [...(ip.deny ?? []), ...(flags.deny ?? [])];
    ip.denyFiles = [...(ip.denyFiles ?? []), ...(flags.denyfile ?? [])];
    summary.push(`deny ${[...(flags.deny ?? []), ...(flags.denyfile ?? [])].join(',')}`);
  }
  if (Object.keys(ip).length > 0) policy.ip = ip;
  const connections = { ...(policy.connections ?? {}) };
  if (flags.maxConns !== undefined) {
    connections.max = parseCount(flags.maxConns, '--max-conns');
    summary.push(`max-conns ${connections.max}`);
  }
  if (flags.maxConnsPerIp !== undefined) {
    connections.perKey = parseCount(flags.maxConnsPerIp, '--max-conns-per-ip');
    summary.push(`max-conns-per-ip ${connections.perKey}`);
  }
  if (Object.keys(connections).length > 0) policy.connections = connections;
  const rates = { ...(policy.rates ?? {}) };
  if (flags.connRate !== undefined) {
    const r = parseRate(flags.connRate, '--conn-rate');
    rates.connections = { rate: r.rate, per: r.per, burst: Math.max(1, Math.ceil(r.rate)) };
    summary.push(`conn-rate ${flags.connRate}`);
  }
  if (flags.msgRate !== undefined) {
    const r = parseRate(flags.msgRate, '--msg-rate');
    rates.messages = {
      ...(rates.messages ?? {}),
      perConnection: { rate: r.rate, per: r.per, burst: Math.max(1, Math.ceil(r.rate)) },
    };
    rates.onExceed =
      (flags.onExceed as 'close' | 'tarpit' | 'pause' | undefined) ?? rates.onExceed ?? 'close';
    summary.push(`msg-rate ${flags.msgRate} (${rates.onExceed})`);
  }
  if (flags.onExceed !== undefined) {
    if (!['close', 'tarpit', 'pause'].includes(flags.onExceed)) {
      throw new UsageError(
        `--on-exceed must be one of close, tarpit, pause, got ${JSON.stringify(flags.onExceed)}`,
      );
    }
    rates.onExceed = flags.onExceed as 'close' | 'tarpit' | 'pause';
  }
  if (Object.keys(rates).length > 0) policy.rates = rates;
  const timeouts = { ...(policy.timeouts ?? {}) };
  if (flags.idleTimeout !== undefined) {
    timeouts.idle = parseDur(flags.idleTimeout, '--idle-timeout');
    summary.push(`idle ${flags.idleTimeout}`);
  }
  if (flags.handshakeTimeout !== undefined) {
    // The file may use the old name; the flag wins under the new one.
    delete timeouts.handshake;
    timeouts.firstFrame = parseDur(flags.handshakeTimeout, '--handshake-timeout');
    summary.push(`handshake ${flags.handshakeTimeout}`);
  }
  if (Object.keys(timeouts).length > 0) policy.timeouts = timeouts;
  if (flags.banAfter !== undefined) {
    policy.strikes = { ...(policy.strikes ?? {}), threshold: parseCount(flags.banAfter, '--ban-after') };
    summary.push(`ban-after ${flags.banAfter}`);
  }
  if (flags.banTime !== undefined) {
    policy.bans = { ...(policy.bans ?? {}), duration: parseDur(flags.banTime, '--ban-time') };
    summary.push(`ban-time ${flags.banTime}`);
  }
  if (flags.trustedProxy?.length && !flags.proxyProtocol) {
    throw new UsageError('--trusted-proxy needs --proxy-protocol');
  }
  if (flags.proxyProtocol) {
    const fromFile = policy.proxy ? policy.proxy : undefined;
    if (!flags.trustedProxy?.length && !fromFile?.trusted.length) {
      throw new UsageError(
        '--proxy-protocol needs --trusted-proxy <cidr>: PROXY headers are only believed from your proxies',
      );
    }
    policy.proxy = {
      ...fromFile,
      trusted: [...(fromFile?.trusted ?? []), ...(flags.trustedProxy ?? [])],
    };
    summary.push(`proxy-protocol from ${policy.proxy.trusted.join(',')}`);
  }
  if (summary.length === 0) return undefined;
  return { policy, summary };
}
