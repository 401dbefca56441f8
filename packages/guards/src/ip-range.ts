import { type Cidr, formatIPv4, formatIPv6, maskWords, parseAddress, parseCidr } from './ip.js';

/**
 * Ranges as bans use them: the text of a range key, containment and overlap, and the IPv4 address an
 * IPv6 address stands for. Written beside ip.ts (which parses and formats), so a key is one spelling.
 */

/** NAT64 well-known prefix 64:ff9b::/96 (RFC 6052): the last 32 bits are an IPv4 client. */
const NAT64_W0 = 0x0064ff9b;

/**
 * The IPv4 address an IPv6 address carries, or -1: IPv4-mapped (`::ffff:a.b.c.d`, also done by
 * `parseAddress`), NAT64 (`64:ff9b::a.b.c.d`) and IPv4-compatible (`::a.b.c.d`, deprecated; `::` and
 * `::1` excluded). Keyed by the IPv6 /64 instead, every IPv4 client behind one translator would share one
 * key: one ban would lock out all of them, and none of them would be counted alone.
 */
export function embeddedIPv4(words: ArrayLike<number>): number {
  const w0 = words[0]! >>> 0;
  const w1 = words[1]! >>> 0;
  const w2 = words[2]! >>> 0;
  const w3 = words[3]! >>> 0;
  if (w1 !== 0) return -1;
  if (w0 === 0 && w2 === 0xffff) return w3;
  if (w0 === NAT64_W0 && w2 === 0) return w3;
  if (w0 === 0 && w2 === 0 && w3 >>> 24 !== 0) return w3;
  return -1;
}

const scratch = new Uint32Array(4);

/**
 * An address as a /32 (IPv4, embedded IPv4 included) or /128 range; undefined when not an address.
 */
export function addressRange(address: string): Cidr | undefined {
  const family = parseAddress(address, scratch);
  if (family === 0) return undefined;
  const words = new Uint32Array(4);
  if (family === 4) {
    words[0] = scratch[0]!;
    return { family: 4, bits: 32, words };
  }
  const v4 = embeddedIPv4(scratch);
  if (v4 >= 0) {
    words[0] = v4;
    return { family: 4, bits: 32, words };
  }
  words.set(scratch);
  return { family: 6, bits: 128, words };
}

/** `range` narrowed to `bits` (no wider than it is). */
export function narrowTo(range: Cidr, bits: number): Cidr {
  const b = Math.min(bits, range.bits);
  const words = new Uint32Array(range.words);
  maskWords(words, b, range.family === 4 ? 1 : 4);
  return { family: range.family, bits: b, words };
}

/** The key text of a range: an address alone for /32 and /128, else `network/bits`. */
export function formatRange(range: Cidr): string {
  if (range.family === 4)
    return range.bits === 32 ? formatIPv4(range.words[0]!) : `${formatIPv4(range.words[0]!)}/${range.bits}`;
  return range.bits === 128 ? formatIPv6(range.words) : `${formatIPv6(range.words)}/${range.bits}`;
}

/** A key (`203.0.113.7`, `2001:db8::/64`, `198.51.100.0/24`) or CIDR as a range. */
export function parseRange(text: string): Cidr | undefined {
  if (text.indexOf('/') < 0) return addressRange(text);
  return parseCidr(text);
}

/** Whether `a` and `b` share any address (one contains the other). */
export function rangesOverlap(a: Cidr, b: Cidr): boolean {
  if (a.family !== b.family) return false;
  const bits = Math.min(a.bits, b.bits);
  for (let k = 0; k * 32 < bits; k++) {
    const keep = Math.min(32, bits - k * 32);
    const mask = keep === 32 ? 0xffffffff : (0xffffffff << (32 - keep)) >>> 0;
    if ((a.words[k]! & mask) >>> 0 !== (b.words[k]! & mask) >>> 0) return false;
  }
  return true;
}

/** Whether `outer` contains every address of `inner`. */
export function rangeContains(outer: Cidr, inner: Cidr): boolean {
  return outer.bits <= inner.bits && rangesOverlap(outer, inner);
}
