import { createInterface } from 'node:readline';
import { type Connection, connect, SockError, SockErrorCode } from '@sock/core';
import { tlsClient } from '@sock/tls';
import { createUdpSocket } from '@sock/udp';
import type { Command } from 'commander';
import { describeError, EXIT, ExitError, endpoint, UsageError } from './errors.js';
import { makeFraming } from './listen.js';
import { addNcatConnectFlags, connectAddress, type NcatConnectFlags, parseSeconds } from './ncat-flags.js';
import { oneOf, parsePort } from './parse.js';
import { sendInPieces } from './send-stream.js';
import { addClientSshFlags, type ClientSshFlags, clientSsh } from './ssh-flags.js';
import { addClientTlsFlags, type ClientTlsFlags, clientTls } from './tls-flags.js';

interface ConnectFlags extends ClientTlsFlags, ClientSshFlags, NcatConnectFlags {
  udp?: boolean;
  wait?: string;
  framing?: string;
  maxFrame?: string;
  json?: boolean;
}

/**
 * How a connection ended, as the exit status: 0 closed cleanly (by us after stdin ended, or by the server
 * with a FIN), 1 anything else (refused, timed out, reset, refused by TLS or a guard).
 */
export function connectCommand(program: Command): void {
  const cmd = program
    .command('connect')
    .description('connect to a server: stdin to the socket, the socket to stdout (like nc)')
    .argument('<host>', 'name or address')
    .argument('<port>')
    .option('-u, --udp', 'UDP: each stdin line is one datagram')
    .option(
      '-w, --wait <dur>',
      'connect timeout (TCP/TLS); with --udp, how long to wait for replies after stdin ends (bare number: seconds)',
      '10s',
    )
    .option('--framing <framing>', 'line, length (u32 big-endian prefix) or raw', 'line')
    .option('--max-frame <bytes>', 'largest message accepted from the server (default 64k)')
    .option('--json', 'print one JSON line on stderr at the end: how the connection ended');
  addClientTlsFlags(cmd);
  addClientSshFlags(cmd);
  addNcatConnectFlags(cmd);
  cmd.addHelpText(
    'after',
    `
Exit status: 0 the connection ended cleanly; 1 it could not be made or ended abnormally (refused,
timeout, reset, TLS or guard refusal: the reason is printed); 2 usage error.

Examples:
  echo hello | sock connect 127.0.0.1 7000
  sock connect localhost 7000 --tls --tls-ca pki/ca.crt --tls-cert pki/alice.crt --tls-key pki/alice.key`,
  );
  cmd.action(async (host: string, portArg: string, flags: ConnectFlags) => {
    const port = parsePort(portArg);
    const waitMs = parseSeconds(flags.wait ?? '10s', '--wait');
    if (flags.sendOnly && flags.recvOnly)
      throw new UsageError('--send-only and --recv-only exclude each other');
    const address = await connectAddress(host, flags);
    if (flags.udp) {
      if (flags.tls || flags.ssl)
        throw new UsageError('--udp and --tls exclude each other (Node has no DTLS)');
      if (flags.port !== undefined) throw new UsageError('-p (source port) works with TCP only, not --udp');
      await connectUdp(address, port, waitMs, flags);
      return;
    }
    await connectTcp(address, port, waitMs, flags, host);
  });
}

function endReport(flags: ConnectFlags, fields: Record<string, unknown>): void {
  if (flags.json) process.stderr.write(`${JSON.stringify({ event: 'end', ...fields })}\n`);
}

