import { createSocket, type Socket as DgramSocket, type RemoteInfo } from 'node:dgram';
import { once } from 'node:events';
import { isIPv4, isIPv6 } from 'node:net';
import {
  type Clock,
  type ConnectionInfo,
  type Observer,
  SockError,
  SockErrorCode,
  type SockEvent,
  type Stage,
  toSockError,
  type Verdict,
} from '@sock/core';
import { canonicalPeer, notify, systemClock } from '@sock/core/internal';
import {
  type DatagramChecker,
  type DatagramGuard,
  type DatagramSource,
  isRejection,
  toDatagramGuard,
} from './admission.js';
import { AmplificationLimit, type AmplificationOptions } from './amplification.js';
import { checkPayloadLimit } from './limits.js';
import { UnvalidatedLimit, type UnvalidatedLimitOptions } from './unvalidated-limit.js';

/** The options every UDP endpoint (socket, client, server) shares. */
export interface EndpointOptions {
  /** `udp4` or `udp6`. Default: from the first address used (bind, connect or send). */
  type?: 'udp4' | 'udp6';
  /**
   * Largest datagram payload accepted or sent, in bytes. Default 1232 (safe on any path, DNS flag day
   * 2020); at most 65,507. Larger inbound datagrams are dropped and counted (`frame-too-large`); larger
   * outbound ones throw ERR_SOCK_FRAME_TOO_LARGE.
   */
  maxPayloadBytes?: number;
  /** SO_RCVBUF in bytes, set after binding (Linux doubles it and caps it at `rmem_max`). */
  receiveBufferSize?: number;
  /** SO_SNDBUF in bytes, set after binding (Linux doubles it and caps it at `wmem_max`). */
  sendBufferSize?: number;
  /** With a `udp6` socket bound to `::`, refuse IPv4. Default false (dual stack). */
  ipv6Only?: boolean;
  /**
   * Per-datagram guards, run in order; the first rejection drops the datagram. Pass `createGuards()`
   * from @sock/guards (or any DatagramChecker) as is, or your own DatagramGuard.
   */
  guards?: readonly (DatagramGuard | DatagramChecker)[];
  /** Shorthand for one more guard that only admits: runs after `guards`. */
  admit?: DatagramGuard['admit'];
  /**
   * Cap what is sent to unvalidated addresses at `factor` × the bytes received from them (QUIC, RFC 9000
   * §8.1). Off by default on a plain socket (a client talks first); on by default on a server.
   */
  antiAmplification?: boolean | AmplificationOptions;
  /**
   * The rate limit for datagrams from sources that have not proven their address (see
   * `DatagramSource.validated`): per address, drop only, never a strike. `false` turns it off.
   * Default 100/s, burst 200.
   */
  unvalidated?: UnvalidatedLimitOptions | false;
  /**
   * INSECURE: treat every source address as proven, so guards strike and ban whatever address a datagram
   * claims. Only for networks where no one can forge a source (a private link with ingress filtering);
   * anywhere else one forged datagram per strike bans any victim. Default false.
   */
  dangerouslyTrustSourceAddresses?: boolean;
  /** Receive every drop (with its reason), `listening`, and socket errors: core's event shape. */
  observers?: readonly Observer[];
  /**
   * Where time is read (limits, cookies, caches) and waited on (request retries). Default the system
   * clock; tests give a virtual one (`@sock/core/testing`). (Replaces the `now` option of 0.x.)
   */
  clock?: Clock;
}

export interface UdpAddress {
  readonly address: string;
  readonly port: number;
  readonly family: 'IPv4' | 'IPv6';
}

export interface UdpBindOptions {
  /** Default `127.0.0.1`. `::` is dual stack unless `ipv6Only`. */
  host?: string;
  /** Default 0: a free port; read it back from the result or `address()`. */
  port?: number;
  signal?: AbortSignal;
}

