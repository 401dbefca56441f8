import { bytes, type Codec, SockError, SockErrorCode, SockReason } from '@sock/core';
import type { DatagramSource } from './admission.js';
import {
  abortedError,
  Endpoint,
  type EndpointOptions,
  type Inbound,
  type UdpAddress,
  type UdpBindOptions,
  type UdpStats,
} from './endpoint.js';
import { BoundedQueue } from './queue.js';

export interface UdpSocketOptions<In, Out> extends EndpointOptions {
  /** How payloads become messages and back, one per datagram. Default `bytes()`. */
  codec?: Codec<In, Out>;
  /**
   * Datagrams waiting for the iterator at most. UDP has no backpressure: when the consumer lags, newer
   * datagrams are dropped and counted (`queue-full`). Default 1024.
   */
  maxQueue?: number;
  /**
   * Receive datagrams by callback instead of iterating: no queue and no promise per datagram, the
   * fastest path (what a `node:dgram` 'message' listener costs). Each admitted, decoded datagram is
   * handed over at once, in order. UDP has no backpressure, so a returned promise is not waited on; a
   * throw or rejection is reported to observers as an `error` (code `ERR_SOCK_HANDLER_FAILED`) and the
   * socket keeps receiving. Iterating a socket that has one ends at once.
   */
  onDatagram?: (datagram: Datagram<In>, socket: UdpSocket<In, Out>) => void | Promise<void>;
}

/** One received datagram, decoded. */
export interface Datagram<T> {
  readonly message: T;
  readonly address: string;
  readonly port: number;
  readonly family: 'IPv4' | 'IPv6';
  /** Bytes on the wire. */
  readonly size: number;
}

export interface UdpSendOptions {
  /** Destination; leave both out on a connected socket. */
  address?: string;
  port?: number;
  signal?: AbortSignal;
}

export interface UdpConnectOptions {
  host: string;
  port: number;
  signal?: AbortSignal;
}

/**
 * A UDP socket: an async iterable of decoded datagrams plus `send()`. Oversize, rejected and invalid
 * datagrams never reach the iterator; they are counted in `stats().dropped` and reported to observers.
 */
export interface UdpSocket<In = Buffer, Out = Uint8Array> extends AsyncIterable<Datagram<In>> {
  /** Bind and start receiving. */
  bind(options?: UdpBindOptions): Promise<UdpAddress>;
  /** Connected mode: only this peer's datagrams are received, and `send` needs no address. */
  connect(options: UdpConnectOptions): Promise<void>;
  /**
   * Encode and send one message as one datagram. Throws ERR_SOCK_FRAME_TOO_LARGE when it exceeds
   * maxPayloadBytes. Resolves false (and counts `amplification-limit`) when anti-amplification withheld it.
   */
  send(message: Out, options?: UdpSendOptions): Promise<boolean>;
  /** Datagrams until the socket closes or `signal` aborts (what is queued is still delivered on close). */
  datagrams(options?: { signal?: AbortSignal }): AsyncIterable<Datagram<In>>;
  /** The bound address, or null before bind/connect. */
  address(): UdpAddress | null;
  /** The peer in connected mode, else null. */
  remoteAddress(): UdpAddress | null;
  /** Lift the anti-amplification cap for a peer validated by other means. */
  validate(address: string, port: number): void;
  /** The kernel's buffer sizes in bytes (Linux reports double what was asked). */
  bufferSizes(): { receive: number; send: number };
  stats(): UdpStats & { readonly queued: number };
  /** Stop receiving; resolves when the socket is closed. Iterators see the rest of the queue, then end. */
  close(): Promise<void>;
}

/** A UDP socket with size limits, per-datagram guards and codecs, and a bounded receive queue. */
export function createUdpSocket<In = Buffer, Out = Uint8Array>(
  options: UdpSocketOptions<In, Out> = {},
): UdpSocket<In, Out> {
  return new Socket(options);
}

class Socket<In, Out> implements UdpSocket<In, Out> {
  private readonly endpoint: Endpoint;
  private readonly codec: Codec<In, Out>;
  private readonly queue: BoundedQueue<Datagram<In>>;
  private readonly listener: UdpSocketOptions<In, Out>['onDatagram'];

