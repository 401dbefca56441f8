import { type CipherGCM, createCipheriv, createDecipheriv, createHmac, type DecipherGCM } from 'node:crypto';

/**
 * Hand-written TLS record protection, for one purpose only: sending the fatal alert that says why a
 * client is refused. Node cannot send a chosen alert: its verify callback accepts every chain
 * (`VerifyCallback` in node/src/crypto/crypto_tls.cc returns 1, "the user [must] use
 * Connection::VerifyError after the 'secure' callback"), so OpenSSL never sends unknown_ca or
 * certificate_expired itself, and no API writes an alert. The transport verifies after the handshake and
 * writes this one record, under the server's write key, at the sequence number the client expects.
 *
 * Only the suites the profiles allow are supported (AES-128/256-GCM and ChaCha20-Poly1305, TLS 1.2 and
 * 1.3); anything else returns undefined and the caller closes without an alert, as before.
 */

/** Alert descriptions (RFC 8446 §6, RFC 5246 §7.2) the server sends when it refuses a client. */
export const AlertDescription = {
  HANDSHAKE_FAILURE: 40,
  BAD_CERTIFICATE: 42,
  UNSUPPORTED_CERTIFICATE: 43,
  CERTIFICATE_REVOKED: 44,
  CERTIFICATE_EXPIRED: 45,
  UNKNOWN_CA: 48,
  ACCESS_DENIED: 49,
  CERTIFICATE_REQUIRED: 116,
  NO_APPLICATION_PROTOCOL: 120,
} as const;

const CONTENT_ALERT = 21;
const CONTENT_APPLICATION_DATA = 23;
const ALERT_FATAL = 2;
const TAG_BYTES = 16;

interface Suite {
  readonly cipher: 'aes-128-gcm' | 'aes-256-gcm' | 'chacha20-poly1305';
  readonly keyBytes: number;
  /** Hash of the TLS 1.3 key schedule and of the TLS 1.2 PRF. */
  readonly hash: 'sha256' | 'sha384';
}

/** By OpenSSL's names, as `TLSSocket.getCipher().name` gives them. */
const SUITES: Readonly<Record<string, Suite>> = {
  TLS_AES_128_GCM_SHA256: { cipher: 'aes-128-gcm', keyBytes: 16, hash: 'sha256' },
  TLS_AES_256_GCM_SHA384: { cipher: 'aes-256-gcm', keyBytes: 32, hash: 'sha384' },
  TLS_CHACHA20_POLY1305_SHA256: { cipher: 'chacha20-poly1305', keyBytes: 32, hash: 'sha256' },
  'ECDHE-ECDSA-AES128-GCM-SHA256': { cipher: 'aes-128-gcm', keyBytes: 16, hash: 'sha256' },
  'ECDHE-RSA-AES128-GCM-SHA256': { cipher: 'aes-128-gcm', keyBytes: 16, hash: 'sha256' },
  'ECDHE-ECDSA-AES256-GCM-SHA384': { cipher: 'aes-256-gcm', keyBytes: 32, hash: 'sha384' },
  'ECDHE-RSA-AES256-GCM-SHA384': { cipher: 'aes-256-gcm', keyBytes: 32, hash: 'sha384' },
  'ECDHE-ECDSA-CHACHA20-POLY1305': { cipher: 'chacha20-poly1305', keyBytes: 32, hash: 'sha256' },
  'ECDHE-RSA-CHACHA20-POLY1305': { cipher: 'chacha20-poly1305', keyBytes: 32, hash: 'sha256' },
};

/** One direction's record protection: AEAD key and IV (TLS 1.2 GCM: the 4-byte implicit salt). */
export interface RecordKey {
  readonly version: 'TLSv1.2' | 'TLSv1.3';
  readonly suite: Suite;
  readonly key: Buffer;
  readonly iv: Buffer;
}

