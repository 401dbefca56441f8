import { COOKIE_BYTES } from './cookie.js';

/**
 * The request/response envelope, in front of each datagram's payload:
 *
 * ```
 * byte 0      version (high nibble, 1) and kind (low nibble): 1 request, 2 response, 3 cookie, 4 error
 * byte 1      flags: bit 0 = a cookie follows the id; the other bits are zero
 * bytes 2-5   request id, unsigned 32-bit big-endian, chosen by the client
 * bytes 6-25  the cookie (only with flag bit 0): 4-byte issue time in seconds + 16-byte HMAC
 * rest        the payload, encoded by the codec (empty for `cookie`; a reason code for `error`)
 * ```
 *
 * A `cookie` datagram answers a request that had no valid cookie: it carries a fresh one, and the client
 * sends the same request again with it. A `response` may carry a fresh cookie to replace an ageing one.
 */
export const EnvelopeKind = { request: 1, response: 2, cookie: 3, error: 4 } as const;
export type EnvelopeKind = keyof typeof EnvelopeKind;

const ENVELOPE_VERSION = 1;
/** Envelope bytes without a cookie. */
export const ENVELOPE_HEADER_BYTES = 6;
const FLAG_COOKIE = 0x01;
const KINDS: readonly (EnvelopeKind | undefined)[] = [undefined, 'request', 'response', 'cookie', 'error'];

export interface Envelope {
  readonly kind: EnvelopeKind;
  readonly id: number;
  readonly cookie?: Buffer | undefined;
  readonly payload: Buffer;
}

/** The envelope in `datagram` (views into it, no copies), or undefined when it is not a valid one. */
export function parseEnvelope(datagram: Buffer): Envelope | undefined {
  if (datagram.length < ENVELOPE_HEADER_BYTES) return undefined;
  const head = datagram[0]!;
  const kind = KINDS[head & 0x0f];
  const flags = datagram[1]!;
  if (head >> 4 !== ENVELOPE_VERSION || kind === undefined || (flags & ~FLAG_COOKIE) !== 0) return undefined;
  const id = datagram.readUInt32BE(2);
  let offset = ENVELOPE_HEADER_BYTES;
  let cookie: Buffer | undefined;
  if (flags & FLAG_COOKIE) {
    if (datagram.length < offset + COOKIE_BYTES) return undefined;
    cookie = datagram.subarray(offset, offset + COOKIE_BYTES);
    offset += COOKIE_BYTES;
  } else if (kind === 'cookie') {
    return undefined;
  }
  const payload = datagram.subarray(offset);
  if (kind === 'cookie' && payload.length > 0) return undefined;
  return { kind, id, cookie, payload };
}

/** One datagram: header, optional cookie (exactly COOKIE_BYTES), payload. */
export function encodeEnvelope(
  kind: EnvelopeKind,
  id: number,
  payload: Uint8Array = EMPTY,
  cookie?: Uint8Array,
): Buffer {
  if (cookie !== undefined && cookie.length !== COOKIE_BYTES) {
    throw new RangeError(`a cookie is ${COOKIE_BYTES} bytes, got ${cookie.length}`);
  }
  const headBytes = ENVELOPE_HEADER_BYTES + (cookie ? COOKIE_BYTES : 0);
  const out = Buffer.allocUnsafe(headBytes + payload.length);
  out[0] = (ENVELOPE_VERSION << 4) | EnvelopeKind[kind];
  out[1] = cookie ? FLAG_COOKIE : 0;
  out.writeUInt32BE(id >>> 0, 2);
  if (cookie) out.set(cookie, ENVELOPE_HEADER_BYTES);
  out.set(payload, headBytes);
  return out;
}

const EMPTY = new Uint8Array(0);
