import { createHash, constants as cryptoConstants, type X509Certificate } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { createSecureContext, type SecureContext, TLSSocket } from 'node:tls';
import {
  type ConnectionControl,
  parseDuration,
  type ServerTransport,
  SockError,
  SockErrorCode,
} from '@sock/core';
import { EKU_CLIENT_AUTH, identityFromCertificate, type PeerIdentity } from './identity.js';
import {
  checkPair,
  type KeyPair,
  type PemSource,
  parseCertificates,
  readPem,
  readPemSync,
  sourceDirs,
} from './material.js';
import { OcspStapler, type OcspStaplingOptions } from './ocsp.js';
import { type AuthorizationPolicy, type CompiledPolicy, compilePolicy } from './policy.js';
import { type ProfileOptions, protocolOptions } from './profile.js';
import { reasonForHandshakeError, reasonForVerifyCode, TlsReason } from './reasons.js';
import { alertForReason, RefusalAlertStream } from './refusal-alert.js';
import { type SessionTicketOptions, TicketKeys } from './ticket-keys.js';
import { warnOnce } from './warn.js';
import { type Watching, watchDirectories } from './watch.js';

/** Whether the server asks for a client certificate, and whether one is required. */
export type ClientAuth = 'none' | 'optional' | 'require';

/** How certificate files are watched and re-read for hot reload. */
export interface ReloadOptions {
  /** Quiet time after the last file event before reloading. Default 250 ms. */
  debounce?: number | string;
  /** Re-read the files this often as a fallback (content is compared; unchanged files cost no rebuild). Default 60 s; `false` turns polling off. */
  poll?: number | string | false;
}

/** What a reload did. */
export interface ReloadInfo {
  readonly trigger: 'watch' | 'poll' | 'manual';
  /** False when the files held what is already in use (nothing was rebuilt). */
  readonly changed: boolean;
  /** The default certificate now served. */
  readonly certificate: CertificateInfo;
}

/** A served certificate, as reload events and `stats()` report it. */
export interface CertificateInfo {
  readonly subject: string;
  readonly fingerprintSha256: string;
  readonly notAfter: Date;
}

/** Options of `tlsTransport()`: the server's certificate and key, client authentication and authorization, reload. */
export interface TlsTransportOptions extends ProfileOptions {
  /** Certificate chain (leaf first), PEM text or `{ path }`. */
  cert: PemSource;
  /** Private key, PEM text or `{ path }`. */
  key: PemSource;
  passphrase?: string;
  /** Trust anchors for client certificates (one PEM bundle or several). Required for clientAuth. */
  ca?: PemSource | readonly PemSource[];
  /** Default `none`. `optional` asks and verifies what is sent; `require` refuses clients without one. */
  clientAuth?: ClientAuth;
  /**
   * Require the clientAuth extended key usage on client certificates (a server certificate is not a
   * client identity). Default true; false also accepts certificates without the extension.
   */
  requireClientAuthUsage?: boolean;
  /** Who may connect, decided from the verified client certificate. Needs clientAuth. */
  authorize?: AuthorizationPolicy;
  /** More certificates chosen by SNI server name: exact names or `*.example.org` (one label). */
  sni?: Readonly<Record<string, KeyPair>>;
  /**
   * ALPN protocols, most preferred first. A client offering ALPN but none of these is refused with the
   * no_application_protocol alert. A client offering no ALPN at all is accepted unless `alpnRequired`.
   */
  alpn?: readonly string[];
  /**
   * Refuse clients that offer no ALPN (reason `tls-alpn-mismatch`), as gRPC and HTTP/2 servers do.
   * Default false (plain TLS clients such as ncat or `openssl s_client` send none). Needs `alpn`.
   */
  alpnRequired?: boolean;
  /**
   * TLS session tickets (resumption without server state). Default on, keys rotated every 12 h with the
   * previous key still accepted; `{ cluster: true }` shares them across node:cluster workers (with
   * `shareTicketKeys()` in the primary). `false` turns tickets off: every connection does a full
   * handshake.
   */
  sessionTickets?: boolean | SessionTicketOptions;
  /**
   * Staple an OCSP response for the default certificate (clients that ask, `status_request`, get it
   * in the handshake), from a DER file or a fetch function, refreshed before its nextUpdate.
   */
  ocsp?: OcspStaplingOptions;
  /**
   * Tell a refused client why, with the TLS alert that names the refusal: unknown_ca, certificate_expired,
   * bad_certificate, unsupported_certificate, access_denied (policy), no_application_protocol. Default
   * true. Node cannot send a chosen alert, so when client certificates are asked for (or `alpnRequired`)
   * the TLS socket writes through a JS stream that can add one: about a third more CPU per byte echoed
   * was measured on such connections. `false` keeps Node's native path; refused clients are then reset
   * (TCP RST) without an alert (certificate_required for a missing certificate still comes from
   * OpenSSL).
   */
  refusalAlerts?: boolean;
  /** TCP open to TLS done (verification and policy included). Default 10 s. */
  handshakeTimeout?: number | string;
  /** Watch the directories of file sources and reload on change. Default off. */
  reload?: boolean | ReloadOptions;
  /** A reload built and installed a new context (also called when nothing changed on a poll). */
  onReload?: (info: ReloadInfo) => void;
  /** A reload failed; the previous context stays in use. */
  onReloadError?: (error: SockError, trigger: ReloadInfo['trigger']) => void;
  /** Clock for validity checks on load. Default `Date.now`. */
  now?: () => number;
}

