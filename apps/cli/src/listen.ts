import {
  type Connection,
  createServer,
  delimited,
  type Framing,
  lengthPrefixed,
  raw,
  type SockEvent,
  type SockServer,
} from '@sock/core';
import { createBanBridge, FirewallError } from '@sock/firewall';
import { createGuards, type Guards, watchPolicyFile } from '@sock/guards';
import { tlsTransport } from '@sock/tls';
import { createUdpSocket, type UdpSocket } from '@sock/udp';
import type { Command } from 'commander';
import type { Logger } from 'pino';
import { announce, chatLine } from './chat.js';
import { describeError, EXIT, ExitError, endpoint, systemCode, UsageError } from './errors.js';
import { backendName, formatCommands, openFirewall, tableName } from './firewall-flags.js';
import { addGuardFlags, type GuardFlags, guardPolicy } from './guard-flags.js';
import { loadListenConfig } from './listen-config.js';
import { createLogger, type LogFormat } from './log.js';
import {
  addNcatListenFlags,
  connectionCap,
  DEFAULT_MAX_CONNS,
  listenAddress,
  type NcatListenFlags,
} from './ncat-flags.js';
import { addObserveFlags, type ObserveFlags, startObserve } from './observe.js';
import { oneOf, parseDur, parseSize } from './parse.js';
import { addServerSshFlags, type ServerSshFlags, serverSsh } from './ssh-flags.js';
import { addServerTlsFlags, type ServerTlsFlags, serverTls } from './tls-flags.js';
import { isListenWorker, runPrimary, workerCount, workerGuardStore } from './workers.js';

export function makeFraming(name: string | undefined, maxFrame: string | undefined): Framing {
  const framing = oneOf(name ?? 'line', ['line', 'length', 'raw'] as const, '--framing');
  const maxFrameBytes = maxFrame === undefined ? 65_536 : parseSize(maxFrame, '--max-frame');
  // ncat sends a last line without a newline: deliver it at end of stream (within the limit).
  if (framing === 'line') return delimited({ maxFrameBytes, flushOnEnd: true });
  if (framing === 'length') return lengthPrefixed({ maxFrameBytes });
  return raw({ maxFrameBytes });
}

interface ListenFlags extends GuardFlags, ServerTlsFlags, ServerSshFlags, ObserveFlags, NcatListenFlags {
  echo?: boolean;
  chat?: boolean;
  udp?: boolean;
  framing?: string;
  maxFrame?: string;
  log?: string;
  logLevel?: string;
  json?: boolean;
  drain?: string;
  firewall?: string;
  firewallTable?: string;
  workers?: string;
}

export function listenCommand(program: Command): void {
  const cmd = program
    .command('listen')
    .description('run a server: echo (default) or chat, over TCP, TLS or UDP, with guards as flags')
    .usage('[options] [host] <port>')
    .argument('[host-or-port]', 'address to bind (default 127.0.0.1), then the port (0 picks a free port)')
    .argument('[port]')
    .option('--echo', 'send every message back to its sender (default)')
    .option('--chat', 'send every line to all other peers, prefixed <userN> (ncat --chat)')
    .option('-u, --udp', 'UDP instead of TCP: one datagram is one message')
    .option('--framing <framing>', 'line, length (u32 big-endian prefix) or raw', 'line')
    .option('--max-frame <bytes>', 'largest message; a bigger one closes its connection (default 64k)')
    .option('--firewall <backend>', 'also ban in the kernel: nft, iptables, or plan (print the change only)')
    .option(
      '--firewall-table <name>',
      'nftables table / iptables chain prefix for --firewall (default sockfw)',
    )
    .option('--log <format>', 'log connections and decisions to stderr: json or pretty')
    .option('--log-level <level>', 'pino level (default info with --log, warn without)')
    .option('--drain <dur>', 'on SIGINT/SIGTERM, let connections finish for this long', '5s')
    .option('--json', 'print the ready line as JSON')
    .option('--workers <n>', 'serve from n node:cluster worker processes; guard limits hold across them');
  addServerTlsFlags(cmd);
  addServerSshFlags(cmd);
  addGuardFlags(cmd);
  addObserveFlags(cmd);
  addNcatListenFlags(cmd);
  cmd.addHelpText(
    'after',
    `
Examples:
  sock listen 0                                    echo on 127.0.0.1, a free port
  sock listen ::1 7000 --chat                      chat room on [::1]:7000
  sock listen 7000 --tls --tls-cert s.crt --tls-key s.key --tls-ca ca.crt --require-client-cert
  sock listen 7000 --max-conns-per-ip 2 --conn-rate 5/s --msg-rate 20/s --ban-after 5 --firewall plan

Prints one line on stdout when ready: "listening on <host>:<port> (<what is on>)".`,
  );
  cmd.action(async (first: string | undefined, second: string | undefined, flags: ListenFlags) => {
    const workers = isListenWorker() ? undefined : workerCount(flags);
    if (workers === undefined) await listen(first, second, flags);
    else {
      const status = await runPrimary(workers, flags);
      if (status !== EXIT.OK) throw new ExitError(status);
    }
  });
}

