import { once } from 'node:events';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { canonicalPeer } from './address.js';
import type { Codec } from './codec.js';
import { fromSocketError, SockError, SockErrorCode } from './errors.js';
import type { FrameDecoder, Framing } from './framing/framing.js';
import { notify, type Observer } from './observer.js';
import type {
  AdoptedPeer,
  CloseInfo,
  ConnectionControl,
  ConnectionStats,
  PeerAddress,
  Plugin,
  Rejection,
  Stage,
  Violation,
} from './pipeline.js';

/** What to do with a frame that fails to decode or validate. */
export type InvalidMessagePolicy = 'close' | 'drop' | 'reply';
/** What to do when a peer sends an oversized frame: the stream cannot be resynchronised, so it closes. */
export type FrameTooLargePolicy = 'close' | 'reply-close';

export interface ConnectionOptions<In, Out> {
  framing: Framing;
  codec: Codec<In, Out>;
  /** Largest number of bytes queued for a peer that does not read. Default 1 MiB. */
  maxWriteBufferBytes?: number;
  /** Decoded messages held for a handler that has not read them yet; reading pauses above it. Default 16. */
  maxQueuedMessages?: number;
  onInvalidMessage?: InvalidMessagePolicy;
  onFrameTooLarge?: FrameTooLargePolicy;
  /** The message sent for the `reply` policies. */
  errorReply?: (error: SockError) => Out;
  /** After `close()`, how long to wait for the peer's side before destroying. Default 5 s. */
  closeTimeoutMs?: number;
}

export interface SendOptions {
  signal?: AbortSignal;
}

/**
 * One connection as a handler sees it: an async iterable of messages and a `send()` that resolves when the
 * bytes are handed to the kernel. Iteration ends when the peer closes its side or the connection closes;
 * `closed` then says why.
 */
export interface Connection<In = Buffer, Out = Uint8Array> extends ConnectionControl, AsyncIterable<In> {
  send(message: Out, options?: SendOptions): Promise<void>;
  /** Flush what is queued, end our side, and resolve once the socket is closed. */
  close(): Promise<void>;
  /** Close at once; `error` is reported as the reason. */
  destroy(error?: SockError): void;
  /** Resolves (never rejects) when the socket is closed. */
  readonly closed: Promise<CloseInfo>;
  /**
   * The underlying stream: a net.Socket, a TLSSocket under TLS, or the Duplex given to `server.adopt()`.
   * For what sock does not wrap.
   */
  readonly socket: Duplex;
}

export interface ConnectionEnv {
  readonly plugins: readonly Plugin[];
  readonly observers: readonly Observer[];
  readonly now: () => number;
  readonly transport: string;
  /** Set for a stream given to `server.adopt()`: its peer replaces what a TCP socket would report. */
  readonly adopted?: AdoptedPeer | undefined;
}

let nextId = 1;

class PendingReply {
  constructor(readonly error: SockError) {}
}

const DEFAULT_WRITE_BUFFER = 1024 * 1024;
const RESOLVED: Promise<void> = Promise.resolve();
const EMPTY = Buffer.alloc(0);

/** @internal The one implementation behind server and client connections. */
export class SockConnection<In, Out> implements Connection<In, Out> {
  readonly id = nextId++;
  readonly stats: ConnectionStats = { bytesIn: 0, bytesOut: 0, framesIn: 0, framesOut: 0 };
  private localsMap: Map<symbol, unknown> | undefined;
  readonly openedAt: number;
  remoteAddress: string;
  remotePort: number;
  remoteFamily: 'IPv4' | 'IPv6';
  readonly localAddress: string;
  readonly localPort: number;
  readonly socketAddress: string;
  readonly socketPort: number;
  socket: Duplex;
  readonly identity: Readonly<Record<string, unknown>> | undefined;
  readonly closed: Promise<CloseInfo>;