/** A core ServerTransport with reload and certificate information. */
export interface TlsServerTransport extends ServerTransport {
  readonly name: 'tls';
  /** Re-read, check and install the certificates now. Rejects (keeping the old context) on failure. */
  reload(options?: { signal?: AbortSignal }): Promise<ReloadInfo>;
  /** The default certificate currently served. */
  readonly certificate: CertificateInfo;
  /** Stop watching files. Open connections are not affected. */
  close(): void;
  /** Make a new session ticket key now; tickets under the previous key still resume until the next. */
  rotateTicketKeys(): void;
  /** Counters since creation and the certificates served now, for metrics. */
  stats(): TlsTransportStats;
}

/** A synchronous snapshot for the metrics adapter: plain numbers, no addresses. */
export interface TlsTransportStats {
  /** Handshakes that completed and passed verification and policy. */
  readonly handshakes: number;
  /** Connections refused or lost during the handshake (any reason). */
  readonly handshakeFailures: number;
  /** Reloads that installed new certificates. */
  readonly reloads: number;
  readonly reloadFailures: number;
  /** TLS 1.2 renegotiation attempts (each refused, its connection closed). */
  readonly renegotiationAttempts: number;
  /** The default certificate and every SNI certificate served now. */
  readonly certificates: readonly { readonly subject: string; readonly notAfter: number }[];
}

const IDENTITY = Symbol('sock.tls.identity');

/** The verified client certificate's identity, or undefined (no certificate, or not a TLS connection). */
export function peerIdentity(conn: Pick<ConnectionControl, 'locals'>): PeerIdentity | undefined {
  return conn.locals.get(IDENTITY) as PeerIdentity | undefined;
}

interface RawMaterial {
  cert: Buffer;
  key: Buffer;
  ca: Buffer[] | undefined;
  sni: Array<{ name: string; cert: Buffer; key: Buffer; passphrase: string | undefined }>;
}

interface ContextState {
  readonly context: SecureContext;
  readonly sni: ReadonlyMap<string, SecureContext>;
  readonly leaf: X509Certificate;
  readonly fingerprint: string;
  readonly certificate: CertificateInfo;
  /** Every certificate served (default first, then SNI), for `stats()`. */
  readonly served: readonly { readonly subject: string; readonly notAfter: number }[];
}

/**
 * Renegotiation is refused by OpenSSL itself (no handshake work is done for an attempt); Node's
 * `disableRenegotiation()` on each socket reports the attempt so it can be counted and struck.
 */
const SECURE_OPTIONS = cryptoConstants.SSL_OP_NO_RENEGOTIATION;

