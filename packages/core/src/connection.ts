import { once } from 'node:events';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { canonicalPeer } from './address.js';
import { type Clock, systemClock, unrefTimer } from './clock.js';
import type { Codec } from './codec.js';
import { SockError, SockErrorCode, toSockError } from './errors.js';
import type { FrameDecoder, Framing } from './framing/framing.js';
import { Inbox, type InboxEntry, PendingDecode, PendingReply, SKIP } from './inbox.js';
import { notify, type Observer } from './observer.js';
import { Outbound, SENT } from './outbound.js';
import type {
  AdoptedPeer,
  CloseInfo,
  ConnectionControl,
  ConnectionStats,
  PeerAddress,
  Plugin,
  Rejection,
  ServerTransport,
  Stage,
  Verdict,
  Violation,
} from './pipeline.js';
import { SockReason } from './reasons.js';

/** What to do with a frame that fails to decode or validate. */
export type InvalidMessagePolicy = 'close' | 'drop' | 'reply';
/** What to do when a peer sends an oversized frame: the stream cannot be resynchronised, so it closes. */
export type FrameTooLargePolicy = 'close' | 'reply-close';

export interface ConnectionOptions<In, Out> {
  framing: Framing;
  codec: Codec<In, Out>;
  /**
   * Largest number of bytes queued for a peer that does not read. A frame is always accepted into an
   * empty buffer, so one reply may be larger than this (up to `maxFrameBytes`). Default 1 MiB.
   */
  maxWriteBufferBytes?: number;
  /**
   * Entries the inbox holds for a reader that has not taken them: decoded messages, decodes still
   * running (async schemas) and error replies owed all count. At the limit decoding stops, mid-read,
   * and the socket pauses. Default 16.
   */
  maxQueuedMessages?: number;
  /** Frame bytes the inbox holds (the same entries); one frame may pass it. Default 1 MiB. */
  maxQueuedBytes?: number;
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
 * One connection as a handler sees it: an async iterable of messages and a `send()` that paces the sender.
 * Iteration ends when the peer closes its side or the connection closes; `closed` then says why. It
 * carries no plug-in tools (`reject`, `report`): a handler closes with `close()` or `destroy()`; deciding
 * about a peer is a plug-in's job (`ConnectionControl`).
 */
export interface Connection<In = Buffer, Out = Uint8Array>
  extends Omit<ConnectionControl, 'reject' | 'report'>,
    AsyncIterable<In> {
  /**
   * Queue a message. Resolves at once while the write buffer is below its high-water mark (16 KiB for a
   * socket) and one more largest frame fits under `maxWriteBufferBytes`, else when the bytes are handed
   * to the kernel, so awaiting it paces a sender to a slow peer. Messages sent for one read leave in two
   * writes (the first at once, the rest batched). A failure (the peer does not read, the socket broke)
   * closes the connection with its reason and rejects; not awaiting the promise is safe: it never becomes
   * an unhandled rejection.
   */
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

/**
 * A connection's life, in order; it only moves forward. `preface`, `accept` and `handshake` are the
 * pipeline stages before the first frame is read; `open` reads frames and runs the handler; `closing`
 * has begun to end the stream; `closed` is after the socket's `close`.
 */
export type Phase = 'preface' | 'accept' | 'handshake' | 'open' | 'closing' | 'closed';
// Phases as small integers: compared on every send and read, so a number, not a string lookup.
const PREFACE = 0;
const ACCEPT = 1;
const HANDSHAKE = 2;
const OPEN = 3;
const CLOSING = 4;
const CLOSED = 5;
const PHASES: readonly Phase[] = ['preface', 'accept', 'handshake', 'open', 'closing', 'closed'];

/** What every connection of one server (or one client) shares: computed once, read per connection. */
export interface ConnectionEnv<In, Out> {
  readonly plugins: readonly Plugin[];
  readonly prefaceHooks: readonly Plugin[];
  readonly acceptHooks: readonly Plugin[];
  readonly handshakeHooks: readonly Plugin[];
  readonly frameHooks: readonly Plugin[];
  readonly observers: readonly Observer[];
  /** Every timer and time read of the connection goes through this (virtual in tests). */
  readonly clock: Clock;
  readonly transport: string;
  readonly serverTransport?: ServerTransport | undefined;
  readonly handler?: ((conn: Connection<In, Out>) => void | Promise<void>) | undefined;
  readonly onMessage?: ((message: In, conn: Connection<In, Out>) => void | Promise<void>) | undefined;
  /** True once the server is closing: a connection that finishes its pipeline then is refused. */
  readonly refusing?: (() => boolean) | undefined;
  /** The connection's socket closed (after plug-ins and observers heard): the server uncounts it. */
  readonly onClosed?: ((conn: SockConnection<In, Out>) => void) | undefined;
  /**
   * The listener's own address when it is bound to one (not a wildcard): every socket it accepts has
   * exactly that local address, so none needs a `getsockname` call to learn it. Set by `listen()`.
   */
  boundLocal?: { readonly address: string; readonly port: number } | undefined;
}

/** Client connections: no stages, no handler; the caller iterates. */
export function clientEnv<In, Out>(transport: string, clock: Clock = systemClock): ConnectionEnv<In, Out> {
  return {
    plugins: [],
    prefaceHooks: [],
    acceptHooks: [],
    handshakeHooks: [],
    frameHooks: [],
    observers: [],
    clock,
    transport,
  };
}

let nextId = 1;

/**
 * Socket listeners are shared functions that find their connection on the socket (Node calls a listener
 * with the emitter as `this`), not four closures per connection: ~300 bytes less for every idle one.
 */
const CONN = Symbol('sock.connection');
type Watched = Duplex & { [CONN]?: SockConnection<unknown, unknown> };

function onSocketData(this: Watched, chunk: Buffer): void {
  this[CONN]!.onData(chunk);
}
function onSocketEnd(this: Watched): void {
  this[CONN]!.peerEnd();
}
function onSocketError(this: Watched, err: Error): void {
  this[CONN]!.socketError(err);
}
function onSocketClose(this: Watched): void {
  this[CONN]!.finish();
}

const DEFAULT_WRITE_BUFFER = 1024 * 1024;
const DEFAULT_QUEUED_BYTES = 1024 * 1024;
const noop = (): void => {};

/** A rejected promise that is already handled: the caller may await it, and ignoring it is harmless. */
function refused(error: unknown): Promise<void> {
  const p = Promise.reject(error);
  p.catch(noop);
  return p;
}

/**
 * @internal The one implementation behind server and client connections, and the one owner of a
 * connection's state: it runs its own pipeline, its handler or listener, and its close. The server only
 * creates connections and counts them.
 */
export class SockConnection<In, Out> implements Connection<In, Out> {
  readonly id = nextId++;
  readonly stats: ConnectionStats = { bytesIn: 0, bytesOut: 0, framesIn: 0, framesOut: 0 };
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
  readonly transport: string;
  /** @internal Everything read and not yet handed over, under one bound. */
  readonly inbox: Inbox<In>;

  /** Where the connection is in its life (an index into PHASES); it only moves forward. */
  private at = PREFACE;
  /** The furthest phase before closing began: says whether plug-ins saw accept and the handler ran. */
  private reached = PREFACE;
  private localsMap: Map<symbol, unknown> | undefined;
  /** Created on first use: most connections never ask for a signal, and abort() costs a DOMException. */
  private abort: AbortController | undefined;
  // `closed` is made on first use: most connections are never awaited, and a promise, its resolver and
  // their context are ~150 bytes an idle connection would carry for nothing.
  private closedPromise: Promise<CloseInfo> | undefined;
  private resolveClosed: ((info: CloseInfo) => void) | undefined;
  private closeInfo: CloseInfo | undefined;
  /** Made when a listener first returns a promise: a synchronous listener never needs them. */
  private listenerSettled: [() => void, (err: unknown) => void] | undefined;
  private closeReason: { reason: string; error?: SockError | undefined } | undefined;
  private decoder: FrameDecoder | undefined;
  /** The part of the last socket read not yet decoded: decoding stopped there because the inbox filled. */
  private unread: Buffer | undefined;
  /** No more frames are cut: the peer ended, the server drains, or the peer broke the protocol. */
  private inboundEnded = false;
  /** The peer sent its FIN; inbound ends once the rest of the last read is decoded. */
  private peerEnded = false;
  /** The inbox filled: reading stays paused until it is down to half. */
  private backpressured = false;
  private waiter: ((r: IteratorResult<In>) => void) | undefined;
  private readonly listener: ((message: In, conn: Connection<In, Out>) => void | Promise<void>) | undefined;
  private listenerBusy = false;
  private handlerActive = false;
  /** Close our side once the reader has taken everything (peer ended, drain, violation). */
  private closeWhenDone = false;
  /** The peer broke the protocol: close flushes and destroys instead of waiting for the peer's FIN. */
  private fatal = false;
  private pauses = 0;
  private pumping = false;
  private pauseTimer: unknown;
  private closeTimer: unknown;
  private readonly maxWrite: number;
  private readonly out: Outbound;

  constructor(
    socket: Duplex,
    private readonly options: ConnectionOptions<In, Out>,
    private readonly env: ConnectionEnv<In, Out>,
    adopted?: AdoptedPeer,
  ) {
    this.socket = socket;
    this.openedAt = env.clock.now();
    // A net.Socket knows its addresses; any other Duplex gets them from adopt() (or reports none).
    const tcp = socket as Partial<Socket>;
    const peer = canonicalPeer(adopted?.remoteAddress ?? tcp.remoteAddress ?? '');
    this.remoteAddress = peer.address;
    this.remoteFamily = peer.family;
    this.remotePort = adopted?.remotePort ?? tcp.remotePort ?? 0;
    this.socketAddress = peer.address;
    this.socketPort = this.remotePort;
    const bound = adopted ? undefined : env.boundLocal;
    if (bound) {
      this.localAddress = bound.address;
      this.localPort = bound.port;
    } else {
      this.localAddress = canonicalPeer(adopted?.localAddress ?? tcp.localAddress ?? '').address;
      this.localPort = adopted?.localPort ?? tcp.localPort ?? 0;
    }
    this.identity = adopted?.identity;
    this.transport = adopted?.transport ?? env.transport;
    this.maxWrite = options.maxWriteBufferBytes ?? DEFAULT_WRITE_BUFFER;
    // Room for one more largest frame (and its header) under the cap: see Outbound.
    this.out = new Outbound(socket, this, this.maxWrite - options.framing.maxFrameBytes - 16);
    this.inbox = new Inbox({
      maxMessages: options.maxQueuedMessages ?? 16,
      maxBytes: options.maxQueuedBytes ?? DEFAULT_QUEUED_BYTES,
    });
    this.listener = env.onMessage;
    this.watch(socket);
  }

  get closed(): Promise<CloseInfo> {
    this.closedPromise ??= this.closeInfo
      ? Promise.resolve(this.closeInfo)
      : new Promise((resolve) => {
          this.resolveClosed = resolve;
        });
    return this.closedPromise;
  }

  /** The server's clock: plug-ins schedule and read time with it, so tests can run them in virtual time. */
  get clock(): Clock {
    return this.env.clock;
  }

  get signal(): AbortSignal {
    this.abort ??= new AbortController();
    if (this.at === CLOSED && !this.abort.signal.aborted) this.abort.abort();
    return this.abort.signal;
  }

  get locals(): Map<symbol, unknown> {
    this.localsMap ??= new Map();
    return this.localsMap;
  }

  get closing(): boolean {
    return this.closeReason !== undefined || this.at >= CLOSING;
  }

  /** @internal The connection reached its handler (for the server's `active` count). */
  get admitted(): boolean {
    return this.reached === OPEN;
  }

  /** @internal The phase, by name. */
  get phase(): Phase {
    return PHASES[this.at]!;
  }

  private enter(phase: number): void {
    if (phase <= this.at) return;
    this.at = phase;
    if (phase < CLOSING) this.reached = phase;
  }

  private watch(socket: Duplex): void {
    (socket as Watched)[CONN] = this as SockConnection<unknown, unknown>;
    socket.on('error', onSocketError);
    socket.on('close', onSocketClose);
  }

  /** @internal The socket failed: the reason is kept for close. */
  socketError(err: Error): void {
    this.recordClose(SockReason.SOCKET_ERROR, toSockError(err, 'socket'));
  }

  /** @internal The peer sent its FIN. */
  peerEnd(): void {
    if (!this.closeReason) this.closeReason = { reason: SockReason.PEER_CLOSED };
    // The rest of the last read may still hold frames: inbound ends once it is decoded.
    this.peerEnded = true;
    if (this.unread === undefined) this.endPeerInbound();
    // Half-open is kept only while the handler or listener may still answer what it read.
    this.closeWhenIdle();
  }

  // ---- the pipeline: preface → accept → handshake → open ----

  /**
   * @internal Run the stages, then the handler. Synchronous while every hook answers synchronously (a
   * memory-store guard does): only a hook that returns a promise, a preface or a transport make the rest
   * asynchronous, so the common accept costs no promise and no microtask turn.
   */
  run(adopted: boolean): void {
    const env = this.env;
    const transport = adopted ? undefined : env.serverTransport;
    if (adopted || env.prefaceHooks.length === 0) {
      this.acceptStage(transport);
      return;
    }
    this.runPrefaces()
      .then((through) => through && this.acceptStage(transport))
      // Only core itself can get here (every hook is wrapped): report it, never blame the peer. The
      // catch also covers the later stages run from this continuation: nothing becomes unhandled.
      .catch((err) => this.pluginFailed(this.at === PREFACE ? 'preface' : 'accept', 'core', err));
  }

  /** Preface hooks read the first bytes themselves (PROXY protocol): always asynchronous. */
  private async runPrefaces(): Promise<boolean> {
    // The listener hands out net.Sockets; an adopted stream is past the preface and transport stages.
    const socket = this.socket as Socket;
    for (const p of this.env.prefaceHooks) {
      let result: PeerAddress | Rejection | undefined;
      try {
        result = await p.preface!(socket, this);
      } catch (err) {
        this.pluginFailed('preface', p.name, err);
        return false;
      }
      if (this.closing) return false;
      if (result === undefined) continue;
      if ('reason' in result) {
        if (!this.applyVerdict(p.name, 'preface', result)) return false;
      } else this.setPeer(result);
    }
    return true;
  }

  private acceptStage(transport: ServerTransport | undefined): void {
    this.enter(ACCEPT);
    this.proceed(this.runHooks('accept', this.env.acceptHooks, 0), 'accept', () =>
      this.handshakeStage(transport),
    );
  }

  private handshakeStage(transport: ServerTransport | undefined): void {
    this.enter(HANDSHAKE);
    if (!transport) {
      this.afterHandshake();
      return;
    }
    const failed = (err: unknown) =>
      this.fail(
        'handshake',
        transport.name,
        toSockError(err, `${transport.name} handshake`, { reason: SockReason.HANDSHAKE_FAILED }),
      );
    let upgrading: Promise<Duplex>;
    try {
      upgrading = transport.upgrade(this.socket as Socket, this);
    } catch (err) {
      failed(err);
      return;
    }
    upgrading
      .then((upgraded) => {
        if (this.closing) return;
        this.replaceSocket(upgraded);
        this.afterHandshake();
      }, failed)
      .catch((err) => this.pluginFailed('handshake', 'core', err));
  }

  private afterHandshake(): void {
    this.proceed(this.runHooks('handshake', this.env.handshakeHooks, 0), 'handshake', () => this.admit());
  }

  /** Go on with `next` once a stage's hooks let the connection through, now or when they settle. */
  private proceed(through: boolean | Promise<boolean>, stage: Stage, next: () => void): void {
    if (through === true) next();
    else if (through !== false) {
      // `next` runs the following stages: whatever they throw is core's own failure, reported, never
      // an unhandled rejection.
      through.then((ok) => ok && next()).catch((err) => this.pluginFailed(stage, 'core', err));
    }
  }

  /**
   * Run `hooks[from..]` of a stage, synchronously until one returns a promise; true when every hook let
   * the connection through, false when it is now closing.
   */
  private runHooks(
    stage: 'accept' | 'handshake',
    hooks: readonly Plugin[],
    from: number,
  ): boolean | Promise<boolean> {
    for (let i = from; i < hooks.length; i++) {
      const p = hooks[i]!;
      let verdict: Verdict | Promise<Verdict>;
      try {
        verdict = stage === 'accept' ? p.accept!(this) : p.handshake!(this);
      } catch (err) {
        this.pluginFailed(stage, p.name, err);
        return false;
      }
      if (verdict instanceof Promise) {
        return verdict.then(
          (v) => this.judge(p, stage, v) && this.runHooks(stage, hooks, i + 1),
          (err) => {
            this.pluginFailed(stage, p.name, err);
            return false;
          },
        );
      }
      if (!this.judge(p, stage, verdict)) return false;
    }
    return true;
  }

  /** Apply one hook's verdict; false when the connection is now closing. */
  private judge(p: Plugin, stage: Stage, verdict: Verdict): boolean {
    if (this.closing) return false;
    return !verdict || this.applyVerdict(p.name, stage, verdict);
  }

  /** PROXY protocol (or any preface plug-in) named the real peer: canonical, as every guard must see it. */
  private setPeer(peer: PeerAddress): void {
    const canonical = canonicalPeer(peer.address);
    this.remoteAddress = canonical.address;
    this.remoteFamily = canonical.family;
    this.remotePort = peer.port;
  }

  /** The transport replaced the socket (TLS over TCP). */
  private replaceSocket(socket: Duplex): void {
    if (socket === this.socket) return;
    this.out.setSocket(socket);
    this.socket = socket;
    this.watch(socket);
  }

  /** The pipeline let the connection through: read frames and hand them to the handler or listener. */
  private admit(): void {
    if (this.env.refusing?.()) {
      this.destroy(
        new SockError(SockErrorCode.SERVER_NOT_RUNNING, 'server closing', {
          reason: SockReason.SERVER_CLOSING,
        }),
      );
      return;
    }
    this.open();
    notify(this.env.observers, { type: 'open', conn: this });
    if (this.env.handler) this.runHandler(this.env.handler);
  }

  /** @internal Begin reading frames (a client connection calls this directly). */
  open(): void {
    if (this.closing) return;
    this.enter(OPEN);
    this.decoder = this.options.framing.createDecoder();
    const socket = this.socket;
    socket.on('data', onSocketData);
    socket.on('end', onSocketEnd);
    this.updateFlow();
  }

  private runHandler(handler: (conn: Connection<In, Out>) => void | Promise<void>): void {
    let result: void | Promise<void>;
    try {
      result = handler(this);
    } catch (err) {
      this.handlerFailed('handler', err);
      return;
    }
    if (result instanceof Promise) {
      this.handlerActive = true;
      result.then(
        () => {
          this.handlerActive = false;
          this.endOurSide();
        },
        (err) => {
          this.handlerActive = false;
          this.handlerFailed('handler', err);
        },
      );
    }
  }

  private handlerFailed(source: 'handler' | 'onMessage', err: unknown): void {
    const error = new SockError(
      SockErrorCode.HANDLER_FAILED,
      `${source} failed: ${(err as Error)?.message ?? String(err)}`,
      { cause: err, reason: SockReason.HANDLER_ERROR },
    );
    notify(this.env.observers, { type: 'error', conn: this, error });
    this.destroy(error);
  }

  // ---- inbound: socket read → decoder → frame hooks → decode → inbox → reader ----

  /** @internal One socket read. */
  onData(chunk: Buffer): void {
    this.stats.bytesIn += chunk.length;
    this.out.reads++;
    if (this.inboundEnded) return;
    this.feed(chunk);
  }

  /** Cut frames from `chunk` until it is used up or the inbox is full; keep the rest for later. */
  private feed(chunk: Buffer): void {
    let consumed: ReturnType<FrameDecoder['push']>;
    try {
      consumed = this.decoder!.push(chunk, this.onFrame);
    } catch (err) {
      this.onDecodeFailure(err);
      return;
    }
    if (typeof consumed === 'number' && consumed < chunk.length && !this.inboundEnded) {
      this.unread = chunk.subarray(consumed);
      this.updateFlow();
      return;
    }
    if (this.peerEnded) this.endPeerInbound();
    // The hot path reads on: only a full inbox (or a plug-in's pause) changes the flow here.
    if (this.backpressured || this.pauses > 0) this.updateFlow();
  }

  /** One frame cut; returns true to stop decoding the rest of the read (the inbox is full, or we stopped). */
  private readonly onFrame = (frame: Buffer): boolean => {
    if (this.inboundEnded) return true;
    this.stats.framesIn++;
    const hooks = this.env.frameHooks;
    if (hooks.length > 0 && !this.runFrameHooks(hooks, frame)) return true;
    let message: In | Promise<In>;
    try {
      message = this.options.codec.decode(frame);
    } catch (err) {
      this.onInvalid(err, frame.length, undefined);
      return this.stopDecoding();
    }
    if (message instanceof Promise) {
      const slot = new PendingDecode<In>();
      this.inbox.push(slot, frame.length);
      message.then(
        (value) => this.settle(slot, value, undefined),
        (err) => this.settle(slot, undefined, err ?? new Error('decode rejected')),
      );
      return this.stopDecoding();
    }
    this.offer(message, frame.length);
    return this.stopDecoding();
  };

  /** False when a hook closed the connection (a rejection, or a hook that threw). */
  private runFrameHooks(hooks: readonly Plugin[], frame: Buffer): boolean {
    let plugin: Plugin | undefined;
    try {
      for (plugin of hooks) {
        const verdict = plugin.frame!(this, frame);
        if (verdict && !this.applyVerdict(plugin.name, 'frame', verdict)) return false;
      }
    } catch (err) {
      this.pluginFailed('frame', plugin?.name ?? 'plugin', err);
      return false;
    }
    return true;
  }

  private stopDecoding(): boolean {
    if (this.inbox.full) this.backpressured = true;
    return this.backpressured || this.inboundEnded || this.pauses > 0;
  }

  /** A decoded message: straight to an idle reader when nothing is ahead of it, else into the inbox. */
  private offer(message: In, bytes: number): void {
    if (this.inbox.size === 0) {
      if (this.listener) {
        if (!this.listenerBusy) {
          this.callListener(message);
          return;
        }
      } else if (this.waiter) {
        const w = this.waiter;
        this.waiter = undefined;
        w({ value: message, done: false });
        return;
      }
    }
    this.inbox.push(message, bytes);
  }

  private settle(slot: PendingDecode<In>, value: In | undefined, err: unknown): void {
    slot.settled = true;
    slot.value = value;
    if (err !== undefined) {
      slot.error = err;
      this.onInvalid(err, 0, slot);
    }
    this.pump();
  }

  /**
   * Hand settled entries at the head of the inbox to a ready reader, in order. Error replies go out when
   * the reader reaches them, so a peer sees answers in the order it asked.
   */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      for (;;) {
        const head = this.inbox.peek();
        const ready = this.listener ? !this.listenerBusy : this.waiter !== undefined;
        if (head === undefined || (head instanceof PendingDecode && !head.settled) || !ready) {
          if (ready && this.refill()) continue;
          break;
        }
        this.inbox.shift();
        const value = this.unwrap(head);
        if (value === SKIP) continue;
        if (this.listener) this.callListener(value);
        else {
          const w = this.waiter!;
          this.waiter = undefined;
          w({ value, done: false });
        }
      }
    } finally {
      this.pumping = false;
    }
    this.afterTake();
  }