async function listen(
  first: string | undefined,
  second: string | undefined,
  flags: ListenFlags,
): Promise<void> {
  const { host, port } = listenAddress(first, second, flags);
  if (flags.echo && flags.chat) throw new UsageError('--echo and --chat exclude each other');
  const mode = flags.chat ? 'chat' : 'echo';
  const framingName = oneOf(flags.framing ?? 'line', ['line', 'length', 'raw'] as const, '--framing');
  const framing = makeFraming(framingName, flags.maxFrame);
  const logFormat =
    flags.log === undefined
      ? flags.verbose
        ? 'pretty'
        : undefined
      : oneOf(flags.log, ['json', 'pretty'] as const, '--log');
  const drainMs = parseDur(flags.drain ?? '5s', '--drain');
  const config = flags.config ? await loadListenConfig(flags.config) : undefined;
  const guarded = guardPolicy(flags, config?.guards);
  // ncat's default: at most 100 connections at once unless a limit is set (TCP and TLS listeners).
  const defaultCap = !flags.udp && guarded?.policy.connections?.max === undefined;
  const handshakeMs =
    flags.handshakeTimeout === undefined
      ? undefined
      : parseDur(flags.handshakeTimeout, '--handshake-timeout');
  const tls = serverTls(flags, handshakeMs, config?.tls);
  const ssh = serverSsh(flags, { tls: tls !== undefined, udp: flags.udp === true });
  if (flags.udp && tls)
    throw new UsageError(
      '--udp and --tls exclude each other (Node has no DTLS; a tls section in --config means --tls)',
    );
  if (flags.udp && flags.proxyProtocol) throw new UsageError('--proxy-protocol is for TCP listeners');
  const fwBackend = flags.firewall === undefined ? undefined : backendName(flags.firewall, '--firewall');
  const fwTable = tableName(flags.firewallTable);
  if (fwBackend && !guarded) {
    throw new UsageError('--firewall bans what guards ban: add a guard flag such as --ban-after <strikes>');
  }

  const log: Logger = createLogger(logFormat as LogFormat | undefined, flags.logLevel);

  // Firewall: bans go to the kernel (or, in plan mode, the change is printed).
  const firewall = fwBackend ? openFirewall(fwBackend, { table: fwTable }) : undefined;
  const bridge =
    firewall && fwBackend !== 'plan'
      ? createBanBridge(firewall, { onError: (e) => log.error({ code: e.code }, `firewall: ${e.message}`) })
      : undefined;
  if (firewall && fwBackend !== 'plan') await firewall.init();

  let guards: Guards | undefined;
  if (guarded) {
    try {
      guards = createGuards(guarded.policy, {
        ...(await workerGuardStore()),
        onBan(e) {
          observe.ban(e);
          if (bridge) bridge.onBan({ key: e.key, durationMs: e.durationMs, reason: e.reason });
          else if (firewall) {
            firewall.ban(e.key, { ttl: Math.max(1000, e.durationMs), reason: e.reason }).then(
              (r) =>
                log.warn(
                  { key: e.key, backend: r.backend, commands: formatCommands(r.commands) },
                  'firewall plan (not applied)',
                ),
              (err) =>
                log.warn(
                  { key: e.key, code: FirewallError.isInstance(err) ? err.code : undefined },
                  `firewall refused: ${(err as Error).message}`,
                ),
            );
          }
        },
        onError: (err) => log.error({ code: err.code }, err.message),
      });
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  }
  // --config reloads whole on change and on SIGHUP (flags laid over it again); a bad file keeps the old.
  const policyWatch =
    guards && flags.config
      ? watchPolicyFile(guards, flags.config, {
          sighup: true,
          load: async (path) => guardPolicy(flags, (await loadListenConfig(path)).guards)?.policy ?? {},
          onReload: () => log.info({ config: flags.config }, 'policy reloaded'),
          onError: (err) =>
            log.error({ code: err.code }, `policy reload failed, keeping the old: ${err.message}`),
        })
      : undefined;

  const transport = tls
    ? tlsTransport({ ...tls.options, onReloadError: (e) => log.error(e.message) })
    : undefined;
  const observe = startObserve(flags, log, {
    ...(guards ? { guards } : {}),
    ...(transport ? { tls: transport } : {}),
    ...(bridge ? { firewall: bridge } : {}),
  });

  let closeAll: () => Promise<void>;
  // Unset until listening: an error before (the port in use) is reported once, by `bindFailed`.
  let bound: { address: string; port: number } | undefined;
  // A listener that cannot bind is reported once, by `bindFailed`: its error event is not logged too.
  const observers = observe.observers.map((observer) => (e: SockEvent) => {
    if (e.type !== 'error' || bound !== undefined) observer(e);
  });
  const summary: string[] = [];
  if (flags.udp) {
    const socket: UdpSocket = createUdpSocket({
      // The library's safe default (1232 bytes) unless --max-frame asks for more.
      ...(flags.maxFrame !== undefined ? { maxPayloadBytes: Math.min(framing.maxFrameBytes, 65_507) } : {}),
      guards: guards ? [guards] : [],
      observers,
      antiAmplification: true,
    });
    observe.metrics.add({ udp: socket });
    bound = await socket.bind({ host, port }).catch((err: unknown) => bindFailed(err, host, port));
    summary.push('udp', mode);
    void serveUdp(socket, mode, log);
    closeAll = () => socket.close();
  } else {
    const peers = new Set<Connection<Buffer, Uint8Array>>();
    const chatHandler = async (conn: Connection<Buffer, Uint8Array>): Promise<void> => {
      const others = (out: Buffer) => {
        for (const peer of peers) if (peer !== conn && !peer.closing) peer.send(out).catch(() => {});
      };
      // Announcements and inert text are for people at terminals: line framing only.
      const lines = framingName === 'line';
      if (lines) {
        conn.send(announce.present([...peers].map((p) => p.id))).catch(() => {});
        others(announce.joined(conn.remoteAddress, conn.id));
      }
      peers.add(conn);
      try {
        for await (const frame of conn) others(lines ? chatLine(conn.id, frame) : frame);
      } finally {
        peers.delete(conn);
        if (lines) others(announce.left(conn.id));
      }
    };
    const server: SockServer<Buffer, Uint8Array> = createServer<Buffer, Uint8Array>({
      framing,
      // Under --ssh the guards sit on the SSH listener, where the TCP connections are.
      plugins: [
        ...(guards && !ssh ? [guards.plugin] : []),
        ...(defaultCap ? [connectionCap(DEFAULT_MAX_CONNS)] : []),
        ...observe.plugins,
      ],
      observers,
      ...(transport ? { transport } : {}),
      // Echo answers each message from the listener: no promise turn per message while the reply is
      // queued below the write high-water mark; above it the returned promise pauses this connection.
      ...(mode === 'echo'
        ? { onMessage: (frame: Buffer, conn: Connection<Buffer, Uint8Array>) => conn.send(frame) }
        : { handler: chatHandler }),
    });
    const overSsh = ssh
      ? await ssh.start(
          server,
          { host, port },
          { plugins: guards ? [guards.plugin] : [], observers, onError: (m) => log.error(m) },
        )
      : undefined;
    bound =
      overSsh ?? (await server.listen({ host, port }).catch((err: unknown) => bindFailed(err, host, port)));
    summary.push(
      tls ? tls.summary : overSsh ? `ssh service ${overSsh.service}` : 'tcp',
      mode,
      `${framingName} ≤ ${framing.maxFrameBytes} B`,
    );
    closeAll = async () => {
      await overSsh?.server.close({ drainMs });
      await server.close({ drainMs });
    };
  }
  summary.push(guarded ? `guards: ${guarded.summary.join(', ')}` : 'guards: off');
  if (defaultCap) summary.push(`max-conns ${DEFAULT_MAX_CONNS} (default)`);
  if (fwBackend)
    summary.push(`firewall: ${fwBackend === 'plan' ? 'plan (prints, applies nothing)' : fwBackend}`);
  const served = await observe.serve();
  summary.push(...served.summary);
  const metricsUrl = served.metricsUrl;
  const stopped = new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal, drainMs }, 'draining');
      void (async () => {
        await closeAll();
        policyWatch?.close();
        guards?.close();
        await bridge?.close();
        await observe.close();
        log.info('stopped');
        resolve();
      })();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  const shown = endpoint(bound.address, bound.port);
  if (flags.json) {
    process.stdout.write(
      `${JSON.stringify({ event: 'listening', address: bound.address, port: bound.port, transport: flags.udp ? 'udp' : tls ? 'tls' : ssh ? 'ssh' : 'tcp', mode, framing: framingName, maxFrameBytes: framing.maxFrameBytes, guards: guarded?.summary ?? [], firewall: fwBackend ?? null, metrics: metricsUrl ?? null, status: served.statusUrl ?? null })}\n`,
    );
  } else {
    process.stdout.write(`listening on ${shown} (${summary.join(', ')})\n`);
  }
  log.info({ address: shown }, 'listening');

  await stopped;
}

