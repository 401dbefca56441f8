import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import type { Duplex } from 'node:stream';
import { canonicalPeer } from './address.js';
import { type Clock, systemClock } from './clock.js';
import { bytes, type Codec } from './codec.js';
import { type Connection, type ConnectionEnv, type ConnectionOptions, SockConnection } from './connection.js';
import { SockError, SockErrorCode, toSockError } from './errors.js';
import type { Framing } from './framing/framing.js';
import { lengthPrefixed } from './framing/length-prefixed.js';
import { notify, type Observer } from './observer.js';
import type { AdoptedPeer, Plugin, ServerTransport } from './pipeline.js';
import { SockReason } from './reasons.js';

export interface ServerOptions<In, Out> extends Partial<ConnectionOptions<In, Out>> {
  /**
   * Called for every connection the pipeline lets through. A returned promise closes the connection when
   * it settles. Optional when `onMessage` is given.
   */
  handler?: (conn: Connection<In, Out>) => void | Promise<void>;
  /**
   * Receive messages by callback instead of iterating the connection: no promise per message, the fastest
   * path. A returned promise pauses reading until it settles (order and backpressure are kept); a throw or
   * rejection closes that connection and is reported like a handler error.
   */
  onMessage?: (message: In, conn: Connection<In, Out>) => void | Promise<void>;
  /** Default: `lengthPrefixed()` (u32 header, 64 KiB). */
  framing?: Framing;
  /** Default: `bytes()`. */
  codec?: Codec<In, Out>;
  /** Pipeline plug-ins, run in order at each stage. */
  plugins?: readonly Plugin[];
  /** Receive every event: opens, closes, rejections (with reasons), errors. */
  observers?: readonly Observer[];
  /** Shorthand for an observer of `error` events: handler and plug-in failures. */
  onError?: (error: SockError, conn: Connection<In, Out> | undefined) => void;
  /** Default plain TCP; `tlsTransport()` from @sock/tls for TLS. */
  transport?: ServerTransport;
  /** TCP_NODELAY on accepted sockets. Default true: message protocols stall on Nagle + delayed ACK. */
  noDelay?: boolean;
  /** TCP keep-alive initial delay in ms, or false. Default false. */
  keepAlive?: number | false;
  /**
   * Where the server reads and waits on time: `openedAt`, the drain deadline, tarpits,
   * `pauseReading(ms)`, close timeouts; plug-ins reach it as `conn.clock`. Default the real clock;
   * `@sock/core/testing` gives a virtual one.
   */
  clock?: Clock;
}

export interface ListenOptions {
  /** Default `127.0.0.1`. `::` with `ipv6Only: false` is dual-stack. */
  host?: string;
  /** Default 0: a free port; read it back from the result or `address()`. */
  port?: number;
  ipv6Only?: boolean;
  backlog?: number;
  signal?: AbortSignal;
}

export interface ServerAddress {
  readonly address: string;
  readonly port: number;
  readonly family: 'IPv4' | 'IPv6';
}

export interface CloseOptions {
  /** How long open connections may finish their work before being destroyed. Default 5000. */
  drainMs?: number;
}

export interface ServerStats {
  readonly accepted: number;
  readonly open: number;
  readonly active: number;
  readonly closed: number;
  readonly errors: number;
  /** Rejections that closed a connection, by reason. */
  readonly rejected: Readonly<Record<string, number>>;
  /** Decisions only reported (shadow mode, dropped messages), by reason. */
  readonly reported: Readonly<Record<string, number>>;
}

export interface SockServer<In = Buffer, Out = Uint8Array> {
  listen(options?: ListenOptions): Promise<ServerAddress>;
  /** The bound address, or null before listen / after close. */
  address(): ServerAddress | null;
  /**
   * Stop accepting; let connections that reached their handler finish (they stop reading, their queued
   * messages are still delivered, replies flushed) for up to `drainMs`; destroy the rest. Resolves when
   * every socket is closed.
   */
  close(options?: CloseOptions): Promise<void>;
  /**
   * Serve a stream that did not come from this server's listener (an SSH channel, a pipe): it runs the
   * `accept` and `handshake` hooks, then the handler, exactly like an accepted socket. `preface` hooks and
   * the server's `transport` are skipped: the stream is already past them, and `peer` names its peer.
   * Counted, drained and closed with the server's own connections.
   */
  adopt(stream: Duplex, peer: AdoptedPeer): Connection<In, Out>;
  /** Connections currently open, from accept to close. */
  readonly connections: ReadonlySet<Connection<In, Out>>;
  stats(): ServerStats;
}

