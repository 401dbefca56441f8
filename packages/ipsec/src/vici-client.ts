/**
 * A client for strongSwan's VICI socket. Written by hand because no maintained npm client exists
 * (strongSwan itself ships clients for C, Python, Perl and Ruby only), and the protocol is small (see
 * vici-wire.ts).
 *
 * VICI answers strictly in order on one connection, so operations (commands and event (un)registrations)
 * go one at a time through a queue; events may arrive at any moment and go to their listeners. A command
 * that times out or is aborted while the daemon works on it leaves the stream in an unknown state, so the
 * connection is dropped and the next operation opens a fresh one. While anyone listens for events, a lost
 * connection (charon restarted) is re-opened with backoff and the events are registered again.
 */
import { createConnection, type Socket } from 'node:net';
import { IpsecError, IpsecErrorCode, throwIfAborted } from './errors.js';
import { PacketReader } from './packet-reader.js';
import {
  DEFAULT_LIMITS,
  type DecodedMessage,
  encodePacket,
  type Packet,
  PacketType,
  type ViciMessage,
} from './vici-wire.js';

/** Where charon's VICI plugin listens by default. */
export const DEFAULT_VICI_SOCKET = '/var/run/charon.vici';

/** Options of {@link createViciClient}. Every number must be positive (else INVALID_OPTION). */
export interface ViciClientOptions {
  /** Path of the VICI unix socket. Default `/var/run/charon.vici`. */
  socket?: string;
  /** Per operation (queueing included). Default 10 000 ms; `initiate` waits for the whole IKE exchange. */
  timeoutMs?: number;
  /** Largest packet accepted from the daemon or sent. Default 512 KiB (libvici's own cap). */
  maxMessageBytes?: number;
  /** Deepest nesting of sections accepted. Default 16. */
  maxDepth?: number;
  /** Events queued for a slow subscriber before its iterator fails with EVENTS_OVERFLOW. Default 1000. */
  maxQueuedEvents?: number;
  /** Backoff between reconnect attempts while events are subscribed. Default 100 ms doubling to 2000 ms. */
  reconnectDelayMs?: number;
  /** Cap of the reconnect backoff. Default 2000 ms. */
  maxReconnectDelayMs?: number;
}

/** Options of one VICI operation. */
export interface RequestOptions {
  signal?: AbortSignal;
  /** Overrides the client's `timeoutMs` for this operation. */
  timeoutMs?: number;
}

interface InternalRequestOptions extends RequestOptions {
  /** Called when the packet is written: from then on the daemon works on this operation. */
  onSent?: () => void;
}

/** One event from the daemon. */
export interface ViciEvent {
  name: string;
  message: DecodedMessage;
}

/** Counters since the client was created (plain numbers for the metrics adapter). */
export interface ViciClientStats {
  /** Connections opened to the socket, the first one included. */
  connects: number;
  /** Connections opened after an earlier one was lost. */
  reconnects: number;
  /** Commands written to the daemon. */
  commands: number;
  /** Commands or event registrations the daemon did not know (CMD_UNKNOWN / EVENT_UNKNOWN). */
  commandFailures: number;
  /** Events received. */
  events: number;
  /** Malformed or unexpected packets from the daemon (each drops the connection). */
  protocolErrors: number;
}

/** A client for charon's VICI socket, returned by {@link createViciClient}. Operations run one at a time. */
export interface ViciClient {
  /** Send a command and return its response message (a `success = no` answer is not an error here). */
  request(command: string, message?: ViciMessage, options?: RequestOptions): Promise<DecodedMessage>;
  /**
   * Send a command whose results stream as `event` events (list-sas → list-sa, initiate → control-log),
   * calling `onEvent` for each until the response arrives.
   */
  streamed(
    command: string,
    event: string,
    message: ViciMessage | undefined,
    onEvent: (message: DecodedMessage) => void,
    options?: RequestOptions,
  ): Promise<DecodedMessage>;
  /** Events as an async iterator; `return()` (or `break`, or the signal) unregisters them. */
  subscribe(events: readonly string[], options?: { signal?: AbortSignal }): AsyncIterableIterator<ViciEvent>;
  /** A snapshot of the client's counters. */
  stats(): ViciClientStats;
  /** Close the socket; pending operations fail with CLOSED, subscriptions end. */
  close(): Promise<void>;
}