/** HKDF-Expand-Label (RFC 8446 §7.1). */
export function hkdfExpandLabel(
  hash: 'sha256' | 'sha384',
  secret: Buffer,
  label: string,
  context: Buffer,
  length: number,
): Buffer {
  const full = Buffer.from(`tls13 ${label}`, 'latin1');
  const info = Buffer.concat([
    Buffer.from([length >> 8, length & 0xff, full.length]),
    full,
    Buffer.from([context.length]),
    context,
  ]);
  // HKDF-Expand alone (RFC 5869 §2.3): crypto.hkdf always extracts first, and a traffic secret is
  // already a pseudorandom key.
  return hkdfExpand(hash, secret, info, length);
}

function hkdfExpand(hash: 'sha256' | 'sha384', prk: Buffer, info: Buffer, length: number): Buffer {
  const out: Buffer[] = [];
  let previous = Buffer.alloc(0);
  let total = 0;
  for (let i = 1; total < length; i++) {
    previous = createHmac(hash, prk)
      .update(Buffer.concat([previous, info, Buffer.from([i])]))
      .digest();
    out.push(previous);
    total += previous.length;
  }
  return Buffer.concat(out).subarray(0, length);
}

/** TLS 1.3 traffic key and IV from a traffic secret (RFC 8446 §7.3), or undefined for another suite. */
export function tls13Key(suiteName: string, trafficSecret: Buffer): RecordKey | undefined {
  const suite = SUITES[suiteName];
  if (!suite || !suiteName.startsWith('TLS_')) return undefined;
  return {
    version: 'TLSv1.3',
    suite,
    key: hkdfExpandLabel(suite.hash, trafficSecret, 'key', Buffer.alloc(0), suite.keyBytes),
    iv: hkdfExpandLabel(suite.hash, trafficSecret, 'iv', Buffer.alloc(0), 12),
  };
}

/** The TLS 1.2 PRF (RFC 5246 §5), P_SHA256 or P_SHA384. */
export function tls12Prf(
  hash: 'sha256' | 'sha384',
  secret: Buffer,
  label: string,
  seed: Buffer,
  length: number,
): Buffer {
  const labelSeed = Buffer.concat([Buffer.from(label, 'latin1'), seed]);
  const out: Buffer[] = [];
  let a = labelSeed;
  let total = 0;
  while (total < length) {
    a = createHmac(hash, secret).update(a).digest();
    const block = createHmac(hash, secret)
      .update(Buffer.concat([a, labelSeed]))
      .digest();
    out.push(block);
    total += block.length;
  }
  return Buffer.concat(out).subarray(0, length);
}

/**
 * The TLS 1.2 server write key and IV from the master secret (RFC 5246 §6.3: the key block is client
 * key, server key, client IV, server IV for AEAD suites; 4-byte GCM salt, RFC 5288; 12-byte ChaCha20 IV,
 * RFC 7905), or undefined for another suite.
 */
export function tls12ServerKey(
  suiteName: string,
  masterSecret: Buffer,
  clientRandom: Buffer,
  serverRandom: Buffer,
): RecordKey | undefined {
  const suite = SUITES[suiteName];
  if (!suite || suiteName.startsWith('TLS_')) return undefined;
  if (masterSecret.length !== 48 || clientRandom.length !== 32 || serverRandom.length !== 32) {
    return undefined;
  }
  const ivBytes = suite.cipher === 'chacha20-poly1305' ? 12 : 4;
  const block = tls12Prf(
    suite.hash,
    masterSecret,
    'key expansion',
    Buffer.concat([serverRandom, clientRandom]),
    2 * suite.keyBytes + 2 * ivBytes,
  );
  const k = suite.keyBytes;
  return {
    version: 'TLSv1.2',
    suite,
    key: block.subarray(k, 2 * k),
    iv: block.subarray(2 * k + ivBytes, 2 * k + 2 * ivBytes),
  };
}

function sequenceBytes(seq: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(seq);
  return b;
}