/** How long writing the refusal alert may take before the TCP socket is closed without it. */
const ALERT_LINGER_MS = 2000;

/**
 * TLS for a core server: `createServer({ transport: tlsTransport({ cert, key }), … })`. Every core feature
 * (codecs, pipeline, guards) works unchanged over it. Defaults are Mozilla intermediate; verification of
 * client certificates and the `authorize` policy run in the transport's upgrade, so a refusal is reported
 * through core with its reason (`tls-unknown-ca`, `tls-unauthorized`, …) and counted.
 */
export function tlsTransport(options: TlsTransportOptions): TlsServerTransport {
  return new Transport(options);
}

function fingerprintOf(raw: RawMaterial): string {
  const parts = [raw.cert, raw.key, ...(raw.ca ?? [])];
  for (const s of raw.sni) parts.push(Buffer.from(s.name), s.cert, s.key);
  return parts.map((p) => `${p.length}:${p.toString('base64')}`).join('|');
}

class Transport implements TlsServerTransport {
  readonly name = 'tls' as const;
  private state: ContextState;
  private readonly clientAuth: ClientAuth;
  private readonly handshakeMs: number;
  private readonly policy: CompiledPolicy | undefined;
  private readonly requireUsage: boolean;
  private readonly alpn: string[] | undefined;
  private readonly alpnRequired: boolean;
  private readonly tickets: TicketKeys | undefined;
  private readonly ocsp: OcspStapler | undefined;
  /** Node's OCSP hook lives on tls.Server; this stands in for one (see `ocspHost`). */
  private readonly ocspServer: EventEmitter | undefined;
  private readonly secureOptions: number;
  /** Whether refusals decided after the handshake are told with their alert (see `refusalAlerts`). */
  private readonly alertsAfterHandshake: boolean;
  private counters = {
    handshakes: 0,
    handshakeFailures: 0,
    reloads: 0,
    reloadFailures: 0,
    renegotiationAttempts: 0,
  };
  private readonly protocol: ReturnType<typeof protocolOptions>;
  private readonly now: () => number;
  private readonly watching: Watching | undefined;
  private reloading: Promise<ReloadInfo> | undefined;
  private readonly sniCallback:
    | ((name: string, cb: (err: Error | null, ctx?: SecureContext) => void) => void)
    | undefined;