interface Operation {
  packet: Buffer;
  /** The packet types that complete it. */
  expects: 'command' | 'event';
  label: string;
  resolve(packet: Packet): void;
  reject(err: unknown): void;
  sent: boolean;
  onSent?: (() => void) | undefined;
}

interface Subscriber {
  names: readonly string[];
  push(event: ViciEvent): void;
  fail(err: unknown): void;
  /** End the iteration normally (the client was closed). */
  end(): void;
}

/**
 * Create a VICI client. Connects lazily on the first operation (rejecting with CONNECT_FAILED if the socket
 * cannot be reached); throws IpsecError INVALID_OPTION for a non-positive timeout or limit.
 */
export function createViciClient(options: ViciClientOptions = {}): ViciClient {
  return new Client(options);
}

class Client implements ViciClient {
  private readonly path: string;
  private readonly timeoutMs: number;
  private readonly limits;
  private readonly maxQueuedEvents: number;
  private readonly baseDelay: number;
  private readonly maxDelay: number;
  private socket: Socket | undefined;
  private connecting: Promise<Socket> | undefined;
  private reader: PacketReader | undefined;
  private readonly queue: Operation[] = [];
  private readonly listeners = new Map<string, Set<(m: DecodedMessage) => void>>();
  /** How many listeners want each event: registered with the daemon while above zero. */
  private readonly registered = new Map<string, number>();
  /** Events the daemon confirmed: registered again after a reconnect. */
  private readonly confirmed = new Set<string>();
  private readonly subscribers = new Set<Subscriber>();
  private reconnectTimer: NodeJS.Timeout | undefined;
  private reconnectDelay: number;
  private closed = false;
  private everConnected = false;
  private readonly counters: ViciClientStats = {
    connects: 0,
    reconnects: 0,
    commands: 0,
    commandFailures: 0,
    events: 0,
    protocolErrors: 0,
  };

  constructor(options: ViciClientOptions) {
    this.path = options.socket ?? DEFAULT_VICI_SOCKET;
    this.timeoutMs = positive(options.timeoutMs, 10_000, 'timeoutMs');
    this.limits = {
      maxMessageBytes: positive(options.maxMessageBytes, DEFAULT_LIMITS.maxMessageBytes, 'maxMessageBytes'),
      maxDepth: positive(options.maxDepth, DEFAULT_LIMITS.maxDepth, 'maxDepth'),
    };
    this.maxQueuedEvents = positive(options.maxQueuedEvents, 1000, 'maxQueuedEvents');
    this.baseDelay = positive(options.reconnectDelayMs, 100, 'reconnectDelayMs');
    this.maxDelay = positive(options.maxReconnectDelayMs, 2000, 'maxReconnectDelayMs');
    this.reconnectDelay = this.baseDelay;
  }

  stats(): ViciClientStats {
    return { ...this.counters };
  }

  async request(
    command: string,
    message?: ViciMessage,
    options: InternalRequestOptions = {},
  ): Promise<DecodedMessage> {
    const packet = encodePacket(PacketType.CMD_REQUEST, command, message ?? {}, this.limits);
    const reply = await this.enqueue(packet, 'command', `command ${command}`, options);
    return reply.message ?? Object.create(null);
  }

  async streamed(
    command: string,
    event: string,
    message: ViciMessage | undefined,
    onEvent: (message: DecodedMessage) => void,
    options: RequestOptions = {},
  ): Promise<DecodedMessage> {
    // Only the events that arrive while the daemon works on *this* command are its results: another
    // streamed command queued behind it must not see them (answers come strictly in order).
    let mine = false;
    const handler = (m: DecodedMessage) => {
      if (mine) onEvent(m);
    };
    await this.listen(event, handler, options);
    try {
      return await this.request(command, message, { ...options, onSent: () => (mine = true) });
    } finally {
      mine = false;
      await this.unlisten(event, handler).catch(() => undefined);
    }
  }

