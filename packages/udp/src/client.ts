import { randomInt } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { type BackoffOptions, bytes, type Codec, parseDuration, SockError, SockErrorCode } from '@sock/core';
import { backoffDelay, canonicalPeer } from '@sock/core/internal';
import type { DatagramSource } from './admission.js';
import { COOKIE_BYTES } from './cookie.js';
import { abortedError, Endpoint, type EndpointOptions, type UdpAddress, type UdpStats } from './endpoint.js';
import { encodeEnvelope, parseEnvelope } from './envelope.js';

export interface UdpClientOptions<Req, Res> extends Omit<EndpointOptions, 'antiAmplification'> {
  /** The server, as an IP address or a name resolved once. */
  host: string;
  port: number;
  /** Encodes requests and decodes responses. Default `bytes()`. */
  codec?: Codec<Res, Req>;
  /** Local address to send from. Default `0.0.0.0` (or `::` for an IPv6 server). */
  localAddress?: string;
  /**
   * Retransmissions, CoAP-style: attempt k waits `initialDelayMs × factor^(k-1)`, less up to `jitter` of
   * it, before the next. Default `{ attempts: 4, initialDelayMs: 1000, factor: 2, jitter: 1/3,
   * maxDelayMs: 8000 }`: waits of 0.67–1 s, 1.3–2 s, 2.7–4 s, 5.3–8 s, at most 15 s in all.
   */
  retry?: BackoffOptions;
  /** A deadline for each request over all its attempts. Default: the end of the last attempt's wait. */
  timeout?: number | string;
}

export interface UdpRequestOptions {
  signal?: AbortSignal;
  /** Overrides the client's `timeout` for this request. */
  timeout?: number | string;
}

export interface UdpClientStats extends UdpStats {
  readonly requests: number;
  readonly responses: number;
  /** Requests sent again after a wait without a reply. */
  readonly retransmissions: number;
  /** Requests sent again because the server asked for a cookie. */
  readonly challenges: number;
  readonly timeouts: number;
  readonly pending: number;
}

/**
 * Request/response over UDP: each request carries an id; a reply counts only when its id and its source
 * address and port match. Lost datagrams are retransmitted with exponential backoff and jitter; a request
 * settles exactly once. Address-validation cookies are handled transparently.
 */
export interface UdpClient<Req = Uint8Array, Res = Buffer> {
  /**
   * Send `message` and resolve with the reply. Rejects with ERR_SOCK_REQUEST_TIMEOUT when every attempt
   * went unanswered, ERR_SOCK_HANDLER_FAILED when the server reported a failure, ERR_SOCK_ABORTED on abort.
   */
  request(message: Req, options?: UdpRequestOptions): Promise<Res>;
  /** The local address, once the first request bound it. */
  address(): UdpAddress | null;
  stats(): UdpClientStats;
  /** Reject pending requests (ERR_SOCK_CONNECTION_CLOSED) and close the socket. */
  close(): Promise<void>;
}

/** A request/response client for a server made with `createUdpServer`. */
export function createUdpClient<Req = Uint8Array, Res = Buffer>(
  options: UdpClientOptions<Req, Res>,
): UdpClient<Req, Res> {
  return new Client(options);
}

/** The error a server's `error` reply stands for: it refused the request, or its handler failed. */
function serverError(payload: Buffer): SockError {
  const reason = payload.toString('latin1', 0, 64).replace(/[^\x20-\x7e]/g, '?');
  const code =
    reason === 'invalid-message'
      ? SockErrorCode.INVALID_MESSAGE
      : reason === 'validation-failed'
        ? SockErrorCode.VALIDATION_FAILED
        : SockErrorCode.HANDLER_FAILED;
  return new SockError(code, `the server could not answer the request: ${reason}`, { reason });
}

/** A server may ask for a new cookie this many times per request before the request gives up on it. */
const MAX_CHALLENGES = 2;
const NO_COOKIE = Buffer.alloc(COOKIE_BYTES);