/** The one line for a listener that could not bind, then exit status 1. */
function bindFailed(err: unknown, host: string, port: number): never {
  const code = systemCode(err);
  const why =
    code === 'EADDRINUSE'
      ? `${endpoint(host, port)} is already in use (EADDRINUSE): pick another port, or stop what listens there`
      : code === 'EADDRNOTAVAIL'
        ? `${host} is not an address of this host (EADDRNOTAVAIL)`
        : code === 'EACCES'
          ? `${endpoint(host, port)}: permission denied (EACCES): ports below 1024 need root or CAP_NET_BIND_SERVICE`
          : describeError(err, { host, port });
  process.stderr.write(`sock: listen: ${why}\n`);
  throw new ExitError(EXIT.RUNTIME);
}

async function serveUdp(socket: UdpSocket, mode: 'echo' | 'chat', log: Logger): Promise<void> {
  const peers = new Map<string, { address: string; port: number }>();
  try {
    for await (const d of socket) {
      if (mode === 'echo') {
        await socket
          .send(d.message, { address: d.address, port: d.port })
          .catch((err: Error) => log.warn(err.message));
        continue;
      }
      const key = `${d.address}|${d.port}`;
      peers.delete(key);
      peers.set(key, { address: d.address, port: d.port });
      if (peers.size > 256) peers.delete(peers.keys().next().value!);
      for (const [k, p] of peers) if (k !== key) socket.send(d.message, p).catch(() => {});
    }
  } catch (err) {
    log.error((err as Error).message);
  }
}