  constructor(private readonly options: TlsTransportOptions) {
    if (!options || options.cert === undefined || options.key === undefined) {
      throw new SockError(SockErrorCode.INVALID_OPTION, 'tlsTransport: cert and key are required');
    }
    this.clientAuth = options.clientAuth ?? 'none';
    if (!['none', 'optional', 'require'].includes(this.clientAuth)) {
      throw new SockError(
        SockErrorCode.INVALID_OPTION,
        `tlsTransport: clientAuth must be "none", "optional" or "require", got ${JSON.stringify(this.clientAuth)}`,
      );
    }
    if (this.clientAuth !== 'none' && options.ca === undefined) {
      throw new SockError(
        SockErrorCode.INVALID_OPTION,
        'tlsTransport: clientAuth needs `ca`, the trust anchors client certificates must chain to',
      );
    }
    if (options.authorize !== undefined && this.clientAuth === 'none') {
      throw new SockError(
        SockErrorCode.INVALID_OPTION,
        'tlsTransport: authorize decides from client certificates; set clientAuth to "require" (or "optional")',
      );
    }
    this.policy = options.authorize === undefined ? undefined : compilePolicy(options.authorize);
    this.requireUsage = options.requireClientAuthUsage ?? true;
    this.handshakeMs = parseDuration(options.handshakeTimeout ?? 10_000, 'tlsTransport handshakeTimeout');
    if (this.handshakeMs <= 0) {
      throw new SockError(SockErrorCode.INVALID_OPTION, 'tlsTransport: handshakeTimeout must be above 0');
    }
    this.alpn = options.alpn === undefined ? undefined : [...options.alpn];
    if (this.alpn?.some((p) => typeof p !== 'string' || p.length === 0 || Buffer.byteLength(p) > 255)) {
      throw new SockError(
        SockErrorCode.INVALID_OPTION,
        'tlsTransport: ALPN protocols are 1 to 255 byte strings',
      );
    }
    this.alpnRequired = options.alpnRequired === true;
    if (this.alpnRequired && !this.alpn) {
      throw new SockError(
        SockErrorCode.INVALID_OPTION,
        'tlsTransport: alpnRequired needs alpn, the protocols a client must offer',
      );
    }
    this.protocol = protocolOptions(options);
    this.alertsAfterHandshake =
      options.refusalAlerts !== false && (this.clientAuth !== 'none' || this.alpnRequired);
    const tickets = options.sessionTickets ?? true;
    this.tickets = tickets === false ? undefined : new TicketKeys(tickets === true ? {} : tickets);
    this.secureOptions = SECURE_OPTIONS | (this.tickets ? 0 : cryptoConstants.SSL_OP_NO_TICKET);
    this.now = options.now ?? Date.now;
    this.state = this.build(this.readSync());
    if (options.ocsp) {
      this.ocsp = new OcspStapler(options.ocsp, this.now);
      this.ocsp.start();
      this.ocspServer = this.ocspHost(this.ocsp);
    }
    this.sniCallback = options.sni
      ? (name, cb) => {
          cb(null, this.lookup(name));
        }
      : undefined;

    const reload = options.reload;
    if (reload) {
      const r = reload === true ? {} : reload;
      const dirs = sourceDirs(this.sources());
      if (dirs.length === 0) {
        throw new SockError(
          SockErrorCode.INVALID_OPTION,
          'tlsTransport: reload watches files, but cert, key and ca are all PEM text; give them as { path }',
        );
      }
      this.watching = watchDirectories({
        dirs,
        debounceMs: parseDuration(r.debounce ?? 250, 'reload.debounce'),
        pollMs: r.poll === false ? 0 : parseDuration(r.poll ?? 60_000, 'reload.poll'),
        onTrigger: (trigger) => {
          this.reloadFrom(trigger).catch(() => {
            // reported through onReloadError by reloadFrom
          });
        },
        onWatchError: (dir, err) =>
          this.options.onReloadError?.(
            new SockError(SockErrorCode.SOCKET_ERROR, `cannot watch ${dir}: ${err.message}; polling only`, {
              cause: err,
              reason: 'tls-watch-failed',
            }),
            'watch',
          ),
      });
    }
  }

  get certificate(): CertificateInfo {
    return this.state.certificate;
  }

  close(): void {
    this.watching?.close();
    this.tickets?.close();
    this.ocsp?.close();
  }

  /**
   * A hand-built server TLSSocket asks `options.server` for OCSP responses ('OCSPRequest', as
   * tls.Server does) and reads the default context from its `_sharedCreds`. Only the default
   * certificate's response is stapled; SNI certificates get none.
   */
  private ocspHost(stapler: OcspStapler): EventEmitter {
    const host = new EventEmitter() as EventEmitter & { _contexts: unknown[] };
    host._contexts = [];
    Object.defineProperty(host, '_sharedCreds', { get: () => this.state.context });
    host.on(
      'OCSPRequest',
      (certificate: Buffer, _issuer: Buffer, done: (err: Error | null, response?: Buffer) => void) => {
        const ours = certificate?.equals(this.state.leaf.raw) === true;
        done(null, ours ? stapler.current() : undefined);
      },
    );
    return host;
  }

  rotateTicketKeys(): void {
    this.tickets?.rotate();
  }

  stats(): TlsTransportStats {
    return { ...this.counters, certificates: this.state.served };
  }

  reload(options: { signal?: AbortSignal } = {}): Promise<ReloadInfo> {
    if (options.signal?.aborted) {
      return Promise.reject(
        new SockError(SockErrorCode.ABORTED, 'reload aborted', { cause: options.signal.reason }),
      );
    }
    return this.reloadFrom('manual');
  }

  private sources(): PemSource[] {
    const o = this.options;
    const list: PemSource[] = [o.cert, o.key, ...this.caSources()];
    for (const pair of Object.values(o.sni ?? {})) list.push(pair.cert, pair.key);
    return list;
  }

