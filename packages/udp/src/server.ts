import { bytes, type Codec, parseDuration, SockError, SockErrorCode } from '@sock/core';
import type { DatagramSource } from './admission.js';
import {
  type AddressCookieOptions,
  type AddressCookies,
  addressCookies,
  type CookieCheck,
} from './cookie.js';
import {
  Endpoint,
  type EndpointOptions,
  type Inbound,
  pathKey,
  type UdpAddress,
  type UdpBindOptions,
  type UdpStats,
} from './endpoint.js';
import { type Envelope, encodeEnvelope, parseEnvelope } from './envelope.js';
import { Lru } from './lru.js';

/** What a handler knows about the request it answers. */
export interface UdpRequestContext {
  readonly address: string;
  readonly port: number;
  readonly family: 'IPv4' | 'IPv6';
  /** The client's request id. */
  readonly id: number;
  /** True when the request carried a valid cookie: the source address is proven, not spoofed. */
  readonly validated: boolean;
  /** Aborted when the server closes. */
  readonly signal: AbortSignal;
}

export interface ResponseCacheOptions {
  /** Responses kept at most (least recently used go first). Default 1024. */
  maxEntries?: number;
  /** How long a response answers retransmissions; longer than a client's retry span. Default `30s`. */
  ttl?: number | string;
}

export interface UdpServerOptions<Req, Res> extends EndpointOptions {
  /** Answers one request. What it returns (or resolves to) is encoded and sent back. */
  handler: (request: Req, context: UdpRequestContext) => Res | Promise<Res>;
  /** Decodes requests and encodes responses. Default `bytes()`. */
  codec?: Codec<Req, Res>;
  /**
   * Address validation by stateless cookies. Pass `addressCookies(...)` to keep a handle for `rotate()`,
   * or its options. Default: off.
   */
  cookies?: AddressCookies | AddressCookieOptions | false;
  /**
   * With cookies: run the handler only for requests with a valid cookie; others get a cookie and resend.
   * When false, unvalidated requests are answered if the response fits the amplification budget, and get
   * a cookie instead when it does not (the response waits in the cache for the resend). Default true.
   */
  requireCookie?: boolean;
  /** Answers retransmitted requests (same source and id) without running the handler again. */
  responseCache?: ResponseCacheOptions;
  /** Handlers running at once at most; requests beyond are dropped (`busy`). Default 256. */
  maxConcurrent?: number;
}

export interface UdpServerStats extends UdpStats {
  /** Requests that reached the handler. */
  readonly handled: number;
  /** Retransmissions answered from the response cache, or dropped while their first copy ran. */
  readonly duplicates: number;
  /** Cookies sent to clients that had none, or an expired or forged one. */
  readonly challenges: number;
  readonly failures: number;
  readonly inFlight: number;
}

/** A request/response server: guards, anti-amplification, cookies, and a duplicate-suppressing cache. */
export interface UdpServer {
  bind(options?: UdpBindOptions): Promise<UdpAddress>;
  address(): UdpAddress | null;
  /** The cookie keys (for `rotate()`), when cookies are on. */
  readonly cookies: AddressCookies | undefined;
  stats(): UdpServerStats;
  /** Stop receiving, abort handlers' signals; resolves when the socket is closed. */
  close(): Promise<void>;
}

/**
 * A UDP request/response server: each request runs the handler once per (source, id), and the reply is
 * sent back subject to anti-amplification (on by default) and, when configured, address validation.
 */
export function createUdpServer<Req = Buffer, Res = Uint8Array>(
  options: UdpServerOptions<Req, Res>,
): UdpServer {
  return new Server(options);
}

/** A cached reply: the datagram once the handler has answered, undefined while it runs. */
interface CacheEntry {
  reply: Buffer | undefined;
}

/** What the proof step parsed, handed to the datagram handler in `source.message`. */
interface Parsed {
  readonly envelope: Envelope | undefined;
  /** The cookie's check, when one was presented and cookies are on. */
  readonly check: CookieCheck | undefined;
}

function isZero(bytes: Buffer): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}

class Server<Req, Res> implements UdpServer {
  readonly cookies: AddressCookies | undefined;
  private readonly endpoint: Endpoint;
  private readonly codec: Codec<Req, Res>;
  private readonly cache: Lru<string, CacheEntry>;
  private readonly requireCookie: boolean;
  private readonly maxConcurrent: number;
  private readonly abort = new AbortController();
  private inFlight = 0;
  private readonly counts = { handled: 0, duplicates: 0, challenges: 0, failures: 0 };