  /** Created on first use: most connections never ask for a signal, and abort() costs a DOMException. */
  private abort: AbortController | undefined;
  private resolveClosed!: (info: CloseInfo) => void;
  private closeReason: { reason: string; error?: SockError | undefined } | undefined;
  private started = false;
  private finished = false;
  private readonly frameHooks: Plugin[];
  private decoder: FrameDecoder | undefined;
  /** Messages not yet taken by the handler, and error replies that must follow them in order. */
  private readonly queue: Array<In | PendingReply> = [];
  private waiter: ((r: IteratorResult<In>) => void) | undefined;
  private inboundEnded = false;
  private pendingDecodes = 0;
  private ordering: Promise<void> | undefined;
  private pauses = 0;
  private backpressured = false;
  private pauseTimer: NodeJS.Timeout | undefined;
  private closeTimer: NodeJS.Timeout | undefined;
  private ending = false;
  /** The peer broke the protocol: close flushes and destroys instead of waiting for the peer's FIN. */
  private fatal = false;
  /** Set when the connection fails: messages not yet read are dropped, not delivered. */
  private discarding = false;
  private readonly maxWrite: number;
  private readonly maxQueued: number;
  /** Set once the accept stage was entered: only then do plug-ins get `close`. */
  acceptEntered = false;
  reachedHandler = false;
  handlerRunning = false;
  /** @internal Set by the server when messages go to `onMessage` instead of iteration. */
  listener: ((message: In, conn: Connection<In, Out>) => void | Promise<void>) | undefined;
  private listenerBusy = false;
  private closeWhenIdle = false;

  constructor(
    socket: Duplex,
    private readonly options: ConnectionOptions<In, Out>,
    private readonly env: ConnectionEnv,
  ) {
    this.socket = socket;
    this.openedAt = env.now();
    // A net.Socket knows its addresses; any other Duplex gets them from adopt() (or reports none).
    const tcp = socket as Partial<Socket>;
    const adopted = env.adopted;
    const peer = canonicalPeer(adopted?.remoteAddress ?? tcp.remoteAddress ?? '');
    this.remoteAddress = peer.address;
    this.remoteFamily = peer.family;
    this.remotePort = adopted?.remotePort ?? tcp.remotePort ?? 0;
    this.socketAddress = peer.address;
    this.socketPort = this.remotePort;
    this.localAddress = canonicalPeer(adopted?.localAddress ?? tcp.localAddress ?? '').address;
    this.localPort = adopted?.localPort ?? tcp.localPort ?? 0;
    this.identity = adopted?.identity;
    this.maxWrite = options.maxWriteBufferBytes ?? DEFAULT_WRITE_BUFFER;
    this.maxQueued = options.maxQueuedMessages ?? 16;
    this.frameHooks = env.plugins.filter((p) => p.frame);
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
    this.watch(socket);
  }

  get transport(): string {
    return this.env.transport;
  }

  get signal(): AbortSignal {
    this.abort ??= new AbortController();
    if (this.finished && !this.abort.signal.aborted) this.abort.abort();
    return this.abort.signal;
  }

  get locals(): Map<symbol, unknown> {
    this.localsMap ??= new Map();
    return this.localsMap;
  }

  get closing(): boolean {
    return this.closeReason !== undefined || this.finished;
  }

  /** @internal PROXY protocol named the real peer. */
  setPeer(peer: PeerAddress): void {
    const canonical = canonicalPeer(peer.address);
    this.remoteAddress = canonical.address;
    this.remoteFamily = canonical.family;
    this.remotePort = peer.port;
  }

  /** @internal The transport replaced the socket (TLS over TCP). */
  replaceSocket(socket: Duplex): void {
    if (socket === this.socket) return;
    this.socket = socket;
    this.watch(socket);
  }

  private watch(socket: Duplex): void {
    socket.on('error', (err) => this.recordClose('socket-error', fromSocketError(err, 'socket')));
    socket.once('close', () => this.finish());
  }