  subscribe(
    events: readonly string[],
    options: { signal?: AbortSignal } = {},
  ): AsyncIterableIterator<ViciEvent> {
    const queued: ViciEvent[] = [];
    let waiting: { resolve(r: IteratorResult<ViciEvent>): void; reject(e: unknown): void } | undefined;
    let failure: unknown;
    let done = false;
    const handlers = new Map<string, (m: DecodedMessage) => void>();
    const finish = async () => {
      if (done) return;
      done = true;
      this.subscribers.delete(subscriber);
      options.signal?.removeEventListener('abort', onAbort);
      for (const [name, handler] of handlers) await this.unlisten(name, handler).catch(() => undefined);
      waiting?.resolve({ value: undefined, done: true });
      waiting = undefined;
    };
    const subscriber: Subscriber = {
      names: events,
      push: (event) => {
        if (done) return;
        if (waiting) {
          const w = waiting;
          waiting = undefined;
          w.resolve({ value: event, done: false });
          return;
        }
        if (queued.length >= this.maxQueuedEvents) {
          subscriber.fail(
            new IpsecError(
              IpsecErrorCode.EVENTS_OVERFLOW,
              `more than maxQueuedEvents ${this.maxQueuedEvents} events waited for a subscriber that does not read; read faster or raise maxQueuedEvents`,
            ),
          );
          return;
        }
        queued.push(event);
      },
      fail: (err) => {
        if (done) return;
        queued.length = 0;
        // Delivered once: to the next() that waits, or to the next call of next().
        if (waiting) {
          waiting.reject(err);
          waiting = undefined;
        } else failure = err;
        void finish();
      },
      end: () => void finish(),
    };
    const onAbort = () =>
      subscriber.fail(new IpsecError(IpsecErrorCode.ABORTED, 'event subscription aborted by its signal'));
    options.signal?.addEventListener('abort', onAbort, { once: true });
    this.subscribers.add(subscriber);
    const ready = (async () => {
      for (const name of events) {
        if (done) break; // aborted or closed while registering the previous name
        const handler = (message: DecodedMessage) => subscriber.push({ name, message });
        handlers.set(name, handler);
        await this.listen(name, handler, options);
      }
    })();
    ready.catch((err) => subscriber.fail(err));
    const iterator: AsyncIterableIterator<ViciEvent> = {
      [Symbol.asyncIterator]: () => iterator,
      next: async () => {
        await ready.catch(() => undefined);
        if (queued.length > 0) return { value: queued.shift()!, done: false };
        if (failure !== undefined) {
          const err = failure;
          failure = undefined;
          throw err;
        }
        if (done) return { value: undefined, done: true };
        return new Promise((resolve, reject) => {
          waiting = { resolve, reject };
        });
      },
      return: async () => {
        await ready.catch(() => undefined);
        await finish();
        return { value: undefined, done: true };
      },
    };
    return iterator;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    const err = new IpsecError(IpsecErrorCode.CLOSED, 'the VICI client was closed');
    for (const s of [...this.subscribers]) s.end();
    this.failAll(err);
    const socket = this.socket;
    this.socket = undefined;
    if (socket && !socket.destroyed) {
      const gone = new Promise((r) => socket.once('close', r));
      socket.destroy();
      await gone;
    }
  }

  // --- events ---------------------------------------------------------------------------------------

  private async listen(name: string, handler: (m: DecodedMessage) => void, options: RequestOptions) {
    let set = this.listeners.get(name);
    if (!set) {
      set = new Set();
      this.listeners.set(name, set);
    }
    set.add(handler);
    const count = (this.registered.get(name) ?? 0) + 1;
    this.registered.set(name, count);
    if (count > 1) return;
    try {
      await this.enqueue(
        encodePacket(PacketType.EVENT_REGISTER, name, undefined, this.limits),
        'event',
        `event registration ${name}`,
        options,
      );
      // Unless everyone left while the registration was on its way.
      if ((this.registered.get(name) ?? 0) > 0) this.confirmed.add(name);
    } catch (err) {
      // unlisten() may already have taken this handler (and its count) away.
      if (set.delete(handler)) this.registered.set(name, (this.registered.get(name) ?? 1) - 1);
      throw err;
    }
  }