/** A TCP server that runs every accepted socket through the pipeline, then the handler. */
export function createServer<In = Buffer, Out = Uint8Array>(
  options: ServerOptions<In, Out>,
): SockServer<In, Out> {
  return new Server(options);
}

class Server<In, Out> implements SockServer<In, Out> {
  private readonly net: NetServer;
  private readonly conns = new Set<SockConnection<In, Out>>();
  private readonly connOptions: ConnectionOptions<In, Out>;
  private readonly env: ConnectionEnv<In, Out>;
  private readonly observers: Observer[];
  private readonly counts = { accepted: 0, open: 0, closed: 0, errors: 0 };
  private readonly rejected: Record<string, number> = {};
  private readonly reported: Record<string, number> = {};
  private closing: Promise<void> | undefined;
  private bound: ServerAddress | null = null;

  constructor(options: ServerOptions<In, Out>) {
    if (typeof options.handler !== 'function' && typeof options.onMessage !== 'function') {
      throw new SockError(SockErrorCode.INVALID_OPTION, 'createServer: give a handler or onMessage function');
    }
    const replying = options.onInvalidMessage === 'reply' || options.onFrameTooLarge === 'reply-close';
    if (replying && !options.errorReply) {
      throw new SockError(
        SockErrorCode.INVALID_OPTION,
        'createServer: a reply policy (onInvalidMessage: "reply" or onFrameTooLarge: "reply-close") needs errorReply',
      );
    }
    checkLimit('maxQueuedMessages', options.maxQueuedMessages);
    checkLimit('maxQueuedBytes', options.maxQueuedBytes);
    checkLimit('maxWriteBufferBytes', options.maxWriteBufferBytes);
    this.connOptions = {
      ...options,
      framing: options.framing ?? lengthPrefixed(),
      codec: options.codec ?? (bytes() as unknown as Codec<In, Out>),
    };
    const onError = options.onError;
    this.observers = [
      (e) => {
        if (e.type === 'reject') {
          const table = e.closed ? this.rejected : this.reported;
          table[e.reason] = (table[e.reason] ?? 0) + 1;
        } else if (e.type === 'error') this.counts.errors++;
        else if (e.type === 'open') this.counts.open++;
      },
      ...(onError
        ? [
            (e: Parameters<Observer>[0]) => {
              if (e.type === 'error') onError(e.error, e.conn as Connection<In, Out> | undefined);
            },
          ]
        : []),
      ...(options.observers ?? []),
    ];
    const plugins = options.plugins ?? [];
    this.env = {
      plugins,
      prefaceHooks: plugins.filter((p) => p.preface),
      acceptHooks: plugins.filter((p) => p.accept),
      handshakeHooks: plugins.filter((p) => p.handshake),
      frameHooks: plugins.filter((p) => p.frame),
      observers: this.observers,
      clock: options.clock ?? systemClock,
      transport: options.transport?.name ?? 'tcp',
      serverTransport: options.transport,
      handler: options.handler,
      onMessage: options.onMessage,
      refusing: () => this.closing !== undefined,
      onClosed: (conn) => {
        this.conns.delete(conn);
        this.counts.closed++;
      },
    };
    this.net = createNetServer({
      pauseOnConnect: true,
      allowHalfOpen: true,
      noDelay: options.noDelay ?? true,
      keepAlive: options.keepAlive !== undefined && options.keepAlive !== false,
      keepAliveInitialDelay: options.keepAlive || 0,
    });
    this.net.on('connection', (socket) => this.accept(socket, undefined));
    this.net.on('error', (err) =>
      notify(this.observers, {
        type: 'error',
        error: toSockError(err, 'server', { reason: SockReason.SOCKET_ERROR }),
      }),
    );
  }