  /** The message an entry carries, or SKIP after acting on a reply or a refused frame. */
  private unwrap(entry: InboxEntry<In>): In | typeof SKIP {
    if (entry === SKIP) return SKIP;
    if (entry instanceof PendingReply) {
      this.sendErrorReply(entry.error);
      return SKIP;
    }
    if (entry instanceof PendingDecode) {
      if (entry.error === undefined) return entry.value as In;
      if (entry.reply) this.sendErrorReply(entry.reply);
      return SKIP;
    }
    return entry;
  }

  /** Entries were taken: read again if the inbox is low enough; close if the reader is done. */
  private afterTake(): void {
    this.refill();
    this.maybeFinishInbound();
    this.maybeCloseIdle();
  }

  /**
   * Once the inbox is down to half, decode the rest of the last read (true when that was done: the inbox
   * may hold more now), or resume the socket.
   */
  private refill(): boolean {
    // The hot path: nothing held back, nothing to do.
    if (!this.backpressured && this.unread === undefined) return false;
    if (this.backpressured) {
      if (!this.inbox.lowEnough) return false;
      this.backpressured = false;
    }
    if (this.unread && this.pauses === 0 && !this.inboundEnded) {
      const rest = this.unread;
      this.unread = undefined;
      this.feed(rest);
      // The held read is used up: the socket, paused while it was held, may read again.
      if (this.unread === undefined) this.updateFlow();
      return true;
    }
    this.updateFlow();
    return false;
  }