/** Counters of an endpoint: plain numbers (the metrics snapshot), plus drops by reason. */
export interface UdpStats {
  /** Datagrams and bytes read from the socket, before any check. */
  readonly datagramsIn: number;
  readonly bytesIn: number;
  /** Datagrams that passed the size check and the guards (decoding may still drop them). */
  readonly admitted: number;
  /** Datagrams and bytes handed to the kernel. */
  readonly datagramsOut: number;
  readonly bytesOut: number;
  /** Inbound datagrams dropped, all reasons together (`droppedBy` has them by reason). */
  readonly dropped: number;
  /** Replies withheld by the anti-amplification cap. */
  readonly amplificationRefusals: number;
  /** Datagrams from sources that had not proven their address (they earn no strikes or bans). */
  readonly unvalidated: number;
  /** Of those, dropped (by any reason, `unvalidated-rate` included). */
  readonly unvalidatedDropped: number;
  readonly errors: number;
  /** Addresses in the anti-amplification table. */
  readonly tracked: number;
  /** Inbound datagrams dropped, by reason (`frame-too-large`, `queue-full`, a guard's reason, …). */
  readonly droppedBy: Readonly<Record<string, number>>;
  /** Outbound datagrams not sent, by reason (`amplification-limit`). */
  readonly withheldBy: Readonly<Record<string, number>>;
  /** Decisions only reported (shadow mode), by reason. */
  readonly reportedBy: Readonly<Record<string, number>>;
}

/**
 * A datagram's source with a slot for its decoded message: the one object allocated per datagram, which
 * a socket hands to its consumer as the Datagram once `message` is set.
 */
export interface Inbound extends DatagramSource {
  validated: boolean;
  message: unknown;
}

/** What an endpoint hands on for each datagram that passed size, guards and accounting. */
export type Deliver = (payload: Buffer, source: Inbound) => void;

/**
 * Whether a datagram proves its source address (the server's cookie check). It may leave what it
 * parsed in `source.message` for `deliver`. Default: the path was marked with `validate()`.
 */
export type Prove = (payload: Buffer, source: Inbound) => boolean;

const NO_GUARDS: readonly DatagramGuard[] = [];

export function pathKey(address: string, port: number): string {
  return `${address}|${port}`;
}

export function abortedError(signal: AbortSignal, what: string): SockError {
  return new SockError(SockErrorCode.ABORTED, `${what}: aborted`, { cause: signal.reason });
}

/**
 * The machinery under every UDP socket, client and server: the node:dgram socket, the receive checks
 * (size → guards → amplification accounting), the send checks (size → amplification cap), counters
 * and events. Consumers get admitted datagrams through `deliver`.
 */
export class Endpoint {
  readonly maxPayloadBytes: number;
  readonly clock: Clock;
  readonly now: () => number;
  readonly amplification: AmplificationLimit | undefined;
  private dgram: DgramSocket | undefined;
  private type: 'udp4' | 'udp6' | undefined;
  private readonly admitHooks: readonly DatagramGuard[];
  private readonly violationHooks: readonly DatagramGuard[];
  private readonly observers: readonly Observer[];
  private bound: UdpAddress | null = null;
  private connected: UdpAddress | null = null;
  private closing: Promise<void> | undefined;
  private readonly counts = {
    datagramsIn: 0,
    bytesIn: 0,
    admitted: 0,
    datagramsOut: 0,
    bytesOut: 0,
    dropped: 0,
    amplificationRefusals: 0,
    unvalidated: 0,
    unvalidatedDropped: 0,
    errors: 0,
  };
  private readonly trustSources: boolean;
  private readonly unvalidatedLimit: UnvalidatedLimit | undefined;
  private readonly prove: Prove;
  private readonly dropped: Record<string, number> = {};
  private readonly withheld: Record<string, number> = {};
  private readonly reported: Record<string, number> = {};

