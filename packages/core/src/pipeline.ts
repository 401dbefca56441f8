import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Clock } from './clock.js';
import type { SockError } from './errors.js';

/**
 * The stages a connection passes through; a plug-in acts at the ones it declares.
 * - `preface`: raw socket, nothing read yet; a plug-in may consume a preface (PROXY protocol) and name
 *   the real peer.
 * - `accept`: the peer's address is known, nothing of the stream read. Rejecting costs one close.
 * - `handshake`: the transport handshake (TLS) is done; on plain TCP this follows accept at once.
 * - `frame`: one frame cut within its limit, before decoding (rates, sizes).
 * - `message`: a frame failed to decode or validate (reported, never a plug-in hook).
 * - `close`: the socket is gone; counters are released here, exactly once.
 */
export type Stage = 'preface' | 'accept' | 'handshake' | 'frame' | 'message' | 'close';

/** A plug-in's "no". Returning `undefined` lets the connection (or frame) through. */
export interface Rejection {
  /** Stable reason code, e.g. `ip-denied`, `conn-limit`. */
  readonly reason: string;
  readonly message?: string;
  /** The key counted against, for reports (an address or prefix). */
  readonly key?: string;
  /** Hold the socket open, paused, this long before closing it (tarpit). Default 0. */
  readonly tarpitMs?: number;
  /** With a rejection: do not close, only report (shadow mode). */
  readonly shadow?: boolean;
}

// biome-ignore lint/suspicious/noConfusingVoidType: hooks that return nothing let the connection through
export type Verdict = Rejection | undefined | void;

/** Build a rejection. */
export function reject(reason: string, details: Omit<Rejection, 'reason'> = {}): Rejection {
  return { reason, ...details };
}

export interface PeerAddress {
  readonly address: string;
  readonly port: number;
}

export interface ConnectionStats {
  bytesIn: number;
  bytesOut: number;
  framesIn: number;
  framesOut: number;
}

/** What every stage may read about a connection. */
export interface ConnectionInfo {
  /** Unique within this process. */
  readonly id: number;
  /** The peer as every guard sees it: after PROXY protocol, IPv4-mapped IPv6 written as IPv4. */
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly remoteFamily: 'IPv4' | 'IPv6';
  readonly localAddress: string;
  readonly localPort: number;
  /** The TCP peer itself (a proxy's address when PROXY protocol supplied `remoteAddress`). */
  readonly socketAddress: string;
  readonly socketPort: number;
  /** `tcp`, or the transport's name (`tls`, or what `server.adopt()` was told, e.g. `ssh`). */
  readonly transport: string;
  /**
   * Who the peer proved to be, when the stream came authenticated from elsewhere: the `identity` given to
   * `server.adopt()` (an SSH user, say). Undefined for the server's own listener (mTLS identities are read
   * with @sock/tls's `peerIdentity(conn)`).
   */
  readonly identity?: Readonly<Record<string, unknown>> | undefined;
  /** Clock time (ms) the socket was accepted. */
  readonly openedAt: number;
  /** Live counters; read them when needed, nothing is computed per read. */
  readonly stats: Readonly<ConnectionStats>;
}

/** What a plug-in may do to a connection, at any stage, including from its own timers. */
export interface ConnectionControl extends ConnectionInfo {
  /** Stop reading from the socket, for `ms` or until `resumeReading()` (traffic shaping). */
  pauseReading(ms?: number): void;
  resumeReading(): void;
  /**
   * Close the connection for a reason: counted, reported and passed to every plug-in's `violation`.
   * `plugin` names the deciding plug-in in reports (default `plugin`).
   */
  reject(rejection: Rejection, stage?: Stage, plugin?: string): void;
  /** Report a decision without acting (shadow mode, warnings); passes to `violation` hooks too. */
  report(rejection: Rejection, stage: Stage, plugin?: string): void;
  /** Storage for plug-ins, keyed by a symbol each plug-in owns. */
  readonly locals: Map<symbol, unknown>;
  /** Aborted when the connection closes: cancel timers and lookups with it. */
  readonly signal: AbortSignal;
  /** True once closing has begun. */
  readonly closing: boolean;
  /**
   * The server's clock (`ServerOptions.clock`): read time and set timers with it, not with `Date.now` and
   * `setTimeout`, so the plug-in runs in virtual time under `@sock/core/testing`.
   */
  readonly clock: Clock;
}