/** Per-record nonce: the IV XOR the sequence number (TLS 1.3, ChaCha20), or salt + explicit seq (GCM 1.2). */
function nonceFor(k: RecordKey, seq: bigint): { nonce: Buffer; explicit: Buffer } {
  const s = sequenceBytes(seq);
  if (k.version === 'TLSv1.2' && k.suite.cipher !== 'chacha20-poly1305') {
    return { nonce: Buffer.concat([k.iv, s]), explicit: s };
  }
  const nonce = Buffer.from(k.iv);
  for (let i = 0; i < 8; i++) nonce[4 + i] = (nonce[4 + i] as number) ^ (s[i] as number);
  return { nonce, explicit: Buffer.alloc(0) };
}

/**
 * GCM and ChaCha20-Poly1305 have the same AEAD interface; Node needs the tag length spelled out for
 * ChaCha20-Poly1305 (and accepts it for GCM). The casts only pick one of Node's overloads.
 */
function encryptor(k: RecordKey, nonce: Buffer): CipherGCM {
  return createCipheriv(k.suite.cipher as 'aes-128-gcm', k.key, nonce, { authTagLength: TAG_BYTES });
}

function decryptor(k: RecordKey, nonce: Buffer): DecipherGCM {
  return createDecipheriv(k.suite.cipher as 'aes-128-gcm', k.key, nonce, { authTagLength: TAG_BYTES });
}

/**
 * One alert record under `k` at write sequence number `seq`, ready for the wire. Fatal unless `level`
 * says otherwise (only the tests send a warning: RFC 8448's close_notify is their known answer).
 */
export function sealAlert(k: RecordKey, seq: bigint, description: number, level = ALERT_FATAL): Buffer {
  const alert = Buffer.from([level, description]);
  const { nonce, explicit } = nonceFor(k, seq);
  if (k.version === 'TLSv1.3') {
    // TLSInnerPlaintext: content, then its real type; the outer type is application_data.
    const inner = Buffer.concat([alert, Buffer.from([CONTENT_ALERT])]);
    const header = recordHeader(CONTENT_APPLICATION_DATA, inner.length + TAG_BYTES);
    const cipher = encryptor(k, nonce);
    cipher.setAAD(header);
    const body = Buffer.concat([cipher.update(inner), cipher.final(), cipher.getAuthTag()]);
    return Buffer.concat([header, body]);
  }
  // TLS 1.2 additional data: seq_num + type + version + plaintext length (RFC 5246 §6.2.3.3).
  const aad = Buffer.concat([sequenceBytes(seq), recordHeader(CONTENT_ALERT, alert.length)]);
  const cipher = encryptor(k, nonce);
  cipher.setAAD(aad, { plaintextLength: alert.length });
  const sealed = Buffer.concat([cipher.update(alert), cipher.final(), cipher.getAuthTag()]);
  const body = Buffer.concat([explicit, sealed]);
  return Buffer.concat([recordHeader(CONTENT_ALERT, body.length), body]);
}

/**
 * A TLS 1.2 fatal alert before the server's ChangeCipherSpec, when records are not protected yet (a
 * refusal decided while the handshake is still running).
 */
export function plaintextAlert(description: number): Buffer {
  return Buffer.concat([recordHeader(CONTENT_ALERT, 2), Buffer.from([ALERT_FATAL, description])]);
}

/**
 * True when a TLS 1.3 record (header included) was protected under `k` at `seq`: it tells the records
 * the server wrote under its application key (session tickets) from those under its handshake key.
 */
export function opensUnder(k: RecordKey, seq: bigint, record: Buffer): boolean {
  if (k.version !== 'TLSv1.3' || record.length < 5 + TAG_BYTES + 1) return false;
  const header = record.subarray(0, 5);
  const body = record.subarray(5);
  const { nonce } = nonceFor(k, seq);
  try {
    const decipher = decryptor(k, nonce);
    decipher.setAAD(header, { plaintextLength: body.length - TAG_BYTES });
    decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
    decipher.update(body.subarray(0, body.length - TAG_BYTES));
    decipher.final();
    return true;
  } catch {
    return false;
  }
}

function recordHeader(type: number, length: number): Buffer {
  return Buffer.from([type, 0x03, 0x03, length >> 8, length & 0xff]);
}
