import { connect as netConnect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { type BackoffOptions, backoffDelay, checkBackoff, sleep } from './backoff.js';
import { type Clock, systemClock, unrefTimer } from './clock.js';
import { bytes, type Codec } from './codec.js';
import { type Connection, type ConnectionOptions, clientEnv, SockConnection } from './connection.js';
import { SockError, SockErrorCode, toSockError } from './errors.js';
import type { Framing } from './framing/framing.js';
import { lengthPrefixed } from './framing/length-prefixed.js';
import type { ClientTransport, DialOptions } from './pipeline.js';

export interface ConnectOptions<In, Out> extends Partial<ConnectionOptions<In, Out>> {
  /** Default `127.0.0.1`. */
  host?: string;
  port: number;
  localAddress?: string;
  /**
   * The source port to bind, 1–65535 (ncat's `-p` in connect mode). Default an ephemeral port. A port in
   * use fails the connect with a SockError whose message names EADDRINUSE.
   */
  localPort?: number;
  /** Per attempt, TCP (and TLS) handshake included. Default 10 s. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Retry a failed connect (refused, timed out, reset) with exponential backoff and jitter. Default: no retry. */
  retry?: BackoffOptions | boolean;
  /** Default `lengthPrefixed()`. */
  framing?: Framing;
  /** Default `bytes()`. */
  codec?: Codec<In, Out>;
  /** Default plain TCP; `tlsClient()` from @sock/tls for TLS. */
  transport?: ClientTransport;
  /** TCP_NODELAY. Default true. */
  noDelay?: boolean;
  /**
   * Where the connect timeout, retry backoff and the connection's close timeout wait. Default the real
   * clock; a virtual one (`@sock/core/testing`) runs them without waiting.
   */
  clock?: Clock;
}

/** Failures worth another attempt: the peer may come up, the path may clear. */
const RETRYABLE = new Set<string>([
  SockErrorCode.CONNECTION_REFUSED,
  SockErrorCode.CONNECT_TIMEOUT,
  SockErrorCode.CONNECTION_RESET,
  SockErrorCode.SOCKET_ERROR,
]);

/**
 * Connect to a sock (or any framed TCP) server. Rejects with ERR_SOCK_CONNECTION_REFUSED,
 * ERR_SOCK_CONNECT_TIMEOUT, ERR_SOCK_CONNECTION_RESET or ERR_SOCK_ABORTED, after the last retry if any.
 */
export async function connect<In = Buffer, Out = Uint8Array>(
  options: ConnectOptions<In, Out>,
): Promise<Connection<In, Out>> {
  const backoff = options.retry === true ? {} : options.retry || { attempts: 1 };
  const { attempts } = checkBackoff(backoff);
  for (let attempt = 1; ; attempt++) {
    await sleep(backoffDelay(attempt, backoff), options.signal, options.clock);
    try {
      return await connectOnce(options);
    } catch (err) {
      const error = err as SockError;
      if (attempt >= attempts || !RETRYABLE.has(error.code)) throw error;
    }
  }
}

/**
 * Connections, one after another: yields a connection, and when asked for the next one waits for the
 * current one to close, backs off, and reconnects. Stops when `signal` aborts (returns) or when
 * `retry.attempts` consecutive attempts fail (throws the last error).
 */
export async function* reconnect<In = Buffer, Out = Uint8Array>(
  options: ConnectOptions<In, Out>,
): AsyncGenerator<Connection<In, Out>, void, undefined> {
  const backoff = options.retry === true || options.retry === undefined ? {} : options.retry || {};
  const { attempts } = checkBackoff(backoff);
  let failures = 0;
  while (!options.signal?.aborted) {
    try {
      await sleep(backoffDelay(failures + 1, backoff), options.signal, options.clock);
      const conn = await connectOnce(options);
      failures = 0;
      yield conn;
      await conn.closed;
      // A connection that just closed is a failure for pacing: reconnect after the first delay, not at once.
      failures = 1;
    } catch (err) {
      const error = err as SockError;
      if (error.code === SockErrorCode.ABORTED && options.signal?.aborted) return;
      failures++;
      if (failures >= attempts || !RETRYABLE.has(error.code)) throw error;
    }
  }
}

async function connectOnce<In, Out>(options: ConnectOptions<In, Out>): Promise<Connection<In, Out>> {
  const { host = '127.0.0.1', port, timeoutMs = 10_000, signal } = options;
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new SockError(
      SockErrorCode.INVALID_OPTION,
      `connect: port must be an integer from 1 to 65535, got ${port}`,
    );
  }
  const { localPort } = options;
  if (localPort !== undefined && (!Number.isInteger(localPort) || localPort < 1 || localPort > 65535)) {
    throw new SockError(
      SockErrorCode.INVALID_OPTION,
      `connect: localPort must be an integer from 1 to 65535, got ${localPort}`,
    );
  }
  const clock = options.clock ?? systemClock;
  // On the injected clock rather than AbortSignal.timeout(), which only ever runs on real time.
  const timing = new AbortController();
  const timeout = timing.signal;
  const timer = clock.setTimeout(
    () => timing.abort(new DOMException(`timed out after ${timeoutMs} ms`, 'TimeoutError')),
    timeoutMs,
  );
  unrefTimer(timer);
  const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
  const transport = options.transport ?? tcp(options.noDelay ?? true);
  let socket: Duplex;
  try {
    if (combined.aborted) throw combined.reason;
    socket = await transport.dial({
      host,
      port,
      localAddress: options.localAddress,
      localPort,
      signal: combined,
    });
  } catch (err) {
    if (signal?.aborted) {
      throw new SockError(SockErrorCode.ABORTED, `connect to ${host}:${port} aborted`, {
        cause: signal.reason,
      });
    }
    if (timeout.aborted) {
      throw new SockError(
        SockErrorCode.CONNECT_TIMEOUT,
        `connect to ${host}:${port} timed out after ${timeoutMs} ms`,
        {
          cause: err,
        },
      );
    }
    throw toSockError(err, `connect to ${host}:${port}`);
  } finally {
    clock.clearTimeout(timer);
  }
  const conn = new SockConnection<In, Out>(
    socket,
    {
      ...options,
      framing: options.framing ?? lengthPrefixed(),
      codec: options.codec ?? (bytes() as unknown as Codec<In, Out>),
    },
    clientEnv<In, Out>(transport.name, clock),
  );
  conn.open();
  return conn;
}

/** Plain TCP dialing, the default client transport. */
export function tcp(noDelay = true): ClientTransport {
  return {
    name: 'tcp',
    dial: (options: DialOptions) =>
      new Promise<Socket>((resolve, reject) => {
        const socket = netConnect({
          host: options.host,
          port: options.port,
          localAddress: options.localAddress,
          localPort: options.localPort,
          allowHalfOpen: true,
          noDelay,
        });
        const onAbort = () => socket.destroy();
        const onError = (err: Error) => {
          options.signal.removeEventListener('abort', onAbort);
          reject(err);
        };
        socket.once('error', onError);
        socket.once('close', () =>
          reject(options.signal.reason ?? new Error('socket closed while connecting')),
        );
        socket.once('connect', () => {
          socket.off('error', onError);
          // Keep one listener until the connection attaches its own: an 'error' with none would throw.
          socket.on('error', () => {});
          socket.removeAllListeners('close');
          options.signal.removeEventListener('abort', onAbort);
          resolve(socket);
        });
        options.signal.addEventListener('abort', onAbort, { once: true });
      }),
  };
}