  constructor(private readonly options: UdpServerOptions<Req, Res>) {
    if (typeof options.handler !== 'function') {
      throw new SockError(SockErrorCode.INVALID_OPTION, 'createUdpServer: handler must be a function');
    }
    this.codec = options.codec ?? (bytes() as unknown as Codec<Req, Res>);
    const cookies = options.cookies;
    this.cookies = !cookies
      ? undefined
      : 'issue' in cookies
        ? cookies
        : addressCookies({ clock: options.clock, ...cookies });
    this.requireCookie = options.requireCookie ?? true;
    this.maxConcurrent = options.maxConcurrent ?? 256;
    const cache = options.responseCache ?? {};
    const maxEntries = cache.maxEntries ?? 1024;
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) {
      throw new SockError(
        SockErrorCode.INVALID_OPTION,
        `createUdpServer: responseCache.maxEntries must be a positive integer, got ${maxEntries}`,
      );
    }
    this.endpoint = new Endpoint(options, this.onDatagram, true, 'udp server', this.prove);
    this.cache = new Lru(
      maxEntries,
      parseDuration(cache.ttl ?? 30_000, 'responseCache.ttl'),
      this.endpoint.now,
    );
  }

  bind(options?: UdpBindOptions): Promise<UdpAddress> {
    return this.endpoint.bind(options);
  }

  address(): UdpAddress | null {
    return this.endpoint.address();
  }

  stats(): UdpServerStats {
    return { ...this.endpoint.stats(), ...this.counts, inFlight: this.inFlight };
  }

  close(): Promise<void> {
    this.abort.abort();
    this.cache.clear();
    return this.endpoint.close();
  }

  /** Parse the envelope and check its cookie before the guards: only a valid cookie proves the source. */
  private readonly prove = (datagram: Buffer, source: Inbound): boolean => {
    const parsed = this.parse(datagram, source);
    source.message = parsed;
    return parsed.check === 'valid';
  };

  private parse(datagram: Buffer, source: DatagramSource): Parsed {
    const envelope = parseEnvelope(datagram);
    const cookie = envelope?.cookie;
    const check =
      this.cookies !== undefined && cookie !== undefined && !isZero(cookie) && envelope?.kind === 'request'
        ? this.cookies.verify(cookie, source.address, source.port)
        : undefined;
    return { envelope, check };
  }

  private readonly onDatagram = (datagram: Buffer, source: Inbound): void => {
    const parsed = (source.message as Parsed | undefined) ?? this.parse(datagram, source);
    source.message = undefined;
    const envelope = parsed.envelope;
    if (envelope === undefined || envelope.kind !== 'request') {
      this.endpoint.drop(source, 'message', 'invalid-envelope', true);
      return;
    }
    const validated = this.checkCookie(envelope, parsed.check, source);
    if (validated === undefined) return;
    const key = `${pathKey(source.address, source.port)}|${envelope.id}`;
    const cached = this.cache.get(key);
    if (cached !== undefined) {
      this.counts.duplicates++;
      if (cached.reply) this.reply(cached.reply, source, !validated);
      else this.endpoint.drop(source, 'message', 'duplicate', false);
      return;
    }
    if (this.inFlight >= this.maxConcurrent) {
      this.endpoint.drop(source, 'message', 'busy', false);
      return;
    }
    let request: Req | Promise<Req>;
    try {
      request = this.codec.decode(envelope.payload);
    } catch (err) {
      this.invalid(err, source, envelope.id);
      return;
    }
    const entry: CacheEntry = { reply: undefined };
    this.cache.set(key, entry);
    this.inFlight++;
    const context: UdpRequestContext = {
      address: source.address,
      port: source.port,
      family: source.family,
      id: envelope.id,
      validated,
      signal: this.abort.signal,
    };
    const run = async () => {
      const value = await request;
      this.counts.handled++;
      return this.options.handler(value, context);
    };
    run().then(
      (response) => this.answered(entry, key, source, context, envelope.cookie, response),
      (err: unknown) => this.failed(entry, key, source, context, err),
    );
  };

  /**
   * With cookies on: true when the request carried a valid cookie; false when it may run unvalidated;
   * undefined when it was answered with a cookie instead (or dropped).
   */
  private checkCookie(
    envelope: Envelope,
    check: CookieCheck | undefined,
    source: DatagramSource,
  ): boolean | undefined {
    const cookies = this.cookies;
    if (cookies === undefined) return false;
    if (check !== undefined) {
      if (check === 'valid') {
        // The cookie proves the address only for its own lifetime: so does the validation.
        const issuedAt = cookies.issuedAt(envelope.cookie!) ?? 0;
        this.endpoint.validate(source.address, source.port, issuedAt + cookies.lifetimeMs);
        return true;
      }
      // A forged cookie proves nothing, so it is no strike either (the address may be forged too).
      this.endpoint.drop(
        source,
        'accept',
        check === 'expired' ? 'cookie-expired' : 'cookie-invalid',
        check === 'invalid',
      );
      this.challenge(envelope.id, source);
      return undefined;
    }
    if (!this.requireCookie) return false;
    this.challenge(envelope.id, source);
    return undefined;
  }

  private challenge(id: number, source: DatagramSource): void {
    if (this.abort.signal.aborted) return;
    this.counts.challenges++;
    const cookie = this.cookies!.issue(source.address, source.port);
    this.endpoint.transmit(encodeEnvelope('cookie', id, undefined, cookie), source.address, source.port);
  }

  /** Send a reply; when the amplification cap withholds it, send a cookie instead if `challenge`. */
  private reply(datagram: Buffer, source: DatagramSource, challenge: boolean): void {
    if (this.abort.signal.aborted) return;
    const sent = this.endpoint.transmit(datagram, source.address, source.port);
    if (!sent && challenge && this.cookies) this.challenge(datagram.readUInt32BE(2), source);
  }

  private answered(
    entry: CacheEntry,
    key: string,
    source: DatagramSource,
    context: UdpRequestContext,
    presented: Buffer | undefined,
    response: Res,
  ): void {
    this.inFlight--;
    let datagram: Buffer;
    try {
      const payload = this.codec.encode(response);
      datagram = encodeEnvelope('response', context.id, payload, this.refreshCookie(presented, source));
      if (datagram.length > this.endpoint.maxPayloadBytes) {
        throw new SockError(
          SockErrorCode.FRAME_TOO_LARGE,
          `response of ${datagram.length} bytes (envelope included) exceeds maxPayloadBytes ` +
            `${this.endpoint.maxPayloadBytes}; raise maxPayloadBytes (at most 65507) or answer with less`,
          { reason: 'frame-too-large' },
        );
      }
    } catch (err) {
      this.failed(entry, key, source, context, err, true);
      return;
    }
    entry.reply = datagram;
    this.reply(datagram, source, !context.validated);
  }

  /** A fresh cookie with the response when the one presented is past half its lifetime. */
  private refreshCookie(presented: Buffer | undefined, source: DatagramSource): Buffer | undefined {
    const cookies = this.cookies;
    if (cookies === undefined || presented === undefined) return undefined;
    const issuedAt = cookies.issuedAt(presented);
    if (issuedAt === undefined || isZero(presented)) return undefined;
    const age = this.endpoint.now() - issuedAt;
    return age > cookies.lifetimeMs / 2 ? cookies.issue(source.address, source.port) : undefined;
  }

  private failed(
    entry: CacheEntry,
    key: string,
    source: DatagramSource,
    context: UdpRequestContext,
    err: unknown,
    settled = false,
  ): void {
    if (!settled) this.inFlight--;
    if (
      SockError.isInstance(err) &&
      (err.reason === 'invalid-message' || err.reason === 'validation-failed')
    ) {
      // An async codec (a schema) refused the request.
      this.cache.delete(key);
      this.invalid(err, source, context.id);
      return;
    }
    this.counts.failures++;
    this.endpoint.reportError(
      SockError.isInstance(err) && err.code === SockErrorCode.FRAME_TOO_LARGE
        ? err
        : new SockError(
            SockErrorCode.HANDLER_FAILED,
            `udp handler failed: ${(err as Error)?.message ?? String(err)}`,
            {
              cause: err,
            },
          ),
    );
    const datagram = encodeEnvelope('error', context.id, Buffer.from('handler-failed', 'latin1'));
    entry.reply = datagram;
    this.reply(datagram, source, !context.validated);
  }

  /** A request that did not decode or validate: counted, a strike, and an `error` reply naming the reason. */
  private invalid(err: unknown, source: DatagramSource, id: number): void {
    this.endpoint.dropInvalid(err, source);
    const reason = (SockError.isInstance(err) && err.reason) || 'invalid-message';
    this.reply(encodeEnvelope('error', id, Buffer.from(reason, 'latin1')), source, false);
  }
}