  /**
   * Callback delivery (`onMessage`): no promise per message. A listener that returns a promise is busy
   * until it settles; messages meanwhile wait in the inbox, so order and backpressure hold.
   */
  private callListener(message: In): void {
    let result: void | Promise<void>;
    try {
      result = this.listener!(message, this);
    } catch (err) {
      this.handlerFailed('onMessage', err);
      return;
    }
    // A listener that returns `conn.send(m)` queued below the high-water mark has nothing to wait for.
    if (result instanceof Promise && result !== SENT) {
      this.listenerBusy = true;
      this.listenerSettled ??= [
        () => {
          this.listenerBusy = false;
          this.pump();
        },
        (err) => {
          this.listenerBusy = false;
          this.handlerFailed('onMessage', err);
        },
      ];
      result.then(...this.listenerSettled);
    }
  }

  private onDecodeFailure(err: unknown): void {
    const error = toSockError(err, 'decode');
    this.violate('frame', error, this.options.onFrameTooLarge === 'reply-close', undefined);
  }

  /**
   * A frame failed to decode or validate (`bytes` is its size; `slot` its place when the decode was
   * async). The policy decides: close, drop (report only), or reply in order.
   */
  private onInvalid(err: unknown, bytes: number, slot: PendingDecode<In> | undefined): void {
    if (!SockError.isInstance(err)) {
      this.fail(
        'message',
        'core',
        new SockError(SockErrorCode.INVALID_MESSAGE, `decode failed: ${String(err)}`, {
          cause: err,
          reason: SockReason.INVALID_MESSAGE,
        }),
      );
      return;
    }
    const policy = this.options.onInvalidMessage ?? 'close';
    if (policy === 'close') {
      this.violate('message', err, false, slot);
      return;
    }
    this.emitReject(
      'message',
      'core',
      { reason: err.reason ?? SockReason.INVALID_MESSAGE, message: err.message },
      false,
      err,
    );
    if (policy !== 'reply') return;
    if (slot) slot.reply = err;
    else this.replyInOrder(err, bytes);
  }

