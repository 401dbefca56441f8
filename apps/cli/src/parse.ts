import { isIP } from 'node:net';
import { parseDuration } from '@sock/core';
import { UsageError } from './errors.js';

/** A TCP/UDP port; 0 (a free port) only where `allowZero`. */
export function parsePort(value: string, what = 'port', allowZero = false): number {
  const n = /^\d{1,5}$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isInteger(n) || n > 65535 || (n === 0 && !allowZero)) {
    throw new UsageError(
      `${what} must be an integer from ${allowZero ? 0 : 1} to 65535, got ${JSON.stringify(value)}`,
    );
  }
  return n;
}

/** A positive integer (counts, sizes). */
export function parseCount(value: string, what: string, min = 1): number {
  const n = /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min) {
    throw new UsageError(`${what} must be an integer of at least ${min}, got ${JSON.stringify(value)}`);
  }
  return n;
}

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1 << 20,
  mb: 1 << 20,
  mib: 1 << 20,
};

/** Bytes: `4096`, `4k`, `64KiB`, `1m`. */
export function parseSize(value: string, what: string): number {
  const m = /^(\d+)\s*([a-z]*)$/i.exec(value.trim());
  const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined || Number(m[1]) < 1) {
    throw new UsageError(
      `${what} must be a size in bytes like 4096, 64k or 1m, got ${JSON.stringify(value)}`,
    );
  }
  return Number(m[1]) * unit;
}

/** A duration through core's one parser; a usage error naming the flag when it does not parse. */
export function parseDur(value: string, what: string): number {
  try {
    // The CLI documents a bare number as milliseconds; the library grammar wants a unit in strings.
    return parseDuration(/^\d+$/.test(value) ? Number(value) : value, what);
  } catch {
    throw new UsageError(
      `${what} must be a duration like 500ms, 10s, 5m or a number of ms, got ${JSON.stringify(value)}`,
    );
  }
}

/** A rate `n/s`, `n/m`, `n/h`, `n/10s` or a bare `n` (per second). */
export function parseRate(value: string, what: string): { rate: number; per: number } {
  const m = /^(\d+(?:\.\d+)?)(?:\/(\d+(?:\.\d+)?)?(ms|s|m|h|d))?$/.exec(value.trim());
  if (!m || Number(m[1]) <= 0) {
    throw new UsageError(`${what} must be a rate like 10/s, 100/m or 5/10s, got ${JSON.stringify(value)}`);
  }
  const per = m[3] ? parseDuration(`${m[2] ?? '1'}${m[3]}`, what) : 1000;
  if (per <= 0) throw new UsageError(`${what}: the period must be more than 0`);
  return { rate: Number(m[1]), per };
}

/** `host:port`, `[v6]:port` or a bare `port` (on 127.0.0.1). */
export function parseHostPort(value: string, what: string): { host: string; port: number } {
  const v6 = /^\[([^\]]+)\]:(\d+)$/.exec(value);
  if (v6) return { host: v6[1]!, port: parsePort(v6[2]!, what, true) };
  const i = value.lastIndexOf(':');
  if (i < 0) return { host: '127.0.0.1', port: parsePort(value, what, true) };
  const host = value.slice(0, i);
  if (!host || (host.includes(':') && !isIP(host)))
    throw new UsageError(`${what} must be host:port, got ${JSON.stringify(value)}`);
  return { host, port: parsePort(value.slice(i + 1), what, true) };
}

export function oneOf<T extends string>(value: string, choices: readonly T[], what: string): T {
  if (!(choices as readonly string[]).includes(value)) {
    throw new UsageError(`${what} must be one of ${choices.join(', ')}, got ${JSON.stringify(value)}`);
  }
  return value as T;
}

/** Commander collector for repeatable flags. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** `host port` or just `port` for `listen [host] <port>`. */
export function hostAndPort(
  first: string,
  second: string | undefined,
  defaultHost: string,
): { host: string; port: number } {
  if (second === undefined) return { host: defaultHost, port: parsePort(first, 'port', true) };
  return { host: first, port: parsePort(second, 'port', true) };
}