async function connectTcp(
  host: string,
  port: number,
  timeoutMs: number,
  flags: ConnectFlags,
  name = host,
): Promise<void> {
  const framingName = oneOf(flags.framing ?? 'line', ['line', 'length', 'raw'] as const, '--framing');
  const framing = makeFraming(framingName, flags.maxFrame);
  const idleMs =
    flags.idleTimeout === undefined ? undefined : parseSeconds(flags.idleTimeout, '--idle-timeout');
  const typed = clientTls(flags);
  // -4/-6 resolved the name to an address: the certificate is still checked against the name typed.
  const tls =
    typed && name !== host && typed.servername === undefined ? { ...typed, servername: name } : typed;
  if (tls && flags.via) throw new UsageError('--via and --tls exclude each other');
  const ssh = await clientSsh(flags);
  if (tls?.insecureSkipVerify) {
    process.stderr.write(
      'sock: warning: --insecure: the server is not verified; anyone on the path can read and change this traffic\n',
    );
  }
  const localPort = flags.port === undefined ? undefined : parsePort(flags.port, '-p');
  // Never ignored silently: through TLS or a bastion the source port is not ours to choose.
  if (localPort !== undefined && (tls || ssh))
    throw new UsageError('-p (source port) works with plain TCP only, not with --tls/--ssl or --via');
  let conn: Connection<Buffer, Uint8Array>;
  try {
    conn = await connect<Buffer, Uint8Array>({
      host,
      port,
      framing,
      timeoutMs,
      ...(flags.source !== undefined ? { localAddress: flags.source } : {}),
      ...(localPort !== undefined ? { localPort } : {}),
      ...(tls ? { transport: tlsClient(tls) } : {}),
      ...(ssh ? { transport: ssh } : {}),
    });
  } catch (err) {
    process.stderr.write(`sock: ${describeError(err, { host, port })}\n`);
    endReport(flags, {
      ok: false,
      stage: 'connect',
      code: SockError.isInstance(err) ? err.code : undefined,
      reason: SockError.isInstance(err) ? err.reason : undefined,
    });
    throw new ExitError(EXIT.RUNTIME);
  }
  if (flags.verbose) process.stderr.write(`sock: connected to ${endpoint(host, port)}\n`);
  // ncat's -i: no data either way for this long closes the connection.
  let idleTimer: NodeJS.Timeout | undefined;
  let idled = false;
  const active = () => {
    if (idleMs === undefined) return;
    clearTimeout(idleTimer);
    idleTimer = setTimeout(() => {
      idled = true;
      conn.destroy();
    }, idleMs);
  };
  active();
  const stdinDone = flags.recvOnly
    ? Promise.resolve(0)
    : pumpStdin(conn, framingName, framing.maxFrameBytes, active, flags.sendOnly);
  let received = 0;
  for await (const frame of conn) {
    received++;
    active();
    if (flags.sendOnly) continue;
    if (framingName === 'raw') process.stdout.write(frame);
    else process.stdout.write(Buffer.concat([frame, Buffer.from('\n')]));
  }
  clearTimeout(idleTimer);
  const info = await conn.closed;
  const sent = await Promise.race([stdinDone, Promise.resolve(-1)]);
  process.stdin.destroy();
  if (idled) {
    process.stderr.write(`sock: idle for ${flags.idleTimeout} (-i): connection closed\n`);
    endReport(flags, { ok: false, reason: 'idle-timeout', framesIn: received });
    throw new ExitError(EXIT.RUNTIME);
  }
  if (flags.verbose)
    process.stderr.write(`sock: ${received} messages received, connection ended: ${info.reason}\n`);
  const clean = info.reason === 'peer-closed' || info.reason === 'closed';
  endReport(flags, {
    ok: clean,
    // A refusal the server sent (a TLS alert) is the reason, not the socket error that carried it.
    reason: info.error?.reason ?? info.reason,
    code: info.error?.code,
    framesIn: received,
    framesOut: sent >= 0 ? sent : conn.stats.framesOut,
  });
  if (!clean) {
    const why = info.error ? describeError(info.error) : info.reason;
    process.stderr.write(`sock: connection ended: ${why}\n`);
    throw new ExitError(EXIT.RUNTIME);
  }
}