  /** An error reply is owed: now if nothing is ahead of it and the reader is idle, else in the inbox. */
  private replyInOrder(error: SockError, bytes: number): void {
    const idle = this.listener ? !this.listenerBusy : this.waiter !== undefined || !this.handlerActive;
    if (idle && this.inbox.size === 0) this.sendErrorReply(error);
    else this.inbox.push(new PendingReply(error), bytes);
  }

  private sendErrorReply(error: SockError): void {
    const make = this.options.errorReply;
    if (!make) return;
    let reply: Out;
    try {
      reply = make(error);
    } catch (err) {
      this.reportError(err, 'errorReply', SockReason.HANDLER_ERROR);
      return;
    }
    // A failure closes the connection and is reported by send itself; nothing is left to handle here.
    void this.send(reply);
  }

  /**
   * The peer broke the protocol: stop reading, let the reader finish the messages read before the bad
   * one (nothing valid is lost), optionally tell the peer why, then flush and close without its FIN.
   */
  private violate(stage: Stage, error: SockError, reply: boolean, at: PendingDecode<In> | undefined): void {
    if (this.fatal || this.at >= CLOSING) return;
    this.emitReject(stage, 'core', { reason: error.reason ?? 'error', message: error.message }, true, error);
    this.recordClose(error.reason ?? 'error', error);
    this.fatal = true;
    this.inboundEnded = true;
    this.unread = undefined;
    if (at) this.inbox.dropAfter(at);
    if (reply) this.replyInOrder(error, 0);
    this.updateFlow();
    this.armCloseTimer();
    this.closeWhenIdle();
    this.maybeFinishInbound();
  }

