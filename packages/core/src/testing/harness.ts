// Core by its package name, not by path: the built entry then shares core's one copy (one SockError class,
// one connection-id counter) instead of bundling a second one.
import {
  type AdoptedPeer,
  type CloseInfo,
  type Connection,
  createServer,
  type Plugin,
  type RejectEvent,
  type ServerOptions,
  type SockError,
  type SockEvent,
  type SockServer,
  type Violation,
} from '@sock/core';
import { MemoryStream } from './memory-stream.js';
import { createVirtualClock, type VirtualClock } from './virtual-clock.js';

export interface HarnessOptions<In, Out> extends Omit<ServerOptions<In, Out>, 'clock' | 'transport'> {
  /** The clock the server and its plug-ins run on. Default a new virtual clock at 0. */
  clock?: VirtualClock;
}

export interface TestPeerOptions extends Partial<AdoptedPeer> {
  /**
   * Keep our side open after the server ends its side. Default false: like a `net` client, the test's
   * end answers the server's FIN with its own, so the connection closes.
   */
  halfOpen?: boolean;
}

/** The test's end of one in-memory connection. */
export interface TestPeer<In = Buffer, Out = Uint8Array> {
  /** The server's connection, as its handler and plug-ins see it. */
  readonly conn: Connection<In, Out>;
  /** Bytes arrive at the server as one read each: call it per chunk to choose the chunking. */
  write(data: Uint8Array | string): void;
  /** Send our FIN. */
  end(): void;
  /** Reset: the server's stream fails with ECONNRESET. */
  reset(): void;
  /** What the server wrote since the last `read()`. */
  read(): Buffer;
  /** Everything the server wrote, from the start. */
  received(): Buffer;
  /** Stop taking the server's writes (a peer that never reads): its write buffer fills. */
  stopReading(): void;
  startReading(): void;
  /** The server ended its side. */
  readonly serverEnded: boolean;
  /** The stream is gone (closed or destroyed). */
  readonly destroyed: boolean;
  /** Why the connection closed, once it has (also `await conn.closed`). */
  readonly closeInfo: CloseInfo | undefined;
  /** Every rejection or reported decision on this connection, as `violation` hooks saw it. */
  readonly violations: readonly Violation[];
}

/**
 * A real core server whose connections are in-memory streams and whose time is virtual: the whole
 * pipeline (accept and handshake hooks, frame hooks, the codec, the handler) runs as in production.
 */
export interface Harness<In = Buffer, Out = Uint8Array> {
  readonly server: SockServer<In, Out>;
  readonly clock: VirtualClock;
  /** A new connection from the given peer (defaults: 192.0.2.1, ports from 40000, to 127.0.0.1:7000). */
  connect(peer?: TestPeerOptions): TestPeer<In, Out>;
  /**
   * Let what is pending happen at the current time, then move virtual time forward, firing timers in
   * order and letting their effects settle after each.
   */
  advance(ms: number): Promise<void>;
  /** Let pending stream events, promises and handler work run (event-loop turns, no wall-clock wait). */
  settle(): Promise<void>;
  /** Every observer event, in order. */
  readonly events: readonly SockEvent[];
  /** Every rejection and reported decision, from core or a plug-in. */
  readonly rejections: readonly RejectEvent[];
  /** Every violation passed to plug-ins, with the connection's id. */
  readonly violations: ReadonlyArray<Violation & { readonly connId: number }>;
  /** Every close passed to plug-ins, with the connection's id. */
  readonly closes: ReadonlyArray<CloseInfo & { readonly connId: number }>;
  /** Handler and plug-in failures (`error` events). */
  readonly errors: readonly SockError[];
  /** Close the server (default `drainMs` 0), advancing virtual time until it has. */
  close(options?: { drainMs?: number }): Promise<void>;
}

