import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import {
  AlertDescription,
  opensUnder,
  plaintextAlert,
  type RecordKey,
  sealAlert,
  tls12ServerKey,
  tls13Key,
} from './alert-record.js';
import { TlsReason } from './reasons.js';

const CONTENT_CHANGE_CIPHER_SPEC = 20;
const CONTENT_ALERT = 21;
const CONTENT_HANDSHAKE = 22;
const CONTENT_APPLICATION_DATA = 23;
const HANDSHAKE_SERVER_HELLO = 2;
/** A server's TLS 1.3 handshake flight and tickets are a few records; more is not a handshake we know. */
const MAX_KEPT_RECORDS = 64;
const MAX_KEPT_BYTES = 256 * 1024;

/**
 * The stream a server TLSSocket writes through while its handshake runs, so a refusal can be told to the
 * client with the alert that names it (see alert-record.ts for why Node cannot). It passes bytes both
 * ways unchanged and, during the handshake only, reads the records the server writes: the ServerHello
 * random (TLS 1.2 key expansion) and the protected records (their count is the sequence number of the
 * alert). With `keylog` it learns the server's write secret. After `release()` it keeps nothing.
 *
 * Going through a JS stream instead of the TCP handle costs a JS call per chunk each way; the transport
 * uses it only when client certificates are asked for, the only refusals that need it.
 */
export class RefusalAlertStream extends Duplex {
  private watching = true;
  /** Set by `refuse()`: nothing the TLS socket writes after the alert reaches the wire. */
  private sealed = false;
  private pending: Buffer = Buffer.alloc(0);
  private framed = true;
  private serverRandom: Buffer | undefined;
  private sawChangeCipherSpec = false;
  /** TLS 1.2: records the server wrote after its ChangeCipherSpec (all under its write key). */
  private afterChangeCipherSpec = 0;
  /** TLS 1.3: protected records in order (handshake key first, then application key). */
  private protectedRecords: Buffer[] = [];
  private keptBytes = 0;
  private readonly secrets = new Map<string, Buffer>();
  private clientRandom: Buffer | undefined;

  constructor(private readonly raw: Socket) {
    super({ allowHalfOpen: raw.allowHalfOpen });
    raw.on('data', (chunk: Buffer) => {
      // After the alert, what the client still sends is read and dropped until the socket is closed.
      if (this.sealed) return;
      if (!this.push(chunk)) raw.pause();
    });
    raw.on('end', () => this.push(null));
    raw.on('error', (err) => this.destroy(err));
    raw.on('close', () => this.destroy());
  }

  /** Take the secrets of `tlsSocket` from its keylog (the handshake's only, dropped by `release()`). */
  listen(tlsSocket: TLSSocket): void {
    tlsSocket.on('keylog', (line: Buffer) => {
      if (!this.watching) return;
      const [label, clientRandom, secret] = line.toString('latin1').trim().split(' ');
      if (!label || !clientRandom || !secret) return;
      if (label !== 'SERVER_TRAFFIC_SECRET_0' && label !== 'CLIENT_RANDOM') return;
      this.secrets.set(label, Buffer.from(secret, 'hex'));
      this.clientRandom = Buffer.from(clientRandom, 'hex');
    });
  }

  /** The handshake passed: stop reading records and forget the secrets. */
  release(): void {
    this.watching = false;
    this.protectedRecords = [];
    this.pending = Buffer.alloc(0);
    for (const s of this.secrets.values()) s.fill(0);
    this.secrets.clear();
  }

  /**
   * Write the fatal alert `description` under the server's write key and half-close, in place of
   * anything more the TLS socket would write; resolves once the alert is handed to the kernel. Undefined
   * (nothing written) when the suite, the secret or the sequence number is not known for certain: the
   * caller then closes without an alert.
   */
  refuse(tlsSocket: TLSSocket, description: number): Promise<void> | undefined {
    if (!this.watching || this.sealed || this.raw.destroyed || !this.raw.writable) return undefined;
    const record = this.alertRecord(tlsSocket, description);
    this.release();
    if (!record) return undefined;
    this.sealed = true;
    // What the client sends from now on is read and dropped (see the constructor): closing with unread
    // bytes would reset the connection instead of closing it after the alert.
    return new Promise<void>((resolve) => {
      this.raw.end(record, () => resolve());
      this.raw.once('error', () => resolve());
    });
  }

  private alertRecord(tlsSocket: TLSSocket, description: number): Buffer | undefined {
    // A record cut in two on the wire leaves the count unknown.
    if (!this.framed || this.pending.length > 0) return undefined;
    const protocol = tlsSocket.getProtocol();
    // Refused before the server's TLS 1.2 ChangeCipherSpec (the client's flight failed verification
    // while the handshake runs): nothing is protected yet, as an alert OpenSSL sends there would not be.
    if (protocol === 'TLSv1.2' && !this.sawChangeCipherSpec) return plaintextAlert(description);
    const suite = tlsSocket.getCipher()?.name;
    if (!suite) return undefined;
    if (protocol === 'TLSv1.3') {
      const secret = this.secrets.get('SERVER_TRAFFIC_SECRET_0');
      const key = secret && tls13Key(suite, secret);
      if (!key) return undefined;
      const seq = applicationRecords(key, this.protectedRecords);
      return seq === undefined ? undefined : sealAlert(key, seq, description);
    }
    if (protocol === 'TLSv1.2') {
      const master = this.secrets.get('CLIENT_RANDOM');
      if (!master || !this.clientRandom || !this.serverRandom) return undefined;
      const key = tls12ServerKey(suite, master, this.clientRandom, this.serverRandom);
      return key && sealAlert(key, BigInt(this.afterChangeCipherSpec), description);
    }
    return undefined;
  }