  private armCloseTimer(): void {
    if (this.closeTimer) return;
    this.closeTimer = this.env.clock.setTimeout(
      () => this.socket.destroy(),
      this.options.closeTimeoutMs ?? 5000,
    );
    unrefTimer(this.closeTimer);
  }

  /** @internal Server drain: stop reading; what was read is still delivered, then our side closes. */
  shutdown(): void {
    if (this.at === OPEN) {
      this.endInbound();
      this.unread = undefined;
      this.updateFlow();
      this.closeWhenIdle();
    } else if (this.at < OPEN) {
      this.destroy(
        new SockError(SockErrorCode.SERVER_NOT_RUNNING, 'server closing', {
          reason: SockReason.SERVER_CLOSING,
        }),
      );
    }
  }

  /** The peer ended and every byte it sent is decoded: a framing may still cut a last, unterminated frame. */
  private endPeerInbound(): void {
    if (this.inboundEnded) return;
    let last: Buffer | undefined;
    try {
      last = this.decoder?.end?.();
    } catch (err) {
      this.onDecodeFailure(err);
      return;
    }
    if (last !== undefined) this.onFrame(last);
    if (!this.inboundEnded) this.endInbound();
  }

  private endInbound(): void {
    this.inboundEnded = true;
    this.maybeFinishInbound();
  }