/** Sent to `violation` hooks: every rejection or reported decision on a connection, from any plug-in. */
export interface Violation {
  readonly stage: Stage;
  readonly plugin: string;
  readonly reason: string;
  readonly key?: string | undefined;
  readonly closed: boolean;
  readonly shadow: boolean;
  readonly error?: SockError | undefined;
  /**
   * Who is to blame: `peer` (the default when absent) for what the peer did, `server` for a fault of
   * our own side (a plug-in hook that threw, reason `plugin-error`). Strike counters must weigh `server`
   * violations 0: an innocent peer is never banned for an operator's bug.
   */
  readonly fault?: 'peer' | 'server' | undefined;
}

export interface CloseInfo {
  /** Why it closed: `peer-closed`, `closed` (by us), a rejection reason, or an error reason. */
  readonly reason: string;
  readonly error?: SockError | undefined;
  /** True when the connection never reached the handler (rejected at preface/accept/handshake). */
  readonly rejectedEarly: boolean;
}

/**
 * The plug-in contract. Declare only the hooks you need: a server with no `frame` hook does no per-frame
 * plug-in work at all. Hooks may be called concurrently for different connections.
 */
export interface Plugin {
  readonly name: string;
  /**
   * Before accept: read a preface from the raw (paused) socket and return the real peer, a rejection,
   * or nothing. Leftover bytes must be `unshift`ed back and the socket left paused.
   */
  preface?(socket: Socket, conn: ConnectionControl): Promise<PeerAddress | Rejection | undefined>;
  /** The peer is known, nothing read. Async verdicts (a shared store) keep the socket paused meanwhile. */
  accept?(conn: ConnectionControl): Verdict | Promise<Verdict>;
  /** After the transport handshake (TLS), before the first frame is read. */
  handshake?(conn: ConnectionControl): Verdict | Promise<Verdict>;
  /** Each inbound frame, before decoding. Synchronous: this is the hot path. */
  frame?(conn: ConnectionControl, frame: Buffer): Verdict;
  /** Any rejection or reported decision on this connection (strikes are counted here). */
  violation?(conn: ConnectionControl, violation: Violation): void;
  /** Exactly once for every connection that entered the accept stage. */
  close?(conn: ConnectionControl, info: CloseInfo): void;
}

/**
 * How accepted sockets become frame-carrying streams: plain TCP by default, TLS from @sock/tls. The
 * result may be any Duplex (a TLSSocket, or a stream the transport builds). A failure is a SockError
 * whose `reason` names it (e.g. `tls-handshake-timeout`).
 */
export interface ServerTransport {
  readonly name: string;
  upgrade(socket: Socket, conn: ConnectionControl): Promise<Duplex>;
}

/** How a client dials: plain TCP by default, TLS from @sock/tls; any Duplex carries the frames. */
export interface ClientTransport {
  readonly name: string;
  dial(options: DialOptions): Promise<Duplex>;
}

/**
 * The peer of a stream handed to `server.adopt()`: what the listener would have read from a TCP socket,
 * plus the transport's name and, when the stream is already authenticated, who the peer is.
 */
export interface AdoptedPeer {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  /** Reported as `conn.transport`, e.g. `ssh`. */
  readonly transport: string;
  /** Exposed as `conn.identity`. */
  readonly identity?: Readonly<Record<string, unknown>> | undefined;
}

export interface DialOptions {
  readonly host: string;
  readonly port: number;
  readonly localAddress?: string | undefined;
  /** The source port to bind (1–65535); default an ephemeral port. */
  readonly localPort?: number | undefined;
  readonly signal: AbortSignal;
}
