import {
  formatIPv4 as formatIPv4Number,
  formatIPv6 as formatIPv6Words,
  parseIPv4 as parseIPv4Number,
  parseIPv6 as parseIPv6Words,
} from '@sock/core/internal';
import { FirewallError, FirewallErrorCode, quote } from './errors.js';

/** 4 for IPv4, 6 for IPv6. */
export type IpFamily = 4 | 6;

/**
 * An address or CIDR after our own parser: canonical text, family and prefix. Single addresses have
 * prefix 32 (IPv4) or 128 (IPv6) and `kind: 'address'`.
 */
export interface IpTarget {
  readonly kind: 'address' | 'cidr';
  readonly family: IpFamily;
  /** Canonical network address (host bits cleared), e.g. `10.0.0.0` or `2001:db8::`. */
  readonly address: string;
  readonly prefix: number;
  /** Canonical text: `address` for single addresses, `address/prefix` for CIDRs. */
  readonly text: string;
  /** The address as an integer (network address for CIDRs). */
  readonly value: bigint;
}

/** Options of {@link parseTarget}. */
export interface ParseTargetOptions {
  /** Accept prefixes broader than /8 (IPv4) or /32 (IPv6). Default false. */
  allowBroadPrefix?: boolean;
}

/** Narrowest allowed prefixes without force. */
const MIN_PREFIX: Readonly<Record<IpFamily, number>> = { 4: 8, 6: 32 };
const BITS: Readonly<Record<IpFamily, number>> = { 4: 32, 6: 128 };
const MAX_INPUT = 64;

function invalid(input: unknown, why: string): FirewallError {
  return new FirewallError(
    FirewallErrorCode.INVALID_ADDRESS,
    `invalid IP address or CIDR ${quote(input)}: ${why}; pass a plain IPv4/IPv6 address or CIDR such as "192.0.2.1", "2001:db8::1" or "198.51.100.0/24"`,
    { details: { input } },
  );
}