  override _read(): void {
    this.raw.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    this._writev([{ chunk }], done);
  }

  /**
   * One write of the TLS socket comes as several buffers (a record can span two): they are read and
   * passed on together, so a refusal never falls between the halves of a record.
   */
  override _writev(chunks: Array<{ chunk: Buffer }>, done: (err?: Error | null) => void): void {
    if (this.sealed) {
      done();
      return;
    }
    if (this.watching) for (const { chunk } of chunks) this.observe(chunk);
    this.raw.cork();
    for (let i = 0; i < chunks.length - 1; i++) this.raw.write((chunks[i] as { chunk: Buffer }).chunk);
    this.raw.write((chunks[chunks.length - 1] as { chunk: Buffer }).chunk, done);
    this.raw.uncork();
  }

  override _final(done: (err?: Error | null) => void): void {
    if (!this.sealed) this.raw.end();
    done();
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    // After an alert the transport closes the TCP socket once the alert is written.
    if (!this.sealed) this.raw.destroy();
    this.release();
    done(err);
  }

  /** Split what the server writes into records and note what the alert needs. */
  private observe(chunk: Buffer): void {
    let data = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    while (data.length >= 5) {
      const length = data.readUInt16BE(3);
      if (data.length < 5 + length) break;
      this.note(data.subarray(0, 5 + length));
      data = data.subarray(5 + length);
    }
    this.pending = Buffer.from(data);
  }

  private note(record: Buffer): void {
    const type = record[0];
    if (this.sawChangeCipherSpec) this.afterChangeCipherSpec++;
    switch (type) {
      case CONTENT_CHANGE_CIPHER_SPEC:
        // TLS 1.2: from here on everything is under the server's write key. (TLS 1.3's compatibility
        // ChangeCipherSpec changes nothing; the count is not used there.)
        this.sawChangeCipherSpec = true;
        this.afterChangeCipherSpec = 0;
        return;
      case CONTENT_HANDSHAKE:
        // The first handshake record starts with the ServerHello: type, 3-byte length, version, random.
        if (this.serverRandom === undefined && record[5] === HANDSHAKE_SERVER_HELLO && record.length >= 43) {
          this.serverRandom = Buffer.from(record.subarray(11, 43));
        }
        return;
      case CONTENT_APPLICATION_DATA:
        this.keptBytes += record.length;
        this.protectedRecords.push(Buffer.from(record));
        if (this.protectedRecords.length > MAX_KEPT_RECORDS || this.keptBytes > MAX_KEPT_BYTES) {
          this.framed = false;
          this.protectedRecords = [];
        }
        return;
      case CONTENT_ALERT:
        return;
      default:
        // Not a TLS stream this reader understands: no alert can be placed in it.
        this.framed = false;
    }
  }
}

/**
 * How many of the server's TLS 1.3 protected records are under its application key: the handshake-key
 * records come first and fail to open under it; from the first that opens (at sequence 0), every later
 * one must open at the next number, or the count is unknown.
 */
function applicationRecords(key: RecordKey, records: readonly Buffer[]): bigint | undefined {
  let seq = 0n;
  let started = false;
  for (const record of records) {
    if (opensUnder(key, seq, record)) {
      started = true;
      seq++;
    } else if (started) {
      return undefined;
    }
  }
  return seq;
}

/**
 * The alert that names a refusal the server decides after the handshake, or undefined (no alert: a
 * timeout, or the peer is gone). TLS 1.2 has no certificate_required: OpenSSL sends handshake_failure
 * there, and so does this.
 */
export function alertForReason(reason: string, protocol: string | null): number | undefined {
  switch (reason) {
    case TlsReason.NO_CLIENT_CERT:
      return protocol === 'TLSv1.3'
        ? AlertDescription.CERTIFICATE_REQUIRED
        : AlertDescription.HANDSHAKE_FAILURE;
    case TlsReason.UNKNOWN_CA:
      return AlertDescription.UNKNOWN_CA;
    case TlsReason.CERT_EXPIRED:
    case TlsReason.CERT_NOT_YET_VALID:
      // RFC 8446 §6.2: "A certificate has expired or is not currently valid."
      return AlertDescription.CERTIFICATE_EXPIRED;
    case TlsReason.CERT_REVOKED:
      return AlertDescription.CERTIFICATE_REVOKED;
    case TlsReason.WRONG_PURPOSE:
      return AlertDescription.UNSUPPORTED_CERTIFICATE;
    case TlsReason.CERT_INVALID:
      return AlertDescription.BAD_CERTIFICATE;
    case TlsReason.UNAUTHORIZED:
      return AlertDescription.ACCESS_DENIED;
    case TlsReason.ALPN_MISMATCH:
      return AlertDescription.NO_APPLICATION_PROTOCOL;
    default:
      return undefined;
  }
}