  private caSources(): PemSource[] {
    const ca = this.options.ca;
    if (ca === undefined) return [];
    return Array.isArray(ca) ? [...(ca as PemSource[])] : [ca as PemSource];
  }

  private readSync(): RawMaterial {
    const o = this.options;
    return {
      cert: readPemSync(o.cert, 'cert'),
      key: readPemSync(o.key, 'key'),
      ca: o.ca === undefined ? undefined : this.caSources().map((s, i) => readPemSync(s, `ca[${i}]`)),
      sni: Object.entries(o.sni ?? {}).map(([name, pair]) => ({
        name: name.toLowerCase(),
        cert: readPemSync(pair.cert, `sni ${name} cert`),
        key: readPemSync(pair.key, `sni ${name} key`),
        passphrase: pair.passphrase,
      })),
    };
  }

  private async read(): Promise<RawMaterial> {
    const o = this.options;
    const [cert, key, ca, sni] = await Promise.all([
      readPem(o.cert, 'cert'),
      readPem(o.key, 'key'),
      o.ca === undefined ? undefined : Promise.all(this.caSources().map((s, i) => readPem(s, `ca[${i}]`))),
      Promise.all(
        Object.entries(o.sni ?? {}).map(async ([name, pair]) => ({
          name: name.toLowerCase(),
          cert: await readPem(pair.cert, `sni ${name} cert`),
          key: await readPem(pair.key, `sni ${name} key`),
          passphrase: pair.passphrase,
        })),
      ),
    ]);
    return { cert, key, ca, sni };
  }

  /** Check everything, then build every context from the full option set (never a partial update). */
  private build(raw: RawMaterial): ContextState {
    const now = this.now();
    const main = checkPair(raw.cert, raw.key, this.options.passphrase, 'tls', now);
    for (const [i, bundle] of (raw.ca ?? []).entries()) parseCertificates(bundle, `ca[${i}]`);
    const base = {
      ...this.protocol,
      ca: raw.ca,
      sessionIdContext: this.sessionContext(raw.ca),
      secureOptions: this.secureOptions,
    };
    const make = (cert: Buffer, key: Buffer, passphrase: string | undefined, what: string) => {
      try {
        const context = createSecureContext({ ...base, cert, key, passphrase });
        this.tickets?.attach(context);
        return context;
      } catch (err) {
        throw new SockError(
          SockErrorCode.INVALID_OPTION,
          `${what}: cannot build a TLS context: ${(err as Error).message}`,
          { cause: err, reason: 'tls-context-invalid' },
        );
      }
    };
    const context = make(raw.cert, raw.key, this.options.passphrase, 'tls');
    const sni = new Map<string, SecureContext>();
    warnIfEd25519(main.leaf, 'tls cert');
    const served = [servedEntry(main.leaf)];
    for (const s of raw.sni) {
      const pair = checkPair(s.cert, s.key, s.passphrase, `sni ${s.name}`, now);
      sni.set(s.name, make(s.cert, s.key, s.passphrase, `sni ${s.name}`));
      warnIfEd25519(pair.leaf, `sni ${s.name} cert`);
      served.push(servedEntry(pair.leaf));
    }
    return {
      context,
      sni,
      leaf: main.leaf,
      fingerprint: fingerprintOf(raw),
      served,
      certificate: {
        subject: main.leaf.subject.replace(/\n/g, ', '),
        fingerprintSha256: main.leaf.fingerprint256,
        notAfter: new Date(Date.parse(main.leaf.validTo)),
      },
    };
  }

  /**
   * Sessions resume only into a context with the same client verification (OpenSSL's session ID
   * context): derived from it, not random, so every node:cluster worker configured alike accepts the
   * others' tickets, and a certificate reload keeps them.
   */
  private sessionContext(ca: Buffer[] | undefined): string {
    const h = createHash('sha256').update(`sock-tls|${this.clientAuth}|${this.requireUsage}`);
    for (const bundle of ca ?? []) h.update('|').update(bundle);
    return h.digest('hex').slice(0, 32);
  }

