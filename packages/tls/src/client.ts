import { X509Certificate } from 'node:crypto';
import { isIP, type Socket } from 'node:net';
import { checkServerIdentity, type PeerCertificate, type TLSSocket, connect as tlsConnect } from 'node:tls';
import { type ClientTransport, type DialOptions, SockError, SockErrorCode } from '@sock/core';
import { identityFromCertificate, normalizePin, spkiSha256 } from './identity.js';
import { type PemSource, readPemSync } from './material.js';
import { type ProfileOptions, protocolOptions } from './profile.js';
import {
  describePeerAlert,
  isPeerAlert,
  isVerifyCode,
  reasonForHandshakeError,
  reasonForVerifyCode,
} from './reasons.js';
import { checkTrustDomain, parseSpiffeId } from './spiffe.js';
import { warnOnce } from './warn.js';

/** Options of `tlsClient()`: what the client trusts, presents and checks. */
export interface TlsClientOptions extends ProfileOptions {
  /** Trust anchors for the server's certificate. Default: Node's bundled public roots. */
  ca?: PemSource | readonly PemSource[];
  /** Client certificate for mutual TLS, PEM text or `{ path }`. */
  cert?: PemSource;
  key?: PemSource;
  passphrase?: string;
  /**
   * The name the server's certificate must hold, also sent as SNI. Default: the host dialed. SNI is never
   * sent for IP literals (RFC 6066); the certificate must then hold the IP as an IP SAN.
   */
  servername?: string;
  /**
   * SPKI pins: SHA-256 of the server's SubjectPublicKeyInfo, base64 (`sha256/` prefix allowed). Checked in
   * addition to chain verification; the connection fails when the server's key matches none.
   */
  pins?: readonly string[];
  /**
   * Expect an X509-SVID with this SPIFFE ID. SPIFFE authenticates by ID, so the host name check is
   * replaced by this check (Node's own ignores URI SANs).
   */
  serverSpiffeId?: string;
  /** Expect an X509-SVID from this trust domain (any path). */
  serverTrustDomain?: string;
  /** ALPN protocols to offer, most preferred first. */
  alpn?: readonly string[];
  /** Resume TLS sessions (tickets) with servers this transport dialed before. Default true. */
  resumeSessions?: boolean;
  /**
   * Skip certificate verification entirely: anyone on the path can read and change the traffic. Pins and
   * SPIFFE checks still apply. Warns once per process.
   */
  insecureSkipVerify?: boolean;
}

/** A core ClientTransport dialing TLS; a refused server is an ERR_SOCK_REJECTED with a `reason`. */
export interface TlsClientTransport extends ClientTransport {
  readonly name: 'tls';
}

const MAX_SESSIONS = 256;

/**
 * TLS for core's `connect()`: `connect({ port, transport: tlsClient({ ca }) })`. Verification is always on
 * (even under NODE_TLS_REJECT_UNAUTHORIZED=0, which is warned about); Mozilla intermediate defaults.
 */