  constructor(
    private readonly options: EndpointOptions,
    private readonly deliver: Deliver,
    amplificationDefault: boolean,
    private readonly what: string,
    prove?: Prove,
  ) {
    this.maxPayloadBytes = checkPayloadLimit(options.maxPayloadBytes, `${what}: maxPayloadBytes`);
    this.clock = options.clock ?? systemClock;
    const clock = this.clock;
    this.now = () => clock.now();
    this.trustSources = options.dangerouslyTrustSourceAddresses === true;
    this.unvalidatedLimit =
      options.unvalidated === false ? undefined : new UnvalidatedLimit(options.unvalidated ?? {}, this.now);
    this.prove =
      prove ?? ((_payload, source) => this.amplification?.isValidated(source.address, source.port) === true);
    this.type = options.type;
    const guards = [
      ...(options.guards ?? NO_GUARDS).map(toDatagramGuard),
      ...(options.admit ? [{ name: 'admit', admit: options.admit }] : []),
    ];
    this.admitHooks = guards.filter((g) => typeof g.admit === 'function');
    this.violationHooks = guards.filter((g) => typeof g.violation === 'function');
    this.observers = options.observers ?? [];
    const amp = options.antiAmplification ?? amplificationDefault;
    this.amplification = amp ? new AmplificationLimit(amp === true ? {} : amp, this.now) : undefined;
  }

  address(): UdpAddress | null {
    return this.bound;
  }

  remoteAddress(): UdpAddress | null {
    return this.connected;
  }

  get isClosed(): boolean {
    return this.closing !== undefined;
  }

  async bind(options: UdpBindOptions = {}): Promise<UdpAddress> {
    const host = options.host ?? '127.0.0.1';
    const port = options.port ?? 0;
    if (options.signal?.aborted) throw abortedError(options.signal, `${this.what}.bind`);
    if (this.bound) {
      throw new SockError(
        SockErrorCode.INVALID_OPTION,
        `${this.what}.bind: already bound to ${this.bound.port}`,
      );
    }
    const socket = this.socket(host);
    try {
      const listening = once(socket, 'listening', options.signal ? { signal: options.signal } : {});
      socket.bind({ address: host, port, exclusive: true });
      await listening;
    } catch (err) {
      if (options.signal?.aborted) {
        await this.close();
        throw abortedError(options.signal, `${this.what}.bind`);
      }
      throw toSockError(err, `${this.what}.bind ${host}:${port}`);
    }
    this.bound = this.settle(socket);
    this.emit({
      type: 'listening',
      address: this.bound.address,
      port: this.bound.port,
      family: this.bound.family,
    });
    return this.bound;
  }

  /** Connected mode: the kernel filters inbound datagrams to this peer; sends need no address. */
  async connect(port: number, host: string, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) throw abortedError(signal, `${this.what}.connect`);
    const socket = this.socket(host);
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.connect(port, host, () => {
          socket.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      throw toSockError(err, `${this.what}.connect ${host}:${port}`);
    }
    this.bound ??= this.settle(socket);
    const remote = socket.remoteAddress();
    const peer = canonicalPeer(remote.address);
    this.connected = { address: peer.address, port: remote.port, family: peer.family };
  }

  bufferSizes(): { receive: number; send: number } {
    const socket = this.requireSocket('bufferSizes');
    return { receive: socket.getRecvBufferSize(), send: socket.getSendBufferSize() };
  }

  /**
   * Lift the amplification cap for `address`:`port` (it proved it receives at that address) until
   * `until` (epoch ms; default: while the path is remembered).
   */
  validate(address: string, port: number, until?: number): void {
    this.amplification?.validate(address, port, until);
  }