  constructor(options: UdpSocketOptions<In, Out>) {
    this.codec = options.codec ?? (bytes() as unknown as Codec<In, Out>);
    const maxQueue = options.maxQueue ?? 1024;
    if (!Number.isSafeInteger(maxQueue) || maxQueue < 1) {
      throw new SockError(
        SockErrorCode.INVALID_OPTION,
        `createUdpSocket: maxQueue must be a positive integer, got ${maxQueue}`,
      );
    }
    if (options.onDatagram !== undefined && typeof options.onDatagram !== 'function') {
      throw new SockError(SockErrorCode.INVALID_OPTION, 'createUdpSocket: onDatagram must be a function');
    }
    this.listener = options.onDatagram;
    this.queue = new BoundedQueue(maxQueue);
    // A socket with a callback never queues: its iterators end at once.
    if (this.listener) this.queue.end();
    this.endpoint = new Endpoint(options, this.onDatagram, false, 'udp socket');
  }

  bind(options?: UdpBindOptions): Promise<UdpAddress> {
    return this.endpoint.bind(options);
  }

  connect(options: UdpConnectOptions): Promise<void> {
    return this.endpoint.connect(options.port, options.host, options.signal);
  }

  async send(message: Out, options: UdpSendOptions = {}): Promise<boolean> {
    const encoded = this.codec.encode(message);
    return this.endpoint.send(encoded, options.address, options.port, options.signal);
  }

  address(): UdpAddress | null {
    return this.endpoint.address();
  }

  remoteAddress(): UdpAddress | null {
    return this.endpoint.remoteAddress();
  }

  validate(address: string, port: number): void {
    this.endpoint.validate(address, port);
  }

  bufferSizes(): { receive: number; send: number } {
    return this.endpoint.bufferSizes();
  }

  stats(): UdpStats & { readonly queued: number } {
    return { ...this.endpoint.stats(), queued: this.queue.length };
  }

  async close(): Promise<void> {
    await this.endpoint.close();
    this.queue.end();
  }

  [Symbol.asyncIterator](): AsyncIterator<Datagram<In>> {
    return { next: () => this.queue.next() };
  }

  datagrams(options: { signal?: AbortSignal } = {}): AsyncIterable<Datagram<In>> {
    const { signal } = options;
    if (!signal) return this;
    const queue = this.queue;
    const aborted = () => abortedError(signal, 'udp socket.datagrams');
    return {
      [Symbol.asyncIterator]: () => ({
        next: () =>
          queue.next(signal).catch((err: unknown) => {
            throw signal.aborted ? aborted() : err;
          }),
      }),
    };
  }

  private readonly onDatagram = (payload: Buffer, source: Inbound): void => {
    let message: In | Promise<In>;
    try {
      message = this.codec.decode(payload);
    } catch (err) {
      this.invalid(err, source);
      return;
    }
    if (message instanceof Promise) {
      message.then(
        (m) => this.enqueue(m, source),
        (err: unknown) => this.invalid(err, source),
      );
    } else {
      this.enqueue(message, source);
    }
  };

  private enqueue(message: In, source: Inbound): void {
    source.message = message;
    if (this.listener) {
      this.deliver(this.listener, source as Datagram<In>);
      return;
    }
    if (!this.queue.push(source as Datagram<In>)) this.endpoint.drop(source, 'message', 'queue-full', false);
  }

  /** Hand one datagram to the callback; its failure is the application's bug: reported, never fatal. */
  private deliver(
    listener: NonNullable<UdpSocketOptions<In, Out>['onDatagram']>,
    datagram: Datagram<In>,
  ): void {
    let result: void | Promise<void>;
    try {
      result = listener(datagram, this);
    } catch (err) {
      this.listenerFailed(err);
      return;
    }
    if (result instanceof Promise) result.catch((err: unknown) => this.listenerFailed(err));
  }

  private readonly listenerFailed = (err: unknown): void => {
    this.endpoint.reportError(
      new SockError(
        SockErrorCode.HANDLER_FAILED,
        `onDatagram failed: ${(err as Error)?.message ?? String(err)}`,
        { cause: err, reason: SockReason.HANDLER_ERROR },
      ),
    );
  };

  private invalid(err: unknown, source: DatagramSource): void {
    this.endpoint.dropInvalid(err, source);
  }
}