function isDigits(text: string): boolean {
  if (text.length === 0) return false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/** Strict dotted quad (no leading zeros) as a bigint, with core's parser. */
function parseIPv4(text: string): bigint | undefined {
  const n = parseIPv4Number(text);
  return n < 0 ? undefined : BigInt(n);
}

const words = new Uint32Array(4);

/** RFC 4291 text forms, with core's parser (zone ids never get here: `%` is refused up front). */
function parseIPv6(text: string): bigint | undefined {
  if (!parseIPv6Words(text, words)) return undefined;
  return (
    (BigInt(words[0]!) << 96n) | (BigInt(words[1]!) << 64n) | (BigInt(words[2]!) << 32n) | BigInt(words[3]!)
  );
}

/** Canonical IPv4 text of a 32-bit integer. */
function formatIPv4(value: bigint): string {
  return formatIPv4Number(Number(value & 0xffffffffn));
}

/** RFC 5952 canonical IPv6 text of a 128-bit integer, with core's formatter. */
export function formatIPv6(value: bigint): string {
  const w = [96n, 64n, 32n, 0n].map((s) => Number((value >> s) & 0xffffffffn));
  return formatIPv6Words(w);
}

const MAPPED_PREFIX = 0xffffn << 32n;

function mask(value: bigint, family: IpFamily, prefix: number): bigint {
  const bits = BigInt(BITS[family]);
  const hostBits = bits - BigInt(prefix);
  return (value >> hostBits) << hostBits;
}

function build(family: IpFamily, value: bigint, prefix: number): IpTarget {
  const network = mask(value, family, prefix);
  const address = family === 4 ? formatIPv4(network) : formatIPv6(network);
  const single = prefix === BITS[family];
  return {
    kind: single ? 'address' : 'cidr',
    family,
    address,
    prefix,
    text: single ? address : `${address}/${prefix}`,
    value: network,
  };
}

/**
 * Parse an IPv4/IPv6 address or CIDR with our own strict parser and return its canonical form.
 * IPv4-mapped IPv6 (`::ffff:192.0.2.1`) becomes IPv4. Host bits of a CIDR are cleared. Anything
 * else — zone ids, whitespace, shell or nft syntax, non-ASCII digits — throws
 * `ERR_SOCK_FW_INVALID_ADDRESS`; prefixes broader than /8 or /32 throw `ERR_SOCK_FW_PREFIX_TOO_BROAD`
 * unless `allowBroadPrefix`.
 */
export function parseTarget(input: unknown, options: ParseTargetOptions = {}): IpTarget {
  if (typeof input !== 'string') throw invalid(input, `expected a string, got ${typeof input}`);
  if (input.length === 0) throw invalid(input, 'it is empty');
  if (input.length > MAX_INPUT) throw invalid(input, `it is longer than ${MAX_INPUT} characters`);
  for (let i = 0; i < input.length; i++) {
    const c = input.charCodeAt(i);
    const ok = (c >= 48 && c <= 58) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70) || c === 46 || c === 47;
    if (!ok) throw invalid(input, `character ${quote(input[i])} at index ${i} is not allowed`);
  }
  const slash = input.indexOf('/');
  if (slash < 0 && !input.includes(':')) {
    // Fast path for the common case: a strict dotted quad is already canonical.
    const n = parseIPv4Number(input);
    if (n < 0) throw invalid(input, 'not a valid dotted-quad IPv4 address');
    return { kind: 'address', family: 4, address: input, prefix: 32, text: input, value: BigInt(n) };
  }
  const addrText = slash < 0 ? input : input.slice(0, slash);
  const prefixText = slash < 0 ? undefined : input.slice(slash + 1);
  const isV6 = addrText.includes(':');
  let family: IpFamily = isV6 ? 6 : 4;
  let value = isV6 ? parseIPv6(addrText) : parseIPv4(addrText);
  if (value === undefined) {
    throw invalid(input, isV6 ? 'not a valid IPv6 address' : 'not a valid dotted-quad IPv4 address');
  }
  let prefix = BITS[family];
  if (prefixText !== undefined) {
    if (!isDigits(prefixText) || prefixText.length > 3 || (prefixText.length > 1 && prefixText[0] === '0')) {
      throw invalid(input, 'the prefix length is not a decimal number');
    }
    prefix = Number(prefixText);
    if (prefix > BITS[family]) throw invalid(input, `the prefix /${prefix} exceeds /${BITS[family]}`);
  }
  if (family === 6 && prefix >= 96 && value >> 32n === MAPPED_PREFIX >> 32n) {
    family = 4;
    value &= 0xffffffffn;
    prefix -= 96;
  }
  if (prefix < MIN_PREFIX[family] && !options.allowBroadPrefix) {
    throw new FirewallError(
      FirewallErrorCode.PREFIX_TOO_BROAD,
      `prefix /${prefix} of ${quote(input)} is broader than /${MIN_PREFIX[family]} (IPv${family}); narrow it, or pass force: 'broad-prefix' if you really mean to ban that much`,
      { details: { input, prefix } },
    );
  }
  return build(family, value, prefix);
}

/** Parse a single address (no prefix other than /32 or /128). */
export function parseAddress(input: unknown): IpTarget {
  const target = parseTarget(input, { allowBroadPrefix: true });
  if (target.kind !== 'address') throw invalid(input, 'expected a single address, not a CIDR');
  return target;
}

/** True when `outer` contains `inner` (same family, outer's prefix no longer, same network bits). */
export function contains(outer: IpTarget, inner: IpTarget): boolean {
  if (outer.family !== inner.family || outer.prefix > inner.prefix) return false;
  return mask(inner.value, inner.family, outer.prefix) === outer.value;
}

/** Two CIDRs overlap exactly when one contains the other. */
export function overlaps(a: IpTarget, b: IpTarget): boolean {
  return contains(a, b) || contains(b, a);
}

/** Keep only the outermost of nested targets (the result has no overlaps), sorted by text. */
export function collapse(targets: readonly IpTarget[]): IpTarget[] {
  const sorted = [...targets].sort((a, b) => a.family - b.family || a.prefix - b.prefix);
  const kept: IpTarget[] = [];
  for (const t of sorted) {
    if (!kept.some((k) => contains(k, t))) kept.push(t);
  }
  return kept.sort((a, b) => (a.text < b.text ? -1 : a.text > b.text ? 1 : 0));
}
