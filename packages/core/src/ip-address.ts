/**
 * The one IPv4/IPv6 text parser and formatter of sock (guards' hot paths and the firewall's strict
 * validation both use it): no regular expressions, no allocation for IPv4. An IPv4 address is one
 * unsigned 32-bit number; an IPv6 address is four unsigned 32-bit words, most significant first.
 * Hand-written because `node:net` only answers yes/no (`isIP`) and gives neither the numeric value nor
 * RFC 5952 canonical text, and a per-datagram / per-connection check cannot afford a regular expression.
 */

/** Parse dotted-quad IPv4 from `s[start, end)`; -1 when it is not one. Leading zeros are refused. */
export function parseIPv4(s: string, start = 0, end = s.length): number {
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || dots === 3) return -1;
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && octet === 0) return -1;
      octet = octet * 10 + (c - 48);
      if (octet > 255 || ++digits > 3) return -1;
    } else return -1;
  }
  if (dots !== 3 || digits === 0) return -1;
  return value * 256 + octet;
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

const groups = new Uint16Array(8);

/**
 * Parse IPv6 (with `::`, an embedded IPv4 tail, an optional `%zone`) into `out[0..3]`. False when `s` is
 * not an IPv6 address.
 */
export function parseIPv6(s: string, out: Uint32Array): boolean {
  let end = s.indexOf('%');
  if (end < 0) end = s.length;
  let n = 0;
  let gap = -1;
  let i = 0;
  if (end < 2) return false;
  if (s.charCodeAt(0) === 58) {
    if (s.charCodeAt(1) !== 58) return false;
    gap = 0;
    i = 2;
    if (i === end) {
      out[0] = out[1] = out[2] = out[3] = 0;
      return true;
    }
  }
  while (i < end) {
    if (n === 8) return false;
    let value = 0;
    let digits = 0;
    let j = i;
    for (; j < end; j++) {
      const h = hexValue(s.charCodeAt(j));
      if (h < 0) break;
      value = value * 16 + h;
      if (++digits > 4) return false;
    }
    const c = j < end ? s.charCodeAt(j) : -1;
    if (c === 46) {
      // Embedded IPv4: the last 32 bits.
      if (n > 6) return false;
      const v4 = parseIPv4(s, i, end);
      if (v4 < 0) return false;
      groups[n++] = v4 >>> 16;
      groups[n++] = v4 & 0xffff;
      i = end;
      break;
    }
    if (digits === 0) return false;
    groups[n++] = value;
    if (c === -1) {
      i = end;
      break;
    }
    if (c !== 58) return false;
    if (j + 1 < end && s.charCodeAt(j + 1) === 58) {
      if (gap >= 0) return false;
      gap = n;
      i = j + 2;
    } else {
      i = j + 1;
      if (i === end) return false;
    }
  }
  if (gap < 0 ? n !== 8 : n > 7) return false;
  const zeros = 8 - n;
  for (let k = 0; k < 4; k++) {
    const hi = groupAt(2 * k, gap, zeros);
    const lo = groupAt(2 * k + 1, gap, zeros);
    out[k] = ((hi << 16) | lo) >>> 0;
  }
  return true;
}

function groupAt(index: number, gap: number, zeros: number): number {
  if (gap < 0 || index < gap) return groups[index]!;
  if (index < gap + zeros) return 0;
  return groups[index - zeros]!;
}

/** Dotted-quad text of an IPv4 address held as an unsigned 32-bit number. */
export function formatIPv4(value: number): string {
  return `${value >>> 24}.${(value >>> 16) & 255}.${(value >>> 8) & 255}.${value & 255}`;
}

/** RFC 5952: lowercase, no leading zeros, the longest run of two or more zero groups as `::`. */
export function formatIPv6(words: ArrayLike<number>): string {
  const g: number[] = [];
  for (let k = 0; k < 4; k++) g.push(words[k]! >>> 16, words[k]! & 0xffff);
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (a: number, b: number) =>
    g
      .slice(a, b)
      .map((x) => x.toString(16))
      .join(':');
  if (bestStart < 0) return hex(0, 8);
  return `${hex(0, bestStart)}::${hex(bestStart + bestLen, 8)}`;
}