  private async unlisten(name: string, handler: (m: DecodedMessage) => void) {
    const set = this.listeners.get(name);
    if (!set?.delete(handler)) return;
    const count = (this.registered.get(name) ?? 1) - 1;
    this.registered.set(name, count);
    if (count > 0) return;
    this.confirmed.delete(name);
    if (this.closed || !this.socket) return;
    await this.enqueue(
      encodePacket(PacketType.EVENT_UNREGISTER, name, undefined, this.limits),
      'event',
      `event unregistration ${name}`,
      {},
    );
  }

  // --- operations -----------------------------------------------------------------------------------

  private enqueue(
    packet: Buffer,
    expects: Operation['expects'],
    label: string,
    options: InternalRequestOptions,
  ): Promise<Packet> {
    if (this.closed)
      return Promise.reject(new IpsecError(IpsecErrorCode.CLOSED, `${label}: the client is closed`));
    throwIfAborted(options.signal, label);
    const timeoutMs =
      options.timeoutMs === undefined ? this.timeoutMs : positive(options.timeoutMs, 0, 'timeoutMs');
    return new Promise<Packet>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const settle = () => {
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
      };
      const op: Operation = {
        packet,
        expects,
        label,
        sent: false,
        onSent: options.onSent,
        resolve: (p) => {
          settle();
          resolve(p);
        },
        reject: (e) => {
          settle();
          reject(e);
        },
      };
      const give = (err: IpsecError) => {
        const index = this.queue.indexOf(op);
        if (index < 0) return;
        if (op.sent) {
          // The daemon is working on it; its answer would be taken for the next operation's.
          this.dropConnection(err);
          return;
        }
        this.queue.splice(index, 1);
        op.reject(err);
      };
      const onAbort = () =>
        give(
          new IpsecError(IpsecErrorCode.ABORTED, `${label}: aborted by its signal`, {
            cause: options.signal?.reason,
          }),
        );
      options.signal?.addEventListener('abort', onAbort, { once: true });
      timer = setTimeout(
        () =>
          give(
            new IpsecError(
              IpsecErrorCode.TIMEOUT,
              `${label}: no answer from the daemon within ${timeoutMs} ms; check that charon runs and raise timeoutMs for slow peers`,
            ),
          ),
        timeoutMs,
      );
      this.queue.push(op);
      this.pump();
    });
  }

  /** Send the head of the queue once a socket is there and nothing is in flight. */
  private pump(): void {
    const head = this.queue[0];
    if (!head || head.sent || this.closed) return;
    if (!this.socket) {
      this.connect().then(
        () => this.pump(),
        (err) => {
          this.failAll(err);
          if (this.confirmed.size > 0) this.scheduleReconnect();
        },
      );
      return;
    }
    head.sent = true;
    head.onSent?.();
    if (head.expects === 'command') this.counters.commands++;
    this.socket.write(head.packet);
  }

  private failAll(err: unknown): void {
    for (const op of this.queue.splice(0)) op.reject(err);
  }

  // --- connection -----------------------------------------------------------------------------------

  private connect(): Promise<Socket> {
    if (this.socket) return Promise.resolve(this.socket);
    this.connecting ??= new Promise<Socket>((resolve, reject) => {
      const socket = createConnection(this.path);
      const onError = (err: NodeJS.ErrnoException) => {
        this.connecting = undefined;
        reject(
          new IpsecError(
            IpsecErrorCode.CONNECT_FAILED,
            `cannot reach charon's VICI socket ${this.path} (${err.code ?? err.message}); is charon running, and is the path (--vici) right?`,
            { cause: err },
          ),
        );
      };
      socket.once('error', onError);
      socket.once('connect', () => {
        socket.off('error', onError);
        this.connecting = undefined;
        if (this.closed) {
          socket.destroy();
          reject(new IpsecError(IpsecErrorCode.CLOSED, 'the VICI client was closed'));
          return;
        }
        this.attach(socket);
        resolve(socket);
      });
    });
    return this.connecting;
  }

  private attach(socket: Socket): void {
    this.socket = socket;
    this.reader = new PacketReader(this.limits);
    this.counters.connects++;
    if (this.everConnected) this.counters.reconnects++;
    this.everConnected = true;
    this.reconnectDelay = this.baseDelay;
    socket.on('data', (chunk: Buffer) => {
      if (this.socket !== socket) return;
      let packets: Packet[];
      try {
        packets = this.reader!.push(chunk);
      } catch (err) {
        this.counters.protocolErrors++;
        this.dropConnection(err);
        return;
      }
      for (const p of packets) this.dispatch(p);
    });
    socket.on('error', () => {
      // 'close' follows and does the work.
    });
    socket.on('close', () => {
      if (this.socket !== socket) return;
      this.lost(new IpsecError(IpsecErrorCode.DISCONNECTED, `charon closed the VICI socket ${this.path}`));
    });
    // Events registered before a reconnect are registered again, ahead of anything queued meanwhile.
    for (const name of [...this.confirmed].reverse()) {
      this.queue.unshift({
        packet: encodePacket(PacketType.EVENT_REGISTER, name, undefined, this.limits),
        expects: 'event',
        label: `event re-registration ${name}`,
        sent: false,
        resolve: () => {},
        reject: () => {},
      });
    }
  }

  private dispatch(packet: Packet): void {
    if (packet.type === PacketType.EVENT) {
      this.counters.events++;
      for (const handler of this.listeners.get(packet.name!) ?? []) handler(packet.message!);
      return;
    }
    const head = this.queue[0];
    if (!head?.sent) {
      this.counters.protocolErrors++;
      this.dropConnection(
        new IpsecError(
          IpsecErrorCode.PROTOCOL,
          `the daemon sent packet type ${packet.type} that nothing asked for`,
        ),
      );
      return;
    }
    const fits =
      head.expects === 'command'
        ? packet.type === PacketType.CMD_RESPONSE || packet.type === PacketType.CMD_UNKNOWN
        : packet.type === PacketType.EVENT_CONFIRM || packet.type === PacketType.EVENT_UNKNOWN;
    if (!fits) {
      this.counters.protocolErrors++;
      this.dropConnection(
        new IpsecError(
          IpsecErrorCode.PROTOCOL,
          `${head.label}: the daemon answered with packet type ${packet.type}`,
        ),
      );
      return;
    }
    this.queue.shift();
    if (packet.type === PacketType.CMD_UNKNOWN || packet.type === PacketType.EVENT_UNKNOWN) {
      this.counters.commandFailures++;
      head.reject(
        new IpsecError(
          IpsecErrorCode.UNKNOWN_COMMAND,
          `${head.label}: the daemon does not know it (is the plugin loaded?)`,
        ),
      );
    } else head.resolve(packet);
    this.pump();
  }

  /** Close the current socket on purpose (protocol violation, abandoned in-flight operation). */
  private dropConnection(err: unknown): void {
    const socket = this.socket;
    if (!socket) return;
    this.lost(err);
    socket.destroy();
  }

  private lost(err: unknown): void {
    this.socket = undefined;
    this.reader = undefined;
    const inFlight = this.queue[0]?.sent ? this.queue.shift() : undefined;
    inFlight?.reject(err);
    if (this.closed) return;
    if (this.queue.length > 0) this.pump();
    else if (this.confirmed.size > 0) this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.reconnectTimer || this.closed) return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.socket || this.closed) return;
      this.connect().then(
        () => this.pump(),
        () => {
          this.reconnectDelay = Math.min(this.reconnectDelay * 2, this.maxDelay);
          this.scheduleReconnect();
        },
      );
    }, this.reconnectDelay);
    this.reconnectTimer.unref();
  }
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0)
    throw new IpsecError(
      IpsecErrorCode.INVALID_OPTION,
      `${name} must be a positive number, got ${String(value)}`,
    );
  return value;
}