  private reloadFrom(trigger: ReloadInfo['trigger']): Promise<ReloadInfo> {
    // One reload at a time; a trigger during one waits for it and runs again (files may have moved on).
    const run = async (): Promise<ReloadInfo> => {
      try {
        const raw = await this.read();
        if (fingerprintOf(raw) === this.state.fingerprint) {
          const info: ReloadInfo = { trigger, changed: false, certificate: this.state.certificate };
          if (trigger === 'manual') this.options.onReload?.(info);
          return info;
        }
        this.state = this.build(raw);
        this.counters.reloads++;
        const info: ReloadInfo = { trigger, changed: true, certificate: this.state.certificate };
        this.options.onReload?.(info);
        return info;
      } catch (err) {
        this.counters.reloadFailures++;
        const error = SockError.isInstance(err)
          ? err
          : new SockError(
              SockErrorCode.INVALID_OPTION,
              `reload failed: ${(err as Error)?.message ?? String(err)}`,
              {
                cause: err,
                reason: 'tls-reload-failed',
              },
            );
        this.options.onReloadError?.(error, trigger);
        throw error;
      }
    };
    const previous = this.reloading ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(run);
    this.reloading = next;
    void next
      .finally(() => {
        if (this.reloading === next) this.reloading = undefined;
      })
      .catch(() => undefined);
    return next;
  }

  private lookup(servername: string): SecureContext {
    const state = this.state;
    const name = servername.toLowerCase();
    const exact = state.sni.get(name);
    if (exact) return exact;
    const dot = name.indexOf('.');
    if (dot > 0) {
      const wild = state.sni.get(`*${name.slice(dot)}`);
      if (wild) return wild;
    }
    return state.context;
  }