/** stdin → connection; at the end of stdin, half-close (the server's answers still arrive). */
async function pumpStdin(
  conn: Connection<Buffer, Uint8Array>,
  framingName: 'line' | 'length' | 'raw',
  maxFrameBytes: number,
  active: () => void,
  closeAtEnd = false,
): Promise<number> {
  let sent = 0;
  try {
    if (framingName === 'raw') {
      for await (const chunk of process.stdin) {
        await sendInPieces(conn, chunk as Buffer, maxFrameBytes);
        sent++;
        active();
      }
    } else {
      const lines = createInterface({ input: process.stdin, crlfDelay: Number.POSITIVE_INFINITY });
      for await (const line of lines) {
        // readline also yields a last line that has no newline: it is sent like the others.
        await conn.send(Buffer.from(line));
        sent++;
        active();
      }
    }
    // --send-only (ncat): the end of stdin ends the connection; otherwise half-close and keep reading.
    if (closeAtEnd) await conn.close();
    else if (!conn.closing) conn.socket.end();
  } catch (err) {
    if (!(SockError.isInstance(err) && err.code === SockErrorCode.CONNECTION_CLOSED)) {
      if (!conn.closing) {
        process.stderr.write(`sock: ${describeError(err)}\n`);
        conn.destroy();
      }
    }
  }
  return sent;
}

async function connectUdp(host: string, port: number, waitMs: number, flags: ConnectFlags): Promise<void> {
  const maxPayloadBytes = flags.maxFrame
    ? Math.min(makeFraming('raw', flags.maxFrame).maxFrameBytes, 65_507)
    : 65_507;
  // A closed port answers with ICMP port unreachable, which a connected socket reports as
  // ECONNREFUSED on a later send or receive: like ncat and socat, that is "Connection refused", exit 1.
  let refused = false;
  let stop: () => void = () => {};
  const socket = createUdpSocket({
    maxPayloadBytes,
    observers: [
      (e) => {
        if (e.type === 'error' && e.error.code === SockErrorCode.CONNECTION_REFUSED) {
          refused = true;
          stop();
        }
      },
    ],
  });
  try {
    await socket.connect({ host, port });
  } catch (err) {
    process.stderr.write(`sock: ${describeError(err)}\n`);
    throw new ExitError(EXIT.RUNTIME);
  }
  let received = 0;
  let idle: NodeJS.Timeout | undefined;
  let stdinEnded = false;
  const done = new Promise<void>((resolve) => {
    stop = resolve;
    const arm = () => {
      clearTimeout(idle);
      if (stdinEnded) idle = setTimeout(resolve, waitMs);
    };
    void (async () => {
      for await (const d of socket) {
        received++;
        process.stdout.write(d.message);
        arm();
      }
    })().catch(() => {});
    void (async () => {
      // One datagram per line, its newline kept (as ncat sends it).
      for await (const line of linesWithNewline(process.stdin)) await socket.send(line);
      stdinEnded = true;
      arm();
    })().catch((err: unknown) => {
      if (SockError.isInstance(err) && err.code === SockErrorCode.CONNECTION_REFUSED) refused = true;
      else process.stderr.write(`sock: ${describeError(err)}\n`);
      resolve();
    });
  });
  await done;
  clearTimeout(idle);
  await socket.close();
  if (refused) {
    process.stderr.write('sock: Connection refused\n');
    throw new ExitError(EXIT.RUNTIME);
  }
  endReport(flags, { ok: true, transport: 'udp', datagramsIn: received });
}

/** Lines of a stream, each with its `\n` (the last one as it ends), for one datagram per line. */
async function* linesWithNewline(input: AsyncIterable<Buffer | string>): AsyncGenerator<Buffer> {
  let pending = Buffer.alloc(0);
  for await (const chunk of input) {
    pending = Buffer.concat([pending, typeof chunk === 'string' ? Buffer.from(chunk) : chunk]);
    for (let nl = pending.indexOf(10); nl >= 0; nl = pending.indexOf(10)) {
      yield pending.subarray(0, nl + 1);
      pending = pending.subarray(nl + 1);
    }
  }
  if (pending.length > 0) yield pending;
}
