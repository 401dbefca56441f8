/**
 * The flags `sock` borrows from ncat, with ncat's meaning (the differences that remain are listed in the
 * README's "Differences from ncat" table): -l/-k/-p/-s/-4/-6/-v, -i/-w with bare numbers in seconds,
 * --send-only/--recv-only, and the default cap of 100 connections.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { type Plugin, reject } from '@sock/core';
import type { Command } from 'commander';
import { UsageError } from './errors.js';
import { parseDur, parsePort } from './parse.js';

/** ncat's `-m/--max-conns` default: a listener with no limit of its own takes at most this many at once. */
export const DEFAULT_MAX_CONNS = 100;

/**
 * The default cap as a plug-in of its own (not guards: guards bring rates and bans the user did not ask
 * for). The connection over the cap is closed at accept with reason `conn-limit`.
 */
export function connectionCap(max: number): Plugin {
  const counted = new Set<number>();
  return {
    name: 'max-conns-default',
    accept(conn) {
      if (counted.size >= max)
        return reject('conn-limit', {
          message: `more than ${max} connections at once (the default; set -m)`,
        });
      counted.add(conn.id);
      return undefined;
    },
    close(conn) {
      counted.delete(conn.id);
    },
  };
}

/** A duration as ncat reads it: a bare number is seconds (`-w 5`); `500ms`, `2m` … as everywhere else. */
export function parseSeconds(value: string, flag: string): number {
  if (/^\d+(\.\d+)?$/.test(value.trim())) return Math.round(Number(value) * 1000);
  return parseDur(value, flag);
}

interface NcatCommonFlags {
  ipv4?: boolean;
  ipv6?: boolean;
  source?: string;
  verbose?: boolean;
}

export interface NcatListenFlags extends NcatCommonFlags {
  port?: string;
  listen?: boolean;
  keepOpen?: boolean;
}

export interface NcatConnectFlags extends NcatCommonFlags {
  sendOnly?: boolean;
  recvOnly?: boolean;
  idleTimeout?: string;
  /** `-p`: the source port, as in ncat's connect mode. */
  port?: string;
}

function addFamilyFlags(cmd: Command): Command {
  return cmd
    .option('-4', 'IPv4 only', false)
    .option('-6', 'IPv6 only', false)
    .option('-v, --verbose', 'say what happens on stderr (connections, ends)');
}

export function addNcatListenFlags(cmd: Command): Command {
  return addFamilyFlags(cmd)
    .option('-l, --listen', 'accepted for ncat habits (sock listen always listens)')
    .option('-k, --keep-open', 'accepted for ncat habits (sock listen always keeps accepting)')
    .option('-p, --port <port>', 'the port to listen on (instead of the positional port)')
    .option('-s, --source <addr>', 'the address to bind (instead of the positional host)');
}

export function addNcatConnectFlags(cmd: Command): Command {
  return addFamilyFlags(cmd)
    .option('-s, --source <addr>', 'the local address to connect from')
    .option('-p, --port <port>', 'the local (source) port to connect from, as in ncat')
    .option(
      '-i, --idle-timeout <dur>',
      'close after this long without data either way (bare number: seconds)',
    )
    .option('--send-only', 'only send: received data is discarded, and stdin ending closes the connection')
    .option('--recv-only', 'only receive: stdin is not read');
}

/** Commander keeps `-4`/`-6` as the keys "4"/"6". */
function family(flags: NcatCommonFlags): 4 | 6 | undefined {
  const f = flags as Record<string, unknown>;
  const four = f['4'] === true || flags.ipv4 === true;
  const six = f['6'] === true || flags.ipv6 === true;
  if (four && six) throw new UsageError('-4 and -6 exclude each other');
  return four ? 4 : six ? 6 : undefined;
}

function checkFamily(address: string, want: 4 | 6 | undefined, flag: string): void {
  const is = isIP(address);
  if (want && is !== 0 && is !== want) {
    throw new UsageError(`${flag} ${address} is IPv${is}, but -${want} asks for IPv${want} only`);
  }
}

/**
 * Where `sock listen` binds: `[host] <port>` positionally, or `-s <addr>` and `-p <port>` as in ncat.
 * Without a host it binds loopback (127.0.0.1, or ::1 with -6): a server is not exposed by accident.
 */
export function listenAddress(
  first: string | undefined,
  second: string | undefined,
  flags: NcatListenFlags,
): { host: string; port: number } {
  const want = family(flags);
  let host: string | undefined;
  let portText: string | undefined;
  if (second !== undefined) [host, portText] = [first, second];
  else if (first !== undefined && flags.port === undefined) portText = first;
  else host = first;
  if (flags.source !== undefined) {
    if (host !== undefined && host !== flags.source)
      throw new UsageError(`give the address once: ${host} and -s ${flags.source}`);
    host = flags.source;
  }
  if (flags.port !== undefined) {
    if (portText !== undefined && portText !== flags.port)
      throw new UsageError(`give the port once: ${portText} and -p ${flags.port}`);
    portText = flags.port;
  }
  if (portText === undefined) throw new UsageError('sock listen needs a port: sock listen [host] <port>');
  host ??= want === 6 ? '::1' : '127.0.0.1';
  checkFamily(host, want, 'the address');
  return { host, port: parsePort(portText, flags.port !== undefined ? '-p' : 'port', true) };
}

/** The address `sock connect` dials: with -4/-6 the name is resolved to that family first. */
export async function connectAddress(host: string, flags: NcatConnectFlags): Promise<string> {
  const want = family(flags);
  if (flags.source !== undefined && isIP(flags.source) === 0)
    throw new UsageError(`-s must be an IP address of this host, got ${JSON.stringify(flags.source)}`);
  if (flags.source !== undefined) checkFamily(flags.source, want, '-s');
  if (!want) return host;
  checkFamily(host, want, 'the host');
  if (isIP(host)) return host;
  try {
    return (await lookup(host, { family: want })).address;
  } catch {
    throw new UsageError(`${host} has no IPv${want} address`);
  }
}

/**
 * `sock -l 7000` (ncat's way) is `sock listen 7000`: a leading -l/--listen before any command picks
 * the listen command.
 */
export function ncatArgv(argv: string[], commands: readonly string[]): string[] {
  const args = argv.slice(2);
  if (args.length === 0 || commands.includes(args[0]!)) return argv;
  const i = args.findIndex((a) => a === '-l' || a === '--listen');
  if (i < 0) return argv;
  return [...argv.slice(0, 2), 'listen', ...args.slice(0, i), ...args.slice(i + 1)];
}