  upgrade(socket: Socket, conn: ConnectionControl): Promise<Socket> {
    // Bytes a preface plug-in (PROXY protocol) unshifted back sit in the socket's readable buffer; the
    // TLSSocket feeds them to OpenSSL before reading from the handle it takes over (tested with a fake
    // preface plug-in in test/server.int.test.ts), so no copying stream is needed here.
    // Refusals decided after the handshake (certificates, policy, ALPN) are told to the client with their
    // alert, written through this stream (see refusal-alert.ts); other servers keep the native path.
    const tap = this.alertsAfterHandshake ? new RefusalAlertStream(socket) : undefined;
    const tlsSocket = new TLSSocket(tap ?? socket, {
      isServer: true,
      secureContext: this.state.context,
      requestCert: this.clientAuth !== 'none',
      // Chains and policy are verified below, so a refusal carries its reason. With a certificate
      // required, OpenSSL itself refuses a client that sends none, with the alert that says so
      // (certificate_required on TLS 1.3, handshake_failure on TLS 1.2): Node's verify callback accepts
      // every chain, so this flag changes nothing else.
      rejectUnauthorized: this.clientAuth === 'require' || this.policy !== undefined,
      ...(this.alpn ? { ALPNProtocols: this.alpn } : {}),
      ...(this.sniCallback ? { SNICallback: this.sniCallback } : {}),
      ...(this.ocspServer ? { server: this.ocspServer as never } : {}),
    });
    // Core attaches its own listeners once upgraded; this one covers the gap and late errors.
    tlsSocket.on('error', noop);
    tap?.listen(tlsSocket);
    return new Promise<Socket>((resolve, reject) => {
      let settled = false;
      /** The handshake itself finished: a refusal from here on is ours to tell. */
      let secured = false;
      const cleanup = () => {
        settled = true;
        clearTimeout(timer);
        tlsSocket.off('secure', onSecure);
        tlsSocket.off('error', onError);
        tlsSocket.off('close', onClose);
      };
      /** `tell`: the refusal is ours (after the handshake, or a failed verification) and has an alert. */
      const fail = (reason: string, message: string, cause?: unknown, tell = secured) => {
        if (settled) return;
        cleanup();
        this.counters.handshakeFailures++;
        const error = new SockError(SockErrorCode.REJECTED, `tls: ${message}`, { reason, cause });
        // After the handshake (the 'secure' checks) the client is told why, when the alert can be made.
        const alert = tell ? alertForReason(reason, tlsSocket.getProtocol()) : undefined;
        const flushed = alert === undefined ? undefined : tap?.refuse(tlsSocket, alert);
        const reset = tell && !flushed;
        if (reset) {
          // A refusal with no alert after the client's handshake finished (none could be made, or none
          // names it: a policy that did not answer in time): a plain close would look like a server that
          // accepted and closed (Node's clients cannot see the missing close_notify). A reset says the
          // connection failed.
          socket.resetAndDestroy();
        }
        // On Node's native path the TLS socket runs on the TCP handle just reset and closes with it
        // (destroying it after the reset crashed the process); through the alert stream it has its own.
        if (!reset || tap) tlsSocket.destroy();
        const close = () => {
          socket.destroy();
          reject(error);
        };
        if (!flushed) return close();
        // The alert is handed to the kernel before the TCP socket is closed (a close can otherwise drop
        // it); a client that does not read it gets the plain close after a short wait.
        const linger = setTimeout(close, Math.min(ALERT_LINGER_MS, this.handshakeMs));
        linger.unref?.();
        void flushed.then(() => {
          clearTimeout(linger);
          close();
        });
      };
      const onError = (err: Error) => {
        // A chain that failed verification can leave an entry in OpenSSL's error queue, which Node
        // then reports as a TLS error (right after 'secure' for a certificate with a broken signature, or
        // while the handshake runs): the failure is the verification, with its reason and alert.
        const refusal = verifyRefusal(tlsSocket);
        if (refusal) return fail(refusal.reason, refusal.message, err, true);
        fail(reasonForHandshakeError(err), `handshake failed: ${err.message}`, err);
      };
      const onClose = () => fail(TlsReason.PEER_CLOSED, 'the connection closed during the handshake');
      const succeed = () => {
        cleanup();
        tap?.release();
        this.counters.handshakes++;
        this.watchAfterHandshake(tlsSocket, conn);
        resolve(tlsSocket);
      };
      const onSecure = () => {
        secured = true;
        if (this.alpnRequired && !tlsSocket.alpnProtocol) {
          return fail(
            TlsReason.ALPN_MISMATCH,
            `the client offered no ALPN protocol; alpnRequired expects one of ${this.alpn?.join(', ')}`,
          );
        }
        if (this.clientAuth === 'none') return succeed();
        this.verify(tlsSocket, conn).then(
          (refusal) => {
            if (settled) return;
            if (refusal) return fail(refusal.reason, refusal.message);
            succeed();
          },
          (err) =>
            // A certificate that does not parse keeps its reason; a throwing policy refuses.
            SockError.isInstance(err) && err.reason === TlsReason.CERT_INVALID
              ? fail(err.reason, err.message, err)
              : fail(
                  TlsReason.UNAUTHORIZED,
                  `authorize failed: ${(err as Error)?.message ?? String(err)}`,
                  err,
                ),
        );
      };
      const timer = setTimeout(
        () => fail(TlsReason.HANDSHAKE_TIMEOUT, `handshake not finished within ${this.handshakeMs} ms`),
        this.handshakeMs,
      );
      timer.unref?.();
      tlsSocket.once('secure', onSecure);
      tlsSocket.once('error', onError);
      // Core closing the connection destroys the TCP socket under it, which closes this one too.
      tlsSocket.once('close', onClose);
    });
  }