  /**
   * Send one datagram, checked: its size (throws), then the amplification cap (returns false, counted as
   * withheld). Resolves once the kernel took it.
   */
  async send(bytes: Uint8Array, address: string | undefined, port: number | undefined, signal?: AbortSignal) {
    if (signal?.aborted) throw abortedError(signal, `${this.what}.send`);
    if (this.closing) {
      throw new SockError(SockErrorCode.CONNECTION_CLOSED, `${this.what}.send: the socket is closed`);
    }
    this.checkSize(bytes.length);
    let to: UdpAddress | undefined;
    if (address === undefined || port === undefined) {
      if (!this.connected) {
        throw new SockError(
          SockErrorCode.INVALID_OPTION,
          `${this.what}.send: pass { address, port } or connect() the socket first`,
        );
      }
      to = this.connected;
    }
    const target = to?.address ?? (address as string);
    const targetPort = to?.port ?? (port as number);
    if (!this.allowSend(bytes.length, target, targetPort)) return false;
    const socket = this.socket(target);
    await new Promise<void>((resolve, reject) => {
      const done = (err: Error | null) => (err ? reject(toSockError(err, `${this.what}.send`)) : resolve());
      if (to) socket.send(bytes, done);
      else socket.send(bytes, targetPort, this.outboundAddress(target), done);
    });
    // The first send of an unbound socket binds it to a free port.
    if (!this.bound && !this.closing) this.bound = this.settle(socket);
    this.counts.datagramsOut++;
    this.counts.bytesOut += bytes.length;
    return true;
  }

  /**
   * Fire-and-forget send for replies on the hot path: same checks as `send` but no promise; a kernel
   * error is counted and reported as an `error` event.
   */
  transmit(bytes: Uint8Array, address: string, port: number): boolean {
    if (this.closing || !this.dgram) return false;
    this.checkSize(bytes.length);
    if (!this.allowSend(bytes.length, address, port)) return false;
    this.dgram.send(bytes, port, this.outboundAddress(address), this.onSent);
    this.counts.datagramsOut++;
    this.counts.bytesOut += bytes.length;
    return true;
  }

  /** Report a drop the consumer decided (invalid message, forged cookie, …) like the endpoint's own. */
  drop(
    source: DatagramSource,
    stage: Stage,
    reason: string,
    blame: boolean,
    details: { plugin?: string; message?: string; key?: string; error?: SockError } = {},
  ): void {
    this.dropped[reason] = (this.dropped[reason] ?? 0) + 1;
    this.counts.dropped++;
    if (!source.validated) this.counts.unvalidatedDropped++;
    this.decided(source, stage, reason, blame, false, details);
  }

  /** Drop a datagram whose payload did not decode or validate (`invalid-message`, `validation-failed`). */
  dropInvalid(err: unknown, source: DatagramSource): void {
    const error = toSockError(err, 'datagram did not decode', {
      code: SockErrorCode.INVALID_MESSAGE,
      reason: 'invalid-message',
    });
    this.drop(source, 'message', error.reason ?? 'invalid-message', true, { message: error.message, error });
  }

  stats(): UdpStats {
    return {
      ...this.counts,
      tracked: this.amplification?.size ?? 0,
      droppedBy: { ...this.dropped },
      withheldBy: { ...this.withheld },
      reportedBy: { ...this.reported },
    };
  }

  close(): Promise<void> {
    if (this.closing) return this.closing;
    const socket = this.dgram;
    this.closing = socket
      ? new Promise<void>((resolve) => {
          try {
            socket.close(() => resolve());
          } catch {
            resolve(); // already closed (a failed bind closes it)
          }
        })
      : Promise.resolve();
    return this.closing;
  }

  private readonly onSent = (err: Error | null) => {
    if (err) this.onError(err);
  };

  private readonly onError = (err: Error) => this.reportError(toSockError(err, this.what));

  /** Count an error and report it to observers as an `error` event. */
  reportError(error: SockError): void {
    this.counts.errors++;
    this.emit({ type: 'error', error });
  }