interface Pending<Res> {
  readonly id: number;
  readonly payload: Uint8Array;
  readonly deadline: number;
  attempt: number;
  challenges: number;
  /** A handle of the endpoint's clock. */
  timer: unknown;
  resolve(value: Res): void;
  reject(error: SockError): void;
}

class Client<Req, Res> implements UdpClient<Req, Res> {
  private readonly endpoint: Endpoint;
  private readonly codec: Codec<Res, Req>;
  private readonly retry: BackoffOptions & { attempts: number };
  private readonly timeoutMs: number | undefined;
  private readonly pending = new Map<number, Pending<Res>>();
  private readonly counts = { requests: 0, responses: 0, retransmissions: 0, challenges: 0, timeouts: 0 };
  private server: { address: string; port: number } | undefined;
  private ready: Promise<void> | undefined;
  private cookie: Buffer = NO_COOKIE;
  private nextId = randomInt(0, 0x1_0000_0000);

  constructor(private readonly options: UdpClientOptions<Req, Res>) {
    if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535) {
      throw new SockError(
        SockErrorCode.INVALID_OPTION,
        `createUdpClient: port must be 1-65535, got ${options.port}`,
      );
    }
    this.codec = options.codec ?? (bytes() as unknown as Codec<Res, Req>);
    this.retry = {
      attempts: 4,
      initialDelayMs: 1000,
      factor: 2,
      jitter: 1 / 3,
      maxDelayMs: 8000,
      ...options.retry,
    };
    if (!Number.isSafeInteger(this.retry.attempts) || this.retry.attempts < 1) {
      throw new SockError(
        SockErrorCode.INVALID_OPTION,
        `createUdpClient: retry.attempts must be a positive integer, got ${this.retry.attempts}`,
      );
    }
    this.timeoutMs =
      options.timeout === undefined ? undefined : parseDuration(options.timeout, 'createUdpClient: timeout');
    this.endpoint = new Endpoint(
      { ...options, antiAmplification: false },
      this.onDatagram,
      false,
      'udp client',
    );
  }

  address(): UdpAddress | null {
    return this.endpoint.address();
  }

  stats(): UdpClientStats {
    return { ...this.endpoint.stats(), ...this.counts, pending: this.pending.size };
  }

  async request(message: Req, options: UdpRequestOptions = {}): Promise<Res> {
    const { signal } = options;
    if (signal?.aborted) throw abortedError(signal, 'udp client.request');
    await this.start();
    if (this.endpoint.isClosed) {
      throw new SockError(SockErrorCode.CONNECTION_CLOSED, 'udp client.request: the client is closed');
    }
    const payload = this.codec.encode(message);
    const id = this.allocateId();
    const total =
      options.timeout === undefined ? this.timeoutMs : parseDuration(options.timeout, 'request: timeout');
    this.counts.requests++;
    return new Promise<Res>((resolve, reject) => {
      const onAbort = () => settle(abortedError(signal as AbortSignal, 'udp client.request'));
      const settle = (outcome: SockError | { value: Res }) => {
        if (this.pending.get(id) !== entry) return; // settled already: never twice
        this.pending.delete(id);
        this.endpoint.clock.clearTimeout(entry.timer);
        signal?.removeEventListener('abort', onAbort);
        if (SockError.isInstance(outcome)) reject(outcome);
        else resolve(outcome.value);
      };
      const entry: Pending<Res> = {
        id,
        payload,
        deadline: total === undefined ? Number.POSITIVE_INFINITY : this.endpoint.now() + total,
        attempt: 1,
        challenges: 0,
        timer: undefined,
        resolve: (value) => settle({ value }),
        reject: (error) => settle(error),
      };
      this.pending.set(id, entry);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.transmit(entry);
    });
  }

  async close(): Promise<void> {
    for (const entry of [...this.pending.values()]) {
      entry.reject(
        new SockError(SockErrorCode.CONNECTION_CLOSED, 'udp client closed with the request pending'),
      );
    }
    await this.endpoint.close();
  }

  private start(): Promise<void> {
    this.ready ??= (async () => {
      const { address, family } = await lookup(this.options.host, { verbatim: true });
      this.server = { address: canonicalPeer(address).address, port: this.options.port };
      await this.endpoint.bind({ host: this.options.localAddress ?? (family === 6 ? '::' : '0.0.0.0') });
    })();
    return this.ready;
  }

  private allocateId(): number {
    let id = this.nextId;
    while (this.pending.has(id)) id = (id + 1) >>> 0;
    this.nextId = (id + 1) >>> 0;
    return id;
  }

  /** Send (or resend) a request and arm its one timer for the wait that follows. */
  private transmit(entry: Pending<Res>): void {
    const server = this.server!;
    try {
      this.endpoint.transmit(
        encodeEnvelope('request', entry.id, entry.payload, this.cookie),
        server.address,
        server.port,
      );
    } catch (err) {
      entry.reject(err as SockError);
      return;
    }
    const wait = backoffDelay(entry.attempt + 1, this.retry);
    const remaining = entry.deadline - this.endpoint.now();
    const clock = this.endpoint.clock;
    if (entry.timer !== undefined) clock.clearTimeout(entry.timer);
    entry.timer = clock.setTimeout(() => this.onTimer(entry), Math.max(0, Math.min(wait, remaining)));
  }

  private onTimer(entry: Pending<Res>): void {
    if (entry.attempt >= this.retry.attempts || this.endpoint.now() >= entry.deadline) {
      this.counts.timeouts++;
      entry.reject(
        new SockError(
          SockErrorCode.REQUEST_TIMEOUT,
          `no reply from ${this.server?.address}:${this.server?.port} after ${entry.attempt} attempt(s); ` +
            'raise retry.attempts or timeout if the server is slow',
        ),
      );
      return;
    }
    entry.attempt++;
    this.counts.retransmissions++;
    this.transmit(entry);
  }

  private readonly onDatagram = (datagram: Buffer, source: DatagramSource): void => {
    const envelope = parseEnvelope(datagram);
    if (envelope === undefined || envelope.kind === 'request') {
      this.endpoint.drop(source, 'message', 'invalid-envelope', true);
      return;
    }
    const entry = this.pending.get(envelope.id);
    const server = this.server;
    if (
      entry === undefined ||
      server === undefined ||
      source.port !== server.port ||
      source.address !== server.address
    ) {
      // Late duplicates of answered requests land here too: not the sender's fault.
      this.endpoint.drop(source, 'message', 'unmatched-reply', false);
      return;
    }
    if (envelope.cookie) this.cookie = Buffer.from(envelope.cookie);
    switch (envelope.kind) {
      case 'cookie':
        if (entry.challenges >= MAX_CHALLENGES) {
          this.endpoint.drop(source, 'message', 'cookie-loop', false);
          return;
        }
        entry.challenges++;
        this.counts.challenges++;
        this.transmit(entry);
        return;
      case 'error':
        entry.reject(serverError(envelope.payload));
        return;
      default:
        this.counts.responses++;
        this.decode(entry, envelope.payload, source);
    }
  };

  private decode(entry: Pending<Res>, payload: Buffer, source: DatagramSource): void {
    const fail = (err: unknown) => {
      this.endpoint.dropInvalid(err, source);
      entry.reject(
        SockError.isInstance(err)
          ? err
          : new SockError(SockErrorCode.INVALID_MESSAGE, String(err), { cause: err }),
      );
    };
    let value: Res | Promise<Res>;
    try {
      value = this.codec.decode(payload);
    } catch (err) {
      fail(err);
      return;
    }
    if (value instanceof Promise) value.then(entry.resolve, fail);
    else entry.resolve(value);
  }
}
