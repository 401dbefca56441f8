/**
 * Address parsing for the hot paths: no regular expressions, no allocation for IPv4. An IPv4 address is
 * one unsigned 32-bit number; an IPv6 address is four unsigned 32-bit words, most significant first.
 * IPv4-mapped IPv6 (`::ffff:1.2.3.4`) is IPv4 here, before anything else looks at it (CVE-2026-30827).
 */
import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from '@sock/core/internal';
import { embeddedIPv4 } from './ip-range.js';

// The one IPv4/IPv6 text parser and formatter of sock lives in core (ip-address.ts); re-exported here
// for guards' own modules and tests.
export { formatIPv4, formatIPv6, parseIPv4, parseIPv6 };

/** Family 4 with `out[0]` the IPv4 number, family 6 with `out[0..3]`, or 0 when not an address. */
export function parseAddress(s: string, out: Uint32Array): 0 | 4 | 6 {
  if (s.indexOf(':') < 0) {
    const v4 = parseIPv4(s);
    if (v4 < 0) return 0;
    out[0] = v4;
    return 4;
  }
  if (!parseIPv6(s, out)) return 0;
  if (out[0] === 0 && out[1] === 0 && out[2] === 0xffff) {
    out[0] = out[3]!;
    return 4;
  }
  return 6;
}

/** Keep the first `bits` bits of `words` (in place). */
export function maskWords(words: Uint32Array, bits: number, count: number): void {
  for (let k = 0; k < count; k++) {
    const keep = bits - k * 32;
    if (keep >= 32) continue;
    words[k] = keep <= 0 ? 0 : (words[k]! & (0xffffffff << (32 - keep))) >>> 0;
  }
}

const scratch = new Uint32Array(4);

/** The address as guards see it: IPv4 for IPv4-mapped IPv6, RFC 5952 for IPv6; undefined if invalid. */
export function canonicalAddress(address: string): string | undefined {
  const family = parseAddress(address, scratch);
  if (family === 4) return formatIPv4(scratch[0]!);
  if (family === 6) return formatIPv6(scratch);
  return undefined;
}

/**
 * The key per-address limits count against: an IPv4 address as is, an IPv6 address masked to
 * `ipv6Prefix` bits and written as a CIDR (`2001:db8:1:2::/64`), since one IPv6 user holds a whole /64 or
 * more. IPv4-mapped IPv6 becomes IPv4 first, so IPv4 clients on a dual-stack listener never share one
 * bucket (CVE-2026-30827); NAT64 (`64:ff9b::/96`) and IPv4-compatible (`::a.b.c.d`) addresses are keyed
 * by the IPv4 address they embed. Undefined when `address` is not an IP address.
 */
export function addressKey(address: string, ipv6Prefix = 64): string | undefined {
  if (address.indexOf(':') < 0) return parseIPv4(address) < 0 ? undefined : address;
  const family = parseAddress(address, scratch);
  if (family === 4) return formatIPv4(scratch[0]!);
  if (family === 0) return undefined;
  // NAT64 and IPv4-compatible sources are the IPv4 clients they carry (ip-range.ts says why).
  const v4 = embeddedIPv4(scratch);
  if (v4 >= 0) return formatIPv4(v4);
  if (ipv6Prefix >= 128) return formatIPv6(scratch);
  maskWords(scratch, ipv6Prefix, 4);
  return `${formatIPv6(scratch)}/${ipv6Prefix}`;
}

/** A parsed CIDR: family, prefix length and the masked network words. */
export interface Cidr {
  readonly family: 4 | 6;
  readonly bits: number;
  readonly words: Uint32Array;
}

/**
 * Parse `1.2.3.4`, `10.0.0.0/8`, `2001:db8::/32` or `::ffff:10.0.0.0/104` (an IPv4-mapped prefix of at
 * least /96 is the IPv4 prefix it names). Host bits are cleared. Undefined when the text is not a CIDR.
 */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  let bits = -1;
  if (slash >= 0) {
    const b = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(b)) return undefined;
    bits = Number(b);
  }
  const words = new Uint32Array(4);
  if (addr.indexOf(':') < 0) {
    const v4 = parseIPv4(addr);
    if (v4 < 0) return undefined;
    if (bits === -1) bits = 32;
    if (bits > 32) return undefined;
    words[0] = v4;
    maskWords(words, bits, 1);
    return { family: 4, bits, words };
  }
  if (!parseIPv6(addr, words) || addr.includes('%')) return undefined;
  if (bits === -1) bits = 128;
  if (bits > 128) return undefined;
  if (words[0] === 0 && words[1] === 0 && words[2] === 0xffff && bits >= 96) {
    const v4 = new Uint32Array(4);
    v4[0] = words[3]!;
    maskWords(v4, bits - 96, 1);
    return { family: 4, bits: bits - 96, words: v4 };
  }
  maskWords(words, bits, 4);
  return { family: 6, bits, words };
}