  private readonly onMessage = (msg: Buffer, rinfo: RemoteInfo) => {
    const size = msg.length;
    this.counts.datagramsIn++;
    this.counts.bytesIn += size;
    // One object per datagram: the source guards see, later filled in as the Datagram a consumer gets.
    let source: Inbound;
    const trusted = this.trustSources;
    if (rinfo.family === 'IPv4') {
      source = {
        address: rinfo.address,
        port: rinfo.port,
        family: 'IPv4',
        size,
        validated: trusted,
        message: undefined,
      };
    } else {
      const peer = canonicalPeer(rinfo.address);
      source = {
        address: peer.address,
        port: rinfo.port,
        family: peer.family,
        size,
        validated: trusted,
        message: undefined,
      };
    }
    // An oversize datagram is not parsed for a proof: it is dropped as unproven.
    if (!trusted && size <= this.maxPayloadBytes) source.validated = this.prove(msg, source);
    if (!source.validated) {
      this.counts.unvalidated++;
      if (this.unvalidatedLimit && !this.unvalidatedLimit.take(source.address)) {
        this.drop(source, 'accept', 'unvalidated-rate', false, {
          message: `over the rate limit for sources that have not proven their address (${source.address})`,
        });
        return;
      }
    }
    if (size > this.maxPayloadBytes) {
      this.drop(source, 'frame', 'frame-too-large', true, {
        message: `datagram of ${size} bytes exceeds maxPayloadBytes ${this.maxPayloadBytes}`,
      });
      return;
    }
    this.admit(msg, source, 0);
  };

  /** Run admission hooks from `from` on; an asynchronous verdict (a shared store) resumes after it. */
  private admit(msg: Buffer, source: Inbound, from: number): void {
    const hooks = this.admitHooks;
    for (let i = from; i < hooks.length; i++) {
      const guard = hooks[i]!;
      let verdict: Verdict | Promise<Verdict>;
      try {
        verdict = guard.admit!(source);
      } catch (err) {
        this.guardFailed(guard, source, err);
        return;
      }
      if (verdict === undefined) continue;
      if (verdict instanceof Promise) {
        verdict.then(
          (v) => {
            if (!this.rejected(guard, source, v)) this.admit(msg, source, i + 1);
          },
          (err: unknown) => this.guardFailed(guard, source, err),
        );
        return;
      }
      if (this.rejected(guard, source, verdict)) return;
    }
    this.amplification?.received(source.address, source.port, source.size);
    this.counts.admitted++;
    this.deliver(msg, source);
  }

  /** Act on a verdict: true when the datagram is dropped; a shadow rejection is only reported. */
  private rejected(guard: DatagramGuard, source: DatagramSource, verdict: Verdict): boolean {
    if (!isRejection(verdict)) return false;
    const details = { plugin: guard.name, message: verdict.message, key: verdict.key };
    if (verdict.shadow) {
      this.reported[verdict.reason] = (this.reported[verdict.reason] ?? 0) + 1;
      this.decided(source, 'accept', verdict.reason, true, true, details);
      return false;
    }
    this.drop(source, 'accept', verdict.reason, true, details);
    return true;
  }

  /** A guard that throws fails closed: the datagram is dropped (`guard-failed`) and the error reported. */
  private guardFailed(guard: DatagramGuard, source: DatagramSource, err: unknown): void {
    this.drop(source, 'accept', 'guard-failed', false, { plugin: guard.name });
    this.reportError(
      new SockError(
        SockErrorCode.SOCKET_ERROR,
        `guard ${guard.name} failed: ${(err as Error)?.message ?? err}`,
        {
          cause: err,
          reason: 'guard-failed',
        },
      ),
    );
  }

  private decided(
    source: DatagramSource,
    stage: Stage,
    reason: string,
    blame: boolean,
    shadow: boolean,
    details: {
      plugin?: string | undefined;
      message?: string | undefined;
      key?: string | undefined;
      error?: SockError;
    },
  ): void {
    const plugin = details.plugin ?? 'udp';
    // A source that has not proven its address may have forged it: nothing is held against that address.
    if (blame && source.validated) {
      const violation = { stage, plugin, reason, key: details.key, dropped: !shadow, shadow };
      for (const guard of this.violationHooks) {
        try {
          guard.violation!(source, violation);
        } catch (err) {
          this.onError(err as Error);
        }
      }
    }
    if (this.observers.length === 0) return;
    this.emit({
      type: 'reject',
      conn: this.info(source),
      stage,
      plugin,
      reason,
      message: details.message,
      key: details.key,
      closed: false,
      shadow,
      error: details.error,
    });
  }