  /**
   * After the handshake a hand-built TLSSocket reports TLS errors (a renegotiation attempt, a forged
   * record, a fatal alert) only through its internal `_tlsError` event, and nothing closes it: the
   * connection would stay open, holding its slot. Close it here through core, so the reason is
   * counted, logged and seen by plug-ins (guards strike `tls-renegotiation`).
   */
  private watchAfterHandshake(tlsSocket: TLSSocket, conn: ConnectionControl): void {
    tlsSocket.disableRenegotiation();
    tlsSocket.on('_tlsError', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ERR_TLS_RENEGOTIATION_DISABLED') {
        this.counters.renegotiationAttempts++;
        conn.reject(
          {
            reason: TlsReason.RENEGOTIATION,
            message: 'the client tried to renegotiate TLS; renegotiation is refused',
          },
          'frame',
          'tls',
        );
        return;
      }
      conn.reject({ reason: TlsReason.TLS_ERROR, message: err.message.trim() }, 'frame', 'tls');
    });
  }

  /** Verify the client certificate and apply the policy; undefined when the connection may proceed. */
  private async verify(
    tlsSocket: TLSSocket,
    conn: ConnectionControl,
  ): Promise<{ reason: string; message: string } | undefined> {
    const peer = tlsSocket.getPeerX509Certificate();
    if (!peer) {
      if (this.clientAuth === 'require' || this.policy) {
        return { reason: TlsReason.NO_CLIENT_CERT, message: 'the client sent no certificate' };
      }
      return undefined;
    }
    const refusal = verifyRefusal(tlsSocket);
    if (refusal) return refusal;
    const identity = identityFromCertificate(peer.raw);
    const usages = identity.extendedKeyUsages;
    if (
      (this.requireUsage && !usages.includes(EKU_CLIENT_AUTH)) ||
      (usages.length > 0 && !usages.includes(EKU_CLIENT_AUTH) && !usages.includes(ANY_EKU))
    ) {
      return {
        reason: TlsReason.WRONG_PURPOSE,
        message: `the client certificate (${identity.subject}) is not for client authentication (no clientAuth extended key usage)`,
      };
    }
    conn.locals.set(IDENTITY, identity);
    if (this.policy) {
      let allowed = this.policy(identity, conn);
      if (allowed instanceof Promise) allowed = await allowed;
      if (allowed !== true) {
        return {
          reason: TlsReason.UNAUTHORIZED,
          message: `${identity.spiffeId ?? identity.subject} is not allowed by the authorize policy`,
        };
      }
    }
    return undefined;
  }
}

const ANY_EKU = '2.5.29.37.0';

/**
 * Browsers (and most of testssl's client simulations: 31 of 35) cannot use an Ed25519 server
 * certificate; it is valid TLS 1.3, so warn rather than refuse.
 */
function warnIfEd25519(leaf: X509Certificate, what: string): void {
  if (leaf.publicKey.asymmetricKeyType !== 'ed25519') return;
  warnOnce(
    'ed25519-server-cert',
    `${what}: an Ed25519 server certificate; browsers and most TLS clients cannot connect (they offer no Ed25519 signature); serve ECDSA P-256 (add it as the default and keep Ed25519 for clients that ask, or drop it)`,
  );
}

function servedEntry(leaf: X509Certificate): { subject: string; notAfter: number } {
  return { subject: leaf.subject.replace(/\n/g, ', '), notAfter: Date.parse(leaf.validTo) };
}

function noop(): void {}

/** The refusal OpenSSL's verdict on the client's chain makes, or undefined when it verified. */
function verifyRefusal(tlsSocket: TLSSocket): { reason: string; message: string } | undefined {
  if (!tlsSocket.getPeerX509Certificate()) return undefined;
  const verifyError = verifyResult(tlsSocket);
  if (!verifyError) return undefined;
  return {
    reason: reasonForVerifyCode(verifyError.code),
    message: `client certificate refused: ${verifyError.code ?? ''} ${verifyError.message}`.trim(),
  };
}

/**
 * OpenSSL's verdict on the peer chain. Node computes it in tls.Server only (`authorized`); for a
 * TLSSocket we create ourselves the same call is made here. Fails closed if it is ever unavailable.
 */
function verifyResult(tlsSocket: TLSSocket): (Error & { code?: string }) | null {
  const handle = (
    tlsSocket as unknown as { _handle?: { verifyError?: () => (Error & { code?: string }) | null } }
  )._handle;
  if (typeof handle?.verifyError !== 'function') {
    const err: Error & { code?: string } = new Error('certificate verification result unavailable');
    err.code = 'VERIFY_UNAVAILABLE';
    return err;
  }
  return handle.verifyError();
}