  /** Close our side once the reader has everything it was given and has answered it. */
  private closeWhenIdle(): void {
    this.closeWhenDone = true;
    this.maybeCloseIdle();
  }

  private maybeCloseIdle(): void {
    if (!this.closeWhenDone || this.at >= CLOSING) return;
    // onMessage: idle once nothing is in the listener or the inbox. A handler (or a client's caller, which
    // has no handler) closes when its promise settles; until then the connection stays half-open.
    const idle = this.listener
      ? !this.listenerBusy && this.inbox.size === 0 && this.unread === undefined
      : !this.handlerActive;
    if (idle) this.endOurSide();
  }

  private maybeFinishInbound(): void {
    if (this.inboundEnded && this.inbox.size === 0) this.releaseWaiter();
  }

  private releaseWaiter(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterator<In> {
    return {
      next: () => {
        for (;;) {
          const head = this.inbox.peek();
          if (head !== undefined && !(head instanceof PendingDecode && !head.settled)) {
            this.inbox.shift();
            const value = this.unwrap(head);
            if (value === SKIP) continue;
            this.afterTake();
            return Promise.resolve({ value, done: false });
          }
          // Nothing ready: the rest of the last read may hold the next message.
          if (!this.refill()) break;
        }
        this.maybeFinishInbound();
        this.maybeCloseIdle();
        if (this.inboundEnded && this.inbox.size === 0)
          return Promise.resolve({ value: undefined, done: true });
        if (this.waiter)
          throw new SockError(SockErrorCode.INVALID_OPTION, 'one reader at a time per connection');
        return new Promise((resolve) => {
          this.waiter = resolve;
        });
      },
      return: () => Promise.resolve({ value: undefined, done: true }),
    };
  }

  // ---- flow control ----

  pauseReading(ms?: number): void {
    const clock = this.env.clock;
    if (this.pauseTimer !== undefined) clock.clearTimeout(this.pauseTimer);
    this.pauses = 1;
    this.pauseTimer = ms === undefined ? undefined : clock.setTimeout(() => this.resumeReading(), ms);
    this.updateFlow();
  }

  resumeReading(): void {
    if (this.pauseTimer !== undefined) this.env.clock.clearTimeout(this.pauseTimer);
    this.pauseTimer = undefined;
    this.pauses = 0;
    if (this.reached === OPEN && !this.refill()) this.updateFlow();
  }

  private updateFlow(): void {
    if (this.reached !== OPEN || this.at === CLOSED) return;
    // After close(), keep reading (and discarding) so the peer's FIN arrives and the socket can close.
    if (this.at === CLOSING && !this.fatal) this.socket.resume();
    else if (this.pauses > 0 || this.backpressured || this.inboundEnded || this.unread) this.socket.pause();
    else this.socket.resume();
  }

  // ---- outbound ----

  send(message: Out, options?: SendOptions): Promise<void> {
    if (this.at >= CLOSING) {
      return refused(
        new SockError(SockErrorCode.CONNECTION_CLOSED, 'send on a closed connection', {
          cause: this.closeReason?.error,
        }),
      );
    }
    if (options?.signal?.aborted) {
      return refused(new SockError(SockErrorCode.ABORTED, 'send aborted', { cause: options.signal.reason }));
    }
    let data: Buffer;
    try {
      data = this.options.framing.encode(this.options.codec.encode(message));
    } catch (err) {
      // Our own message cannot be framed: nothing was written, the stream is intact; report the bug.
      this.reportError(err, 'send', SockReason.ENCODE_FAILED);
      return refused(err);
    }
    const queued = this.out.queued;
    // One frame always fits into an empty buffer: a reply larger than the cap reaches a peer that reads.
    if (queued > 0 && queued + data.length > this.maxWrite) {
      const error = new SockError(
        SockErrorCode.WRITE_BUFFER_FULL,
        `peer is not reading: ${queued + data.length} bytes queued exceeds maxWriteBufferBytes ${this.maxWrite}`,
        { reason: SockReason.WRITE_BUFFER_FULL },
      );
      this.fail('frame', 'core', error);
      return refused(error);
    }
    this.stats.framesOut++;
    this.stats.bytesOut += data.length;
    return this.out.write(data);
  }

  /** @internal A queued write failed: because the connection closed for a reason (say that), or the socket broke. */
  writeFailed(err: Error): SockError {
    const cause = this.closeReason?.error;
    if (!cause || cause.code === SockErrorCode.SOCKET_ERROR) return toSockError(err, 'send');
    return new SockError(
      SockErrorCode.CONNECTION_CLOSED,
      `send failed: the connection closed (${cause.reason})`,
      {
        cause,
        reason: cause.reason,
      },
    );
  }

  // ---- closing ----

  close(): Promise<void> {
    this.endOurSide();
    return this.closed.then(noop);
  }

  /** Flush, end our side and let the socket close; what `close()` does without making its promise. */
  private endOurSide(): void {
    if (this.at < CLOSING) {
      this.enter(CLOSING);
      this.recordClose(SockReason.CLOSED);
      this.endInbound();
      this.updateFlow();
      const socket = this.socket;
      if (this.fatal) socket.once('finish', () => socket.destroy());
      socket.end();
      // The peer already sent its FIN and nothing of ours waits on it to read: the socket closes on its
      // own once our FIN is out, so no deadline (a timer per connection) is needed for the common close.
      if (!this.peerEnded || this.out.queued > 0) this.armCloseTimer();
    }
  }

  destroy(error?: SockError): void {
    this.recordClose(error?.reason ?? 'destroyed', error);
    this.stopInbound();
    this.enter(CLOSING);
    this.destroySocket();
  }

  reject(rejection: Rejection, stage: Stage = 'frame', plugin = 'plugin'): void {
    this.applyVerdict(plugin, stage, rejection);
  }

  report(rejection: Rejection, stage: Stage, plugin = 'plugin'): void {
    this.emitReject(stage, plugin, rejection, false);
  }

  /** Apply a plug-in's verdict; false when the connection is now closing. */
  private applyVerdict(plugin: string, stage: Stage, rejection: Rejection): boolean {
    if (this.at === CLOSED) return false;
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
    this.enter(CLOSING);
    const socket = this.socket;
    if (rejection.tarpitMs && rejection.tarpitMs > 0) {
      socket.pause();
      unrefTimer(this.env.clock.setTimeout(() => socket.destroy(), rejection.tarpitMs));
    } else {
      this.destroySocket();
    }
    return false;
  }

  /** Close on a SockError raised by core itself (or a transport): the peer did it. */
  private fail(stage: Stage, plugin: string, error: SockError): void {
    if (this.at === CLOSED) return;
    this.emitReject(stage, plugin, { reason: error.reason ?? 'error', message: error.message }, true, error);
    this.recordClose(error.reason ?? 'error', error);
    this.stopInbound();
    this.enter(CLOSING);
    this.destroySocket();
  }

  /**
   * A plug-in hook threw (anything but an ERR_SOCK_REJECTED with a reason, which is a rejection like a
   * returned one): the operator's bug, not the peer's. Reported to `onError` as `plugin-error`,
   * the connection closes, and the violation says `fault: 'server'` so no guard counts a strike for it.
   */
  private pluginFailed(stage: Stage, plugin: string, err: unknown): void {
    if (this.at === CLOSED) return;
    if (SockError.isInstance(err) && err.code === SockErrorCode.REJECTED && err.reason) {
      // Not a bug: a hook may refuse by throwing a rejection (a shared store that fails closed).
      this.applyVerdict(plugin, stage, { reason: err.reason, message: err.message });
      return;
    }
    const error = new SockError(
      SockErrorCode.HANDLER_FAILED,
      `plug-in ${plugin} failed at ${stage}: ${(err as Error)?.message ?? String(err)}`,
      { cause: err, reason: SockReason.PLUGIN_ERROR },
    );
    notify(this.env.observers, { type: 'error', conn: this, error });
    this.emitReject(
      stage,
      plugin,
      { reason: SockReason.PLUGIN_ERROR, message: error.message },
      true,
      error,
      'server',
    );
    this.recordClose(SockReason.PLUGIN_ERROR, error);
    this.stopInbound();
    this.enter(CLOSING);
    this.destroySocket();
  }

  /** Destroy the socket after handing what was sent to the kernel: a reply sent before a close leaves. */
  private destroySocket(): void {
    this.out.flush();
    this.socket.destroy();
  }

  /** Drop unread messages and end iteration: the connection failed. */
  private stopInbound(): void {
    this.inboundEnded = true;
    this.unread = undefined;
    this.inbox.clear();
    this.releaseWaiter();
  }

  private emitReject(
    stage: Stage,
    plugin: string,
    rejection: Rejection,
    closed: boolean,
    error?: SockError,
    fault: 'peer' | 'server' = 'peer',
  ): void {
    const shadow = rejection.shadow === true;
    if (this.reached >= ACCEPT) {
      const violation: Violation = {
        stage,
        plugin,
        reason: rejection.reason,
        key: rejection.key,
        closed,
        shadow,
        error,
        fault,
      };
      for (const p of this.env.plugins) {
        if (!p.violation) continue;
        try {
          p.violation(this, violation);
        } catch (err) {
          this.reportError(err, `plug-in ${p.name}`, SockReason.PLUGIN_ERROR);
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
      fault,
    });
  }

  /** Report an error thrown by our own side (a hook, errorReply, an unencodable message). */
  private reportError(err: unknown, source: string, reason: string): void {
    const error = SockError.isInstance(err)
      ? err
      : new SockError(
          SockErrorCode.HANDLER_FAILED,
          `${source} failed: ${(err as Error)?.message ?? String(err)}`,
          {
            cause: err,
            reason,
          },
        );
    notify(this.env.observers, { type: 'error', conn: this, error });
  }

  private recordClose(reason: string, error?: SockError): void {
    if (!this.closeReason || (this.closeReason.reason === SockReason.PEER_CLOSED && error))
      this.closeReason = { reason, error };
  }

  /** @internal The socket closed (its `close` event; idempotent: a TLS socket and the TCP one under it both report). */
  finish(): void {
    if (this.at === CLOSED) return;
    this.enter(CLOSED);
    if (this.pauseTimer !== undefined) this.env.clock.clearTimeout(this.pauseTimer);
    if (this.closeTimer !== undefined) this.env.clock.clearTimeout(this.closeTimer);
    this.inboundEnded = true;
    this.unread = undefined;
    // Messages already read stay readable after a graceful close; iteration ends when they are taken.
    this.maybeFinishInbound();
    this.abort?.abort();
    const info: CloseInfo = {
      reason: this.closeReason?.reason ?? SockReason.CLOSED,
      error: this.closeReason?.error,
      rejectedEarly: this.reached !== OPEN,
    };
    if (this.reached >= ACCEPT) {
      for (const p of this.env.plugins) {
        if (!p.close) continue;
        try {
          p.close(this, info);
        } catch (err) {
          this.reportError(err, `plug-in ${p.name}`, SockReason.PLUGIN_ERROR);
        }
      }
    }
    if (this.reached === OPEN) {
      notify(this.env.observers, { type: 'close', conn: this, reason: info.reason, error: info.error });
    }
    this.closeInfo = info;
    this.resolveClosed?.(info);
    this.env.onClosed?.(this);
  }

  /** @internal Wait for the socket to be fully closed. */
  async waitClosed(): Promise<void> {
    if (this.at === CLOSED) return;
    await once(this.socket, 'close').catch(() => undefined);
  }
}