  /** @internal Begin reading frames: the pipeline let the connection through. */
  start(): void {
    if (this.closing) return;
    this.started = true;
    this.decoder = this.options.framing.createDecoder();
    const socket = this.socket;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => {
      if (!this.closeReason) this.closeReason = { reason: 'peer-closed' };
      this.endInbound();
      // Half-open is kept only while a handler or listener may still answer what it read.
      if (this.listener) this.closeWhenIdle = true;
      else if (!this.handlerRunning) void this.close();
      this.maybeCloseIdle();
    });
    this.updateFlow();
  }

  // ---- inbound ----

  private onData(chunk: Buffer): void {
    this.stats.bytesIn += chunk.length;
    if (this.inboundEnded) return;
    try {
      this.decoder!.push(chunk, this.onFrame);
    } catch (err) {
      this.onDecodeFailure(err);
    }
  }

  private readonly onFrame = (frame: Buffer): void => {
    if (this.inboundEnded) return;
    this.stats.framesIn++;
    for (const plugin of this.frameHooks) {
      const verdict = plugin.frame!(this, frame);
      if (verdict && !this.applyVerdict(plugin.name, 'frame', verdict)) return;
    }
    if (this.ordering) {
      this.pendingDecodes++;
      this.ordering = this.ordering.then(() => this.decodeAsync(frame));
      return;
    }
    let message: In | Promise<In>;
    try {
      message = this.options.codec.decode(frame);
    } catch (err) {
      this.onInvalid(err);
      return;
    }
    if (message instanceof Promise) {
      this.pendingDecodes++;
      this.ordering = message.then(
        (m) => this.settleDecode(m),
        (err) => this.settleDecode(undefined, err),
      );
      return;
    }
    this.enqueue(message);
  };

  private async decodeAsync(frame: Buffer): Promise<void> {
    try {
      this.settleDecode(await this.options.codec.decode(frame));
    } catch (err) {
      this.settleDecode(undefined, err);
    }
  }

  private settleDecode(message: In | undefined, err?: unknown): void {
    this.pendingDecodes--;
    if (this.pendingDecodes === 0) this.ordering = undefined;
    if (err !== undefined) this.onInvalid(err);
    else if (!this.discarding) this.enqueue(message as In);
    this.maybeFinishInbound();
    this.maybeCloseIdle();
  }

  private enqueue(message: In): void {
    if (this.listener) {
      this.deliver(message);
      return;
    }
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w({ value: message, done: false });
      return;
    }
    this.queue.push(message);
    if (!this.backpressured && this.queue.length + this.pendingDecodes >= this.maxQueued) {
      this.backpressured = true;
      this.updateFlow();
    }
  }

  /**
   * Callback delivery (`onMessage`): no queue and no promise per message. A listener that returns a
   * promise pauses reading until it settles, so messages stay in order and a slow listener is backpressure.
   */
  private deliver(message: In): void {
    if (this.listenerBusy) {
      this.queue.push(message);
      if (!this.backpressured && this.queue.length >= this.maxQueued) {
        this.backpressured = true;
        this.updateFlow();
      }
      return;
    }
    let result: void | Promise<void>;
    try {
      result = this.listener!(message, this);
    } catch (err) {
      this.onListenerError(err);
      return;
    }
    if (result instanceof Promise) {
      this.listenerBusy = true;
      result.then(this.onListenerDone, (err) => this.onListenerError(err));
    }
  }

  private readonly onListenerDone = (): void => {
    this.listenerBusy = false;
    while (this.queue.length > 0 && !this.listenerBusy && !this.discarding) {
      const next = this.queue.shift() as In | PendingReply;
      if (next instanceof PendingReply) void this.sendErrorReply(next.error);
      else this.deliver(next);
    }
    if (this.backpressured && this.queue.length < this.maxQueued / 2) {
      this.backpressured = false;
      this.updateFlow();
    }
    this.maybeCloseIdle();
  };

  /** The peer has ended and the listener has answered everything: close our side too. */
  private maybeCloseIdle(): void {
    if (this.closeWhenIdle && !this.listenerBusy && this.queue.length === 0 && this.pendingDecodes === 0) {
      void this.close();
    }
  }

  private onListenerError(err: unknown): void {
    this.reportError(err);
    this.destroy(
      new SockError(
        SockErrorCode.HANDLER_FAILED,
        `onMessage failed: ${(err as Error)?.message ?? String(err)}`,
        {
          cause: err,
          reason: 'handler-error',
        },
      ),
    );
  }

  private onDecodeFailure(err: unknown): void {
    const error = SockError.isInstance(err) ? err : fromSocketError(err, 'decode');
    this.violate('frame', error, this.options.onFrameTooLarge === 'reply-close');
  }

  /**
   * The peer broke the protocol: stop reading, let the handler finish the messages already read (nothing
   * valid is lost), optionally tell the peer why, then flush and close without waiting for its FIN.
   */
  private violate(stage: Stage, error: SockError, reply: boolean): void {
    if (this.finished || this.ending || this.fatal) return;
    this.emitReject(stage, 'core', { reason: error.reason ?? 'error', message: error.message }, true, error);
    this.recordClose(error.reason ?? 'error', error);
    this.fatal = true;
    this.inboundEnded = true;
    if (reply) this.replyInOrder(error);
    this.updateFlow();
    this.maybeFinishInbound();
    if (!this.handlerRunning) void this.close();
    else this.armCloseTimer();
  }

  private armCloseTimer(): void {
    if (this.closeTimer) return;
    this.closeTimer = setTimeout(() => this.socket.destroy(), this.options.closeTimeoutMs ?? 5000);
    this.closeTimer.unref?.();
  }

  private onInvalid(err: unknown): void {
    if (!SockError.isInstance(err)) {
      this.fail(
        'message',
        'core',
        new SockError(SockErrorCode.INVALID_MESSAGE, `decode failed: ${String(err)}`, {
          cause: err,
          reason: 'invalid-message',
        }),
      );
      return;
    }
    const policy = this.options.onInvalidMessage ?? 'close';
    const rejection = { reason: err.reason ?? 'invalid-message', message: err.message };
    if (policy === 'close') {
      this.violate('message', err, false);
      return;
    }
    this.emitReject('message', 'core', rejection, false, err);
    if (policy === 'reply') this.replyInOrder(err);
  }

  /**
   * An error reply goes out after the handler has dealt with every message read before the bad one, so a
   * peer sees answers in the order it asked.
   */
  private replyInOrder(error: SockError): void {
    const busy = this.listener ? this.listenerBusy : this.handlerRunning && !this.waiter;
    if (busy) this.queue.push(new PendingReply(error));
    else void this.sendErrorReply(error);
  }

  private async sendErrorReply(error: SockError): Promise<void> {
    if (!this.options.errorReply) return;
    try {
      await this.send(this.options.errorReply(error));
    } catch {
      // The peer is gone or does not read: the close that follows reports it.
    }
  }

  /** Drop unread messages and end iteration: the connection failed. */
  private stopInbound(): void {
    this.discarding = true;
    this.inboundEnded = true;
    this.queue.length = 0;
    this.releaseWaiter();
  }

  /** @internal Server drain: stop reading; messages already read are still delivered. */
  drain(): void {
    this.endInbound();
    this.updateFlow();
  }

  private endInbound(): void {
    this.inboundEnded = true;
    this.maybeFinishInbound();
  }

  private maybeFinishInbound(): void {
    if (this.inboundEnded && this.pendingDecodes === 0 && this.queue.length === 0) this.releaseWaiter();
  }

  private releaseWaiter(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterator<In> {
    return {
      next: () => {
        while (this.queue.length > 0) {
          const value = this.queue.shift() as In | PendingReply;
          if (value instanceof PendingReply) {
            void this.sendErrorReply(value.error);
            continue;
          }
          if (this.backpressured && this.queue.length + this.pendingDecodes < this.maxQueued / 2) {
            this.backpressured = false;
            this.updateFlow();
          }
          return Promise.resolve({ value, done: false });
        }
        if (this.inboundEnded && this.pendingDecodes === 0)
          return Promise.resolve({ value: undefined, done: true });
        if (this.waiter)
          throw new SockError(SockErrorCode.INVALID_OPTION, 'one reader at a time per connection');
        return new Promise((resolve) => {
          this.waiter = resolve;
        });
      },
      return: () => {
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }

  // ---- flow control ----

  pauseReading(ms?: number): void {
    if (this.pauseTimer) clearTimeout(this.pauseTimer);
    this.pauses = 1;
    this.pauseTimer = ms === undefined ? undefined : setTimeout(() => this.resumeReading(), ms);
    this.updateFlow();
  }

  resumeReading(): void {
    if (this.pauseTimer) clearTimeout(this.pauseTimer);
    this.pauseTimer = undefined;
    this.pauses = 0;
    this.updateFlow();
  }

  private updateFlow(): void {
    if (!this.started || this.finished) return;
    // After close(), keep reading (and discarding) so the peer's FIN arrives and the socket can close.
    if (this.ending && !this.fatal) this.socket.resume();
    else if (this.pauses > 0 || this.backpressured || this.inboundEnded) this.socket.pause();
    else this.socket.resume();
  }

  // ---- outbound ----

  send(message: Out, options?: SendOptions): Promise<void> {
    if (this.ending || this.finished || this.discarding) {
      return Promise.reject(
        new SockError(SockErrorCode.CONNECTION_CLOSED, 'send on a closed connection', {
          cause: this.closeReason?.error,
        }),
      );
    }
    if (options?.signal?.aborted) {
      return Promise.reject(
        new SockError(SockErrorCode.ABORTED, 'send aborted', { cause: options.signal.reason }),
      );
    }
    let data: Buffer;
    try {
      data = this.options.framing.encode(this.options.codec.encode(message));
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.socket.writableLength + data.length > this.maxWrite) {
      const error = new SockError(
        SockErrorCode.WRITE_BUFFER_FULL,
        `peer is not reading: ${this.socket.writableLength + data.length} bytes queued exceeds maxWriteBufferBytes ${this.maxWrite}`,
        { reason: 'write-buffer-full' },
      );
      this.fail('frame', 'core', error);
      return Promise.reject(error);
    }
    this.stats.framesOut++;
    this.stats.bytesOut += data.length;
    const socket = this.socket;
    if (socket.writableLength === 0 && !socket.writableCorked && (socket as Socket).connecting !== true) {
      // Nothing queued: Node tries the write synchronously. If the kernel took every byte, the send is
      // done now, and a shared resolved promise saves a callback and a promise per message (the hot path).
      socket.write(data);
      if (socket.writableLength === 0) return RESOLVED;
      return this.whenFlushed();
    }
    return new Promise((resolve, reject) => {
      socket.write(data, (err) => (err ? reject(fromSocketError(err, 'send')) : resolve()));
    });
  }

  /** Resolves when the bytes queued so far are handed to the kernel; rejects if the socket fails first. */
  private whenFlushed(): Promise<void> {
    return new Promise((resolve, reject) => {
      // An empty write's callback runs after everything queued before it has been written.
      this.socket.write(EMPTY, (err) => (err ? reject(fromSocketError(err, 'send')) : resolve()));
    });
  }

  // ---- closing ----

  close(): Promise<void> {
    if (!this.finished && !this.ending) {
      this.ending = true;
      this.recordClose('closed');
      this.endInbound();
      this.updateFlow();
      if (this.fatal) this.socket.once('finish', () => this.socket.destroy());
      this.socket.end();
      this.armCloseTimer();
    }
    return this.closed.then(() => undefined);
  }

  destroy(error?: SockError): void {
    this.recordClose(error?.reason ?? 'destroyed', error);
    this.socket.destroy();
  }

  reject(rejection: Rejection, stage: Stage = 'frame', plugin = 'plugin'): void {
    this.applyVerdict(plugin, stage, rejection);
  }

  report(rejection: Rejection, stage: Stage, plugin = 'plugin'): void {
    this.emitReject(stage, plugin, rejection, false);
  }

  /** @internal Apply a plug-in's verdict; false when the connection is now closing. */
  applyVerdict(plugin: string, stage: Stage, rejection: Rejection): boolean {
    if (this.finished) return false;
    if (rejection.shadow) {
      this.emitReject(stage, plugin, rejection, false);
      return true;
    }
    const error = new SockError(
      SockErrorCode.REJECTED,
      `connection rejected by ${plugin} at ${stage}: ${rejection.reason}${rejection.message ? ` (${rejection.message})` : ''}`,
      { reason: rejection.reason },
    );
    this.emitReject(stage, plugin, rejection, true, error);
    this.recordClose(rejection.reason, error);
    this.stopInbound();
    if (rejection.tarpitMs && rejection.tarpitMs > 0) {
      this.socket.pause();
      const timer = setTimeout(() => this.socket.destroy(), rejection.tarpitMs);
      timer.unref?.();
    } else {
      this.socket.destroy();
    }
    return false;
  }

  /** @internal Close on a SockError raised by core itself. */
  fail(stage: Stage, plugin: string, error: SockError): void {
    if (this.finished) return;
    this.emitReject(stage, plugin, { reason: error.reason ?? 'error', message: error.message }, true, error);
    this.recordClose(error.reason ?? 'error', error);
    this.stopInbound();
    this.socket.destroy();
  }

  private emitReject(
    stage: Stage,
    plugin: string,
    rejection: Rejection,
    closed: boolean,
    error?: SockError,
  ): void {
    const shadow = rejection.shadow === true;
    const violation: Violation = {
      stage,
      plugin,
      reason: rejection.reason,
      key: rejection.key,
      closed,
      shadow,
      error,
    };
    for (const p of this.env.plugins) {
      if (p.violation && this.acceptEntered) {
        try {
          p.violation(this, violation);
        } catch (err) {
          this.reportError(err, `plug-in ${p.name}`);
        }
      }
    }
    notify(this.env.observers, {
      type: 'reject',
      conn: this,
      stage,
      plugin,
      reason: rejection.reason,
      message: rejection.message,
      key: rejection.key,
      closed,
      shadow,
      error,
    });
  }

  /** @internal Report an error thrown by the handler or a plug-in hook. */
  reportError(err: unknown, source = 'handler'): void {
    const error = SockError.isInstance(err)
      ? err
      : new SockError(
          SockErrorCode.HANDLER_FAILED,
          `${source} failed: ${(err as Error)?.message ?? String(err)}`,
          {
            cause: err,
            reason: 'handler-error',
          },
        );
    notify(this.env.observers, { type: 'error', conn: this, error });
  }

  private recordClose(reason: string, error?: SockError): void {
    if (!this.closeReason || (this.closeReason.reason === 'peer-closed' && error))
      this.closeReason = { reason, error };
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.pauseTimer) clearTimeout(this.pauseTimer);
    if (this.closeTimer) clearTimeout(this.closeTimer);
    this.inboundEnded = true;
    this.queue.length = 0;
    this.releaseWaiter();
    this.abort?.abort();
    const info: CloseInfo = {
      reason: this.closeReason?.reason ?? 'closed',
      error: this.closeReason?.error,
      rejectedEarly: !this.reachedHandler,
    };
    if (this.acceptEntered) {
      for (const p of this.env.plugins) {
        if (!p.close) continue;
        try {
          p.close(this, info);
        } catch (err) {
          this.reportError(err, `plug-in ${p.name}`);
        }
      }
    }
    if (this.reachedHandler) {
      notify(this.env.observers, { type: 'close', conn: this, reason: info.reason, error: info.error });
    }
    this.resolveClosed(info);
  }

  /** @internal Wait for the socket to be fully closed. */
  async waitClosed(): Promise<void> {
    if (this.finished) return;
    if (this.socket.destroyed && this.socket.closed) return;
    await once(this.socket, 'close').catch(() => undefined);
  }
}