export function tlsClient(options: TlsClientOptions = {}): TlsClientTransport {
  const protocol = protocolOptions(options);
  const ca =
    options.ca === undefined
      ? undefined
      : (Array.isArray(options.ca) ? (options.ca as PemSource[]) : [options.ca as PemSource]).map((s, i) =>
          readPemSync(s, `ca[${i}]`),
        );
  if ((options.cert === undefined) !== (options.key === undefined)) {
    throw new SockError(
      SockErrorCode.INVALID_OPTION,
      'tlsClient: cert and key go together; give both or neither',
    );
  }
  const cert = options.cert === undefined ? undefined : readPemSync(options.cert, 'cert');
  const key = options.key === undefined ? undefined : readPemSync(options.key, 'key');
  const pins = options.pins?.map(normalizePin);
  if (pins && pins.length === 0) {
    throw new SockError(
      SockErrorCode.INVALID_OPTION,
      'tlsClient: an empty pins list would refuse every server',
    );
  }
  const spiffeId =
    options.serverSpiffeId === undefined ? undefined : parseSpiffeId(options.serverSpiffeId).id;
  const trustDomain =
    options.serverTrustDomain === undefined ? undefined : checkTrustDomain(options.serverTrustDomain);
  const expectsSvid = spiffeId !== undefined || trustDomain !== undefined;
  const insecure = options.insecureSkipVerify === true;
  if (insecure) {
    warnOnce(
      'insecure-skip-verify',
      'tlsClient insecureSkipVerify: server certificates are NOT verified; any machine on the path can impersonate the server',
    );
  }
  if (process.env.NODE_TLS_REJECT_UNAUTHORIZED === '0') {
    warnOnce(
      'reject-unauthorized-env',
      'NODE_TLS_REJECT_UNAUTHORIZED=0 disables TLS verification for the whole process; @sock/tls clients keep verifying regardless',
    );
  }
  const sessions = new Map<string, Buffer>();
  const resume = options.resumeSessions ?? true;

  const checkPeer = (tlsSocket: TLSSocket): SockError | undefined => {
    if (!pins && !expectsSvid) return undefined;
    const peer = tlsSocket.getPeerX509Certificate();
    if (!peer) return refused('tls-server-identity', 'the server sent no certificate');
    if (pins && !pins.includes(spkiSha256(peer))) {
      return refused('tls-pin-mismatch', `the server's key (sha256/${spkiSha256(peer)}) matches no pin`);
    }
    if (expectsSvid) {
      const id = identityFromCertificate(peer.raw);
      if (id.spiffeId === undefined) {
        return refused(
          'tls-server-identity',
          `the server's certificate is not an X509-SVID (exactly one spiffe:// URI SAN, not a CA); URIs: ${id.uris.join(', ') || 'none'}`,
        );
      }
      if (spiffeId !== undefined && id.spiffeId !== spiffeId) {
        return refused('tls-server-identity', `the server is ${id.spiffeId}, expected ${spiffeId}`);
      }
      if (trustDomain !== undefined && id.trustDomain !== trustDomain) {
        return refused(
          'tls-server-identity',
          `the server is in trust domain ${id.trustDomain}, expected ${trustDomain}`,
        );
      }
    }
    return undefined;
  };

  return {
    name: 'tls',
    dial(dial: DialOptions): Promise<Socket> {
      const servername = options.servername ?? dial.host;
      const sni = isIP(servername) === 0 ? servername : undefined;
      const sessionKey = `${dial.host}|${dial.port}|${servername}`;
      return new Promise<Socket>((resolve, reject) => {
        const socket = tlsConnect({
          host: dial.host,
          port: dial.port,
          // Passed through to the TCP connect (not in tls.ConnectionOptions' type).
          ...({ localAddress: dial.localAddress } as object),
          ...protocol,
          ca,
          cert,
          key,
          passphrase: options.passphrase,
          ...(sni === undefined ? {} : { servername: sni }),
          rejectUnauthorized: !insecure,
          checkServerIdentity: (_host: string, peer: PeerCertificate) =>
            expectsSvid ? undefined : checkServerIdentity(servername, peer),
          ...(options.alpn ? { ALPNProtocols: [...options.alpn] } : {}),
          ...(resume && sessions.has(sessionKey) ? { session: sessions.get(sessionKey) } : {}),
        });
        socket.setNoDelay(true);
        if (resume) {
          socket.on('session', (session: Buffer) => {
            sessions.delete(sessionKey);
            sessions.set(sessionKey, session);
            if (sessions.size > MAX_SESSIONS) sessions.delete(sessions.keys().next().value as string);
          });
        }
        let settled = false;
        const finish = (err?: unknown) => {
          if (settled) return;
          settled = true;
          dial.signal.removeEventListener('abort', onAbort);
          socket.off('error', onError);
          socket.off('close', onClose);
          if (err !== undefined) {
            socket.destroy();
            reject(err);
          } else {
            // Keep a listener until the connection attaches its own: an 'error' with none would throw.
            socket.on('error', () => {});
            typeRefusals(socket);
            resolve(socket);
          }
        };
        const onAbort = () => finish(dial.signal.reason ?? new Error('aborted'));
        const onError = (err: NodeJS.ErrnoException) => {
          // Network failures stay as they are: core maps them (refused, reset) and may retry.
          if (err.syscall !== undefined) return finish(err);
          if (err.code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
            return finish(refused('tls-hostname-mismatch', err.message, err));
          }
          if (isVerifyCode(err.code)) {
            return finish(
              refused(reasonForVerifyCode(err.code), `server certificate refused: ${err.message}`, err),
            );
          }
          if (isPeerAlert(err)) {
            return finish(
              refused(
                reasonForHandshakeError(err),
                `the server refused the handshake with ${describePeerAlert(err)}`,
                err,
              ),
            );
          }
          finish(refused(reasonForHandshakeError(err), `handshake failed: ${err.message}`, err));
        };
        const onClose = () =>
          finish(refused('tls-peer-closed', 'the server closed the connection during the handshake'));
        socket.once('error', onError);
        socket.once('close', onClose);
        socket.once('secureConnect', () => {
          const problem = checkPeer(socket);
          finish(problem);
        });
        dial.signal.addEventListener('abort', onAbort, { once: true });
      });
    },
  };
}

/**
 * Under TLS 1.3 the client finishes its handshake before the server has seen the client certificate, so a
 * refusal (certificate_required, unknown_ca, …) arrives as an alert after dial. Turn it into the same
 * typed ERR_SOCK_REJECTED with a reason a dial-time refusal has, so the connection closes with it.
 */
function typeRefusals(socket: TLSSocket): void {
  const emit = socket.emit as (this: TLSSocket, e: string | symbol, ...a: unknown[]) => boolean;
  socket.emit = function (this: TLSSocket, event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'error' && isPeerAlert(args[0])) {
      const err = args[0] as Error;
      // Node only emits a post-handshake alert on a client socket; destroy it, so the connection closes
      // with the refusal instead of waiting for a close that may never come.
      socket.destroy(
        refused(
          reasonForHandshakeError(err),
          `the server refused the connection with ${describePeerAlert(err)}`,
          err,
        ),
      );
      return true;
    }
    return emit.call(this, event, ...args);
  } as TLSSocket['emit'];
}

function refused(reason: string, message: string, cause?: unknown): SockError {
  return new SockError(SockErrorCode.REJECTED, `tls: ${message}`, { reason, cause });
}

/** The SPKI pin (base64 SHA-256 of the SubjectPublicKeyInfo) of a PEM certificate, for `pins` and `authorize`. */
export function spkiPin(certificate: string | Buffer): string {
  return spkiSha256(new X509Certificate(certificate));
}