  get connections(): ReadonlySet<Connection<In, Out>> {
    return this.conns;
  }

  async listen(options: ListenOptions = {}): Promise<ServerAddress> {
    if (this.closing) throw new SockError(SockErrorCode.SERVER_NOT_RUNNING, 'listen: the server was closed');
    const { host = '127.0.0.1', port = 0, ipv6Only, backlog, signal } = options;
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) =>
        reject(toSockError(err, `listen on ${host}:${port}`, { reason: SockReason.SOCKET_ERROR }));
      this.net.once('error', onError);
      this.net.listen({ host, port, ipv6Only, backlog, signal }, () => {
        this.net.off('error', onError);
        resolve();
      });
    });
    const a = this.net.address();
    if (a === null || typeof a === 'string') {
      throw new SockError(SockErrorCode.SOCKET_ERROR, 'listen: no TCP address was bound');
    }
    this.bound = { address: a.address, port: a.port, family: a.family === 'IPv6' ? 'IPv6' : 'IPv4' };
    // A wildcard listener accepts on every local address: only then does each socket need asking.
    if (!WILDCARDS.has(a.address)) {
      this.env.boundLocal = { address: canonicalPeer(a.address).address, port: a.port };
    }
    notify(this.observers, { type: 'listening', ...this.bound });
    return this.bound;
  }

  address(): ServerAddress | null {
    return this.closing ? null : this.bound;
  }

  stats(): ServerStats {
    let active = 0;
    for (const c of this.conns) if (c.admitted) active++;
    return {
      ...this.counts,
      active,
      rejected: { ...this.rejected },
      reported: { ...this.reported },
    };
  }

  close(options: CloseOptions = {}): Promise<void> {
    this.closing ??= this.shutdown(options.drainMs ?? 5000);
    return this.closing;
  }

  private async shutdown(drainMs: number): Promise<void> {
    const stopped = this.net.listening
      ? new Promise<void>((r) => this.net.close(() => r()))
      : Promise.resolve();
    // Each connection drains itself: open ones stop reading and deliver what they read; the rest close.
    for (const conn of this.conns) conn.shutdown();
    const all = () => Promise.all([...this.conns].map((c) => c.closed));
    const clock = this.env.clock;
    let timer: unknown;
    const deadline = new Promise<void>((r) => {
      timer = clock.setTimeout(r, drainMs);
    });
    await Promise.race([all(), deadline]);
    clock.clearTimeout(timer);
    for (const conn of this.conns) {
      conn.destroy(
        new SockError(SockErrorCode.SERVER_NOT_RUNNING, 'drain deadline passed', {
          reason: SockReason.DRAIN_TIMEOUT,
        }),
      );
    }
    await all();
    await stopped;
  }

  adopt(stream: Duplex, peer: AdoptedPeer): Connection<In, Out> {
    // Adopted streams are not paused by a listener: hold their bytes until the pipeline lets them through.
    stream.pause();
    return this.accept(stream, peer);
  }

  /** Create the connection and count it; the connection runs its own pipeline, handler and close. */
  private accept(stream: Duplex, adopted: AdoptedPeer | undefined): SockConnection<In, Out> {
    this.counts.accepted++;
    const conn = new SockConnection(stream, this.connOptions, this.env, adopted);
    this.conns.add(conn);
    if (this.closing) conn.shutdown();
    else conn.run(adopted !== undefined);
    return conn;
  }
}

/** The addresses a listener binds to mean "every local address". */
const WILDCARDS = new Set(['0.0.0.0', '::', '::ffff:0.0.0.0']);

function checkLimit(name: string, value: number | undefined): void {
  if (value === undefined) return;
  if (!Number.isInteger(value) || value < 1) {
    throw new SockError(
      SockErrorCode.INVALID_OPTION,
      `createServer: ${name} must be a positive integer, got ${value}`,
    );
  }
}