  /** Core's ConnectionInfo for a datagram's source: UDP has no connection, so `id` is 0. */
  private info(source: DatagramSource): ConnectionInfo {
    return {
      id: 0,
      remoteAddress: source.address,
      remotePort: source.port,
      remoteFamily: source.family,
      localAddress: this.bound?.address ?? '',
      localPort: this.bound?.port ?? 0,
      socketAddress: source.address,
      socketPort: source.port,
      transport: 'udp',
      openedAt: this.now(),
      stats: { bytesIn: source.size, bytesOut: 0, framesIn: 1, framesOut: 0 },
    };
  }

  private allowSend(bytes: number, address: string, port: number): boolean {
    const amp = this.amplification;
    if (amp === undefined || amp.trySend(address, port, bytes)) return true;
    this.withheld['amplification-limit'] = (this.withheld['amplification-limit'] ?? 0) + 1;
    this.counts.amplificationRefusals++;
    if (this.observers.length > 0) {
      this.emit({
        type: 'reject',
        conn: this.info({
          address,
          port,
          family: isIPv6(address) ? 'IPv6' : 'IPv4',
          size: 0,
          validated: false,
        }),
        stage: 'frame',
        plugin: 'udp',
        reason: 'amplification-limit',
        message: `withheld ${bytes} bytes to an unvalidated address: over ${amp.factor}x the bytes received from it`,
        closed: false,
        shadow: false,
      });
    }
    return false;
  }

  private checkSize(bytes: number): void {
    if (bytes > this.maxPayloadBytes) {
      throw new SockError(
        SockErrorCode.FRAME_TOO_LARGE,
        `datagram of ${bytes} bytes exceeds maxPayloadBytes ${this.maxPayloadBytes}; ` +
          'raise maxPayloadBytes (at most 65507) or split the message',
        { reason: 'frame-too-large' },
      );
    }
  }

  /** A udp6 socket reaches IPv4 peers through their IPv4-mapped address. */
  private outboundAddress(address: string): string {
    return this.type === 'udp6' && isIPv4(address) ? `::ffff:${address}` : address;
  }

  private requireSocket(what: string): DgramSocket {
    if (!this.dgram) {
      throw new SockError(SockErrorCode.SERVER_NOT_RUNNING, `${this.what}.${what}: bind or connect first`);
    }
    return this.dgram;
  }

  /** The node:dgram socket, created on first use with the family of the first address. */
  private socket(address: string): DgramSocket {
    if (this.closing) {
      throw new SockError(SockErrorCode.CONNECTION_CLOSED, `${this.what}: the socket is closed`);
    }
    if (this.dgram) return this.dgram;
    this.type ??= isIPv6(address) ? 'udp6' : 'udp4';
    const socket = createSocket({ type: this.type, ipv6Only: this.options.ipv6Only ?? false });
    socket.on('message', this.onMessage);
    socket.on('error', this.onError);
    this.dgram = socket;
    return socket;
  }

  /** Once the socket has a local address: apply buffer sizes, and return that address. */
  private settle(socket: DgramSocket): UdpAddress {
    this.applyBufferSizes(socket);
    const local = socket.address();
    return { address: local.address, port: local.port, family: local.family === 'IPv6' ? 'IPv6' : 'IPv4' };
  }

  private applyBufferSizes(socket: DgramSocket): void {
    const { receiveBufferSize, sendBufferSize } = this.options;
    try {
      if (receiveBufferSize !== undefined) socket.setRecvBufferSize(receiveBufferSize);
      if (sendBufferSize !== undefined) socket.setSendBufferSize(sendBufferSize);
    } catch (err) {
      throw toSockError(err, `${this.what}: setting buffer sizes`);
    }
  }

  private emit(event: SockEvent): void {
    notify(this.observers, event);
  }
}