/** Event-loop turns per `settle()`: enough for a stream event, the promises it starts and their writes. */
const SETTLE_TURNS = 8;
/** `close()` gives up (and throws) after this many timers: something keeps re-arming one. */
const MAX_CLOSE_STEPS = 10_000;

/** A socket-free test server: see `Harness`. */
export function createHarness<In = Buffer, Out = Uint8Array>(
  options: HarnessOptions<In, Out>,
): Harness<In, Out> {
  const clock = options.clock ?? createVirtualClock();
  const events: SockEvent[] = [];
  const rejections: RejectEvent[] = [];
  const errors: SockError[] = [];
  const violations: Array<Violation & { connId: number }> = [];
  const closes: Array<CloseInfo & { connId: number }> = [];
  const peerViolations = new Map<number, Violation[]>();
  const closeInfos = new Map<number, CloseInfo>();
  // Runs after the caller's plug-ins: it sees every violation and every close, and decides nothing.
  const recorder: Plugin = {
    name: 'sock-testing',
    violation(conn, violation) {
      violations.push({ ...violation, connId: conn.id });
      peerViolations.get(conn.id)?.push(violation);
    },
    close(conn, info) {
      closes.push({ ...info, connId: conn.id });
      closeInfos.set(conn.id, info);
    },
  };
  const server = createServer<In, Out>({
    ...options,
    clock,
    plugins: [...(options.plugins ?? []), recorder],
    observers: [
      (e) => {
        events.push(e);
        if (e.type === 'reject') rejections.push(e);
        else if (e.type === 'error') errors.push(e.error);
      },
      ...(options.observers ?? []),
    ],
  });
  let nextPort = 40000;

  const settle = async (): Promise<void> => {
    for (let i = 0; i < SETTLE_TURNS; i++) await new Promise<void>((r) => setImmediate(r));
  };

  const advance = async (ms: number): Promise<void> => {
    // What was written before the call happens now, not at the end of the window: settle first.
    await settle();
    const target = clock.now() + ms;
    for (;;) {
      const next = clock.nextTimerAt();
      if (next === undefined || next > target) break;
      clock.advance(Math.max(0, next - clock.now()));
      await settle();
    }
    clock.advance(Math.max(0, target - clock.now()));
    await settle();
  };

  return {
    server,
    clock,
    events,
    rejections,
    violations,
    closes,
    errors,
    settle,
    advance,
    connect(peer = {}) {
      const memory = new MemoryStream(peer.halfOpen ?? false);
      const conn = server.adopt(memory.stream, {
        remoteAddress: peer.remoteAddress ?? '192.0.2.1',
        remotePort: peer.remotePort ?? nextPort++,
        localAddress: peer.localAddress ?? '127.0.0.1',
        localPort: peer.localPort ?? 7000,
        transport: peer.transport ?? 'tcp',
        identity: peer.identity,
      });
      const mine: Violation[] = [];
      peerViolations.set(conn.id, mine);
      return {
        conn,
        violations: mine,
        write: (data) => memory.write(data),
        end: () => memory.end(),
        reset: () => memory.reset(),
        read: () => memory.read(),
        received: () => memory.all(),
        stopReading: () => memory.stopReading(),
        startReading: () => memory.startReading(),
        get serverEnded() {
          return memory.serverEnded;
        },
        get destroyed() {
          return memory.destroyed;
        },
        get closeInfo() {
          return closeInfos.get(conn.id);
        },
      };
    },
    async close(closeOptions = {}) {
      let done = false;
      const closing = server.close({ drainMs: closeOptions.drainMs ?? 0 }).then(() => {
        done = true;
      });
      await settle();
      for (let step = 0; !done && step < MAX_CLOSE_STEPS; step++) {
        const next = clock.nextTimerAt();
        if (next === undefined) await settle();
        else await advance(Math.max(0, next - clock.now()));
      }
      if (!done) throw new Error('sock testing: the server did not close (a timer keeps re-arming)');
      await closing;
    },
  };
}
