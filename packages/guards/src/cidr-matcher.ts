import { SockError, SockErrorCode } from '@sock/core';
import { type Cidr, parseAddress, parseCidr, parseIPv4 } from './ip.js';

/**
 * Longest-prefix match of addresses against CIDR rules.
 *
 * Why not a scan (what `net.BlockList` does): a scan costs one comparison per rule, so a 100k-rule deny
 * list costs milliseconds per connection and is itself a denial-of-service lever. Here a lookup costs at
 * most one step per prefix bit, whatever the number of rules:
 *
 * - Exact addresses (`/32`, `/128`), most entries of real block lists, sit in a hash map: one probe. An
 *   exact address is the most specific rule possible, so a hit ends the lookup.
 * - Shorter prefixes sit in a path-compressed binary trie (PATRICIA): each node stores its whole prefix,
 *   so chains of one-child nodes collapse and the trie has fewer than two nodes per rule. A lookup walks
 *   from the root, checks that each node's prefix covers the address and remembers the deepest node with
 *   a value: that is the most specific matching rule. Depth is bounded by 32 (IPv4) or 128 (IPv6) and in
 *   practice by log2(rules) plus the number of distinct prefix lengths on the path.
 * - IPv4 starts with a direct table indexed by the first 16 bits (DIR-16, as routers do; 20 bits for
 *   lists of 262,144 prefixes or more): each entry holds the best rule of /16 (/20) or shorter covering
 *   it (prefix expansion) and the root of a small PATRICIA trie for the longer prefixes inside. Sixteen
 *   (twenty) levels of walking become one array read; a million random /24 rules leave about one or two
 *   per /20, a walk of one or two nodes, laid out next to each other (see `compact`).
 * - Nodes live in typed arrays, not objects. IPv4 nodes are 16 bytes side by side (prefix, length and
 *   rule, two children), so a step of the walk is one cache line; a lookup allocates nothing.
 *
 * A matcher is immutable once built; a policy reload builds a new one and swaps it in.
 */
export interface CidrMatcher<T> {
  /** The value of the most specific rule covering `address`, or undefined. Invalid addresses match nothing. */
  lookup(address: string): T | undefined;
  /**
   * `lookup` for an IPv4 address given as its unsigned 32-bit number (127.0.0.1 is 0x7f000001), for a
   * caller that has parsed the address already: no text is read.
   */
  lookupIPv4(value: number): T | undefined;
  /** Number of distinct rules. */
  readonly size: number;
}

export interface CidrRule<T> {
  readonly cidr: string | Cidr;
  readonly value: T;
}

export interface CidrMatcherOptions {
  /**
   * Bits of the IPv4 direct table: 16 (512 KB) or 20 (8 MB, shallower tries). Default: 20 from 262,144
   * IPv4 prefixes (exact addresses not counted), else 16.
   */
  directBits?: 16 | 20;
}

/** Build a matcher. A later rule for the same prefix replaces an earlier one. Throws on an invalid CIDR. */
export function createCidrMatcher<T>(
  rules: Iterable<CidrRule<T>>,
  options: CidrMatcherOptions = {},
): CidrMatcher<T> {
  return new Matcher<T>(rules, options.directBits);
}

/** Path-compressed binary trie over `W` 32-bit words (1 for IPv4, 4 for IPv6). */
class Trie {
  prefix: Uint32Array;
  len: Uint8Array;
  value: Int32Array;
  child0: Int32Array;
  child1: Int32Array;
  count = 1;

  constructor(private readonly W: number) {
    const cap = 16;
    this.prefix = new Uint32Array(cap * W);
    this.len = new Uint8Array(cap);
    this.value = new Int32Array(cap);
    this.child0 = new Int32Array(cap).fill(-1);
    this.child1 = new Int32Array(cap).fill(-1);
  }

  private grow(): void {
    const cap = this.len.length * 2;
    const prefix = new Uint32Array(cap * this.W);
    prefix.set(this.prefix);
    this.prefix = prefix;
    const len = new Uint8Array(cap);
    len.set(this.len);
    this.len = len;
    const value = new Int32Array(cap);
    value.set(this.value);
    this.value = value;
    const c0 = new Int32Array(cap).fill(-1);
    c0.set(this.child0);
    this.child0 = c0;
    const c1 = new Int32Array(cap).fill(-1);
    c1.set(this.child1);
    this.child1 = c1;
  }

  private node(words: Uint32Array, bits: number, value: number): number {
    if (this.count === this.len.length) this.grow();
    const n = this.count++;
    const W = this.W;
    for (let k = 0; k < W; k++) this.prefix[n * W + k] = words[k]!;
    maskNode(this.prefix, n * W, bits, W);
    this.len[n] = bits;
    this.value[n] = value;
    return n;
  }

  private bitOf(words: Uint32Array, offset: number, bit: number): number {
    return (words[offset + (bit >>> 5)]! >>> (31 - (bit & 31))) & 1;
  }

  /** Bits `words` and node `n` share, up to `max`. */
  private common(words: Uint32Array, n: number, max: number): number {
    const W = this.W;
    for (let k = 0; k < W; k++) {
      const x = (words[k]! ^ this.prefix[n * W + k]!) >>> 0;
      if (x !== 0) return Math.min(max, k * 32 + Math.clz32(x));
    }
    return max;
  }

  /** Insert or replace; true when the prefix had no value before. */
  insert(words: Uint32Array, bits: number, value: number): boolean {
    let n = 0;
    for (;;) {
      if (this.len[n] === bits) {
        // The walk only descends into nodes covering `words`, so this node's prefix is exactly it.
        const fresh = this.value[n] === 0;
        this.value[n] = value;
        return fresh;
      }
      const b = this.bitOf(words, 0, this.len[n]!);
      const c = b === 0 ? this.child0[n]! : this.child1[n]!;
      if (c < 0) {
        this.setChild(n, b, this.node(words, bits, value));
        return true;
      }
      const shared = this.common(words, c, Math.min(bits, this.len[c]!));
      if (shared === this.len[c]) {
        n = c;
        continue;
      }
      if (shared === bits) {
        // The new prefix sits between n and c.
        const m = this.node(words, bits, value);
        this.setChild(m, this.bitOf(this.prefix, c * this.W, bits), c);
        this.setChild(n, b, m);
        return true;
      }
      // They diverge at `shared`: a valueless fork holds both.
      const fork = this.node(words, shared, 0);
      const leaf = this.node(words, bits, value);
      this.setChild(fork, this.bitOf(words, 0, shared), leaf);
      this.setChild(fork, this.bitOf(this.prefix, c * this.W, shared), c);
      this.setChild(n, b, fork);
      return true;
    }
  }

  private setChild(parent: number, bit: number, child: number): void {
    if (bit === 0) this.child0[parent] = child;
    else this.child1[parent] = child;
  }

  lookup6(words: Uint32Array): number {
    let best = this.value[0]!;
    let n = 0;
    for (;;) {
      const l = this.len[n]!;
      if (l === 128) return best;
      const c = this.bitOf(words, 0, l) === 0 ? this.child0[n]! : this.child1[n]!;
      if (c < 0) return best;
      if (this.common(words, c, this.len[c]!) !== this.len[c]) return best;
      const v = this.value[c]!;
      if (v !== 0) best = v;
      n = c;
    }
  }
}

/**
 * IPv4: DIR-16 table plus PATRICIA tries below /16. Node `n` is `nodes[4n..4n+3]`: prefix, (length << 24 |
 * rule), child for bit 0, child for bit 1 (-1: none). Rule numbers are 1-based; 0 is "no rule".
 */
class Trie4 {
  private nodes = new Int32Array(4 * 256);
  private count = 0;
  private readonly shift: number;
  private readonly size: number;
  /**
   * Per first-`top`-bits `i`: `dir[2i]` the best rule of length ≤ top, `dir[2i + 1]` 1 + the root node of
   * the longer prefixes (0: none). Side by side, so a lookup's first step is one cache line.
   */
  private readonly dir: Int32Array;
  /** Length of the rule in `dir[2i]` (-1: none), for building only. */
  private topLen: Int8Array;
  private readonly short = new Set<number>();

  /** `top`: bits of the direct table, 16 (512 KB) or, for very large lists, 20 (8 MB, shallower tries). */
  constructor(private readonly top: number) {
    this.shift = 32 - top;
    this.size = 1 << top;
    this.dir = new Int32Array(2 * this.size);
    this.topLen = new Int8Array(this.size).fill(-1);
  }

  private node(prefix: number, bits: number, value: number): number {
    if ((this.count + 1) * 4 > this.nodes.length) {
      const grown = new Int32Array(this.nodes.length * 2);
      grown.set(this.nodes);
      this.nodes = grown;
    }
    const n = this.count++;
    const o = n * 4;
    this.nodes[o] = bits === 0 ? 0 : prefix & (-1 << (32 - bits));
    this.nodes[o + 1] = (bits << 24) | value;
    this.nodes[o + 2] = -1;
    this.nodes[o + 3] = -1;
    return n;
  }

  /** Insert or replace `prefix/bits` (host bits already clear); true when it is new. */
  insert(prefix: number, bits: number, value: number): boolean {
    if (value >= 1 << 24) {
      throw new SockError(
        SockErrorCode.INVALID_OPTION,
        'createCidrMatcher: more than 16,777,215 rules; split the list',
      );
    }
    if (bits <= this.top) {
      // Prefix expansion into the direct table; a longer prefix already there keeps its entries.
      const first = prefix >>> this.shift;
      const span = 1 << (this.top - bits);
      for (let i = first; i < first + span; i++) {
        if (this.topLen[i]! <= bits) {
          this.dir[2 * i] = value;
          this.topLen[i] = bits;
        }
      }
      const id = (prefix >>> this.shift) * 33 + bits;
      const fresh = !this.short.has(id);
      this.short.add(id);
      return fresh;
    }
    const bucket = prefix >>> this.shift;
    let n = this.dir[2 * bucket + 1]! - 1;
    if (n < 0) {
      n = this.node(prefix, this.top, 0);
      this.dir[2 * bucket + 1] = n + 1;
    }
    for (;;) {
      const nodes = this.nodes;
      const l = nodes[n * 4 + 1]! >>> 24;
      if (l === bits) {
        const old = nodes[n * 4 + 1]! & 0xffffff;
        nodes[n * 4 + 1] = (bits << 24) | value;
        return old === 0;
      }
      const b = (prefix >>> (31 - l)) & 1;
      const c = nodes[n * 4 + 2 + b]!;
      if (c < 0) {
        const leaf = this.node(prefix, bits, value);
        this.nodes[n * 4 + 2 + b] = leaf;
        return true;
      }
      const cl = nodes[c * 4 + 1]! >>> 24;
      const diff = (prefix ^ nodes[c * 4]!) >>> 0;
      const shared = Math.min(bits, cl, diff === 0 ? 32 : Math.clz32(diff));
      if (shared === cl) {
        n = c;
        continue;
      }
      const childPrefix = nodes[c * 4]!;
      if (shared === bits) {
        const m = this.node(prefix, bits, value);
        this.nodes[m * 4 + 2 + ((childPrefix >>> (31 - bits)) & 1)] = c;
        this.nodes[n * 4 + 2 + b] = m;
        return true;
      }
      const fork = this.node(prefix, shared, 0);
      const leaf = this.node(prefix, bits, value);
      this.nodes[fork * 4 + 2 + ((prefix >>> (31 - shared)) & 1)] = leaf;
      this.nodes[fork * 4 + 2 + ((childPrefix >>> (31 - shared)) & 1)] = c;
      this.nodes[n * 4 + 2 + b] = fork;
      return true;
    }
  }

  /**
   * Lay the nodes out again, each /16's trie contiguous in depth-first order: built in rule order, a
   * trie's nodes are scattered over the whole array and every step of a walk is a cache miss; laid out
   * together, a walk stays within a few neighbouring cache lines. Called once, after the last insert.
   */
  compact(): void {
    const old = this.nodes;
    const out = new Int32Array(Math.max(4, this.count * 4));
    let next = 0;
    const stack: number[] = [];
    for (let i = 0; i < this.size; i++) {
      const root = this.dir[2 * i + 1]! - 1;
      if (root < 0) continue;
      // Iterative DFS; each copied node's children are patched once they are placed.
      const placed = next++;
      this.dir[2 * i + 1] = placed + 1;
      stack.push(root, placed);
      while (stack.length > 0) {
        const at = stack.pop()!;
        const from = stack.pop()!;
        out[at * 4] = old[from * 4]!;
        out[at * 4 + 1] = old[from * 4 + 1]!;
        for (let b = 1; b >= 0; b--) {
          const child = old[from * 4 + 2 + b]!;
          if (child < 0) {
            out[at * 4 + 2 + b] = -1;
            continue;
          }
          const slot = next++;
          out[at * 4 + 2 + b] = slot;
          stack.push(child, slot);
        }
      }
    }
    this.nodes = out;
    // Building is over: the lengths of the direct entries are not needed for lookups.
    this.topLen = new Int8Array(0);
  }

  /** The most specific rule covering `addr` (any 32-bit integer), 0 for none. */
  lookup(addr: number): number {
    const d = (addr >>> this.shift) * 2;
    let best = this.dir[d]!;
    let n = this.dir[d + 1]! - 1;
    if (n < 0) return best;
    const nodes = this.nodes;
    for (;;) {
      const o = n * 4;
      const l = nodes[o + 1]! >>> 24;
      if (l === 32) return best;
      const c = nodes[o + 2 + ((addr >>> (31 - l)) & 1)]!;
      if (c < 0) return best;
      const cv = nodes[c * 4 + 1]!;
      // Does the child's whole (compressed) prefix cover addr? Its length is more than `top` here.
      if ((addr ^ nodes[c * 4]!) >>> (32 - (cv >>> 24)) !== 0) return best;
      if ((cv & 0xffffff) !== 0) best = cv & 0xffffff;
      n = c;
    }
  }
}

function maskNode(prefix: Uint32Array, offset: number, bits: number, W: number): void {
  for (let k = 0; k < W; k++) {
    const keep = bits - k * 32;
    if (keep >= 32) continue;
    prefix[offset + k] = keep <= 0 ? 0 : (prefix[offset + k]! & (0xffffffff << (32 - keep))) >>> 0;
  }
}

const scratch = new Uint32Array(4);

class Matcher<T> implements CidrMatcher<T> {
  private readonly values: T[] = [];
  private readonly exact4 = new Map<number, number>();
  private readonly exact6 = new Map<string, number>();
  private trie4!: Trie4;
  /** IPv4 prefixes (prefix, bits, rule) in rule order, until the trie is built. */
  private pending4: number[] = [];
  private readonly trie6 = new Trie(4);
  readonly size: number;

  constructor(rules: Iterable<CidrRule<T>>, directBits: 16 | 20 | undefined) {
    let size = 0;
    for (const rule of rules) {
      this.values.push(rule.value);
      const v = this.values.length;
      if (typeof rule.cidr === 'string' && rule.cidr.indexOf(':') < 0) {
        // IPv4 text: parsed in place, no intermediate object (a million rules build in well under 1s).
        const text = rule.cidr;
        const slash = text.indexOf('/');
        const addr = parseIPv4(text, 0, slash < 0 ? text.length : slash);
        const bits = slash < 0 ? 32 : prefixLength(text, slash + 1, 32);
        if (addr < 0 || bits < 0) throw notCidr(text);
        if (this.insert4(addr | 0, bits, v)) size++;
        continue;
      }
      const cidr = typeof rule.cidr === 'string' ? parseCidr(rule.cidr) : rule.cidr;
      if (!cidr) throw notCidr(rule.cidr);
      let replaced: boolean;
      if (cidr.family === 4) {
        if (this.insert4(cidr.words[0]! | 0, cidr.bits, v)) size++;
        continue;
      }
      if (cidr.bits === 128) {
        const key = key6(cidr.words);
        replaced = this.exact6.has(key);
        this.exact6.set(key, v);
      } else {
        replaced = !this.trie6.insert(cidr.words, cidr.bits, v);
      }
      if (!replaced) size++;
    }
    // Prefixes go into the trie once all are known: a very large list gets a wider direct table.
    const pending = this.pending4;
    const long = pending.length / 3;
    this.trie4 = new Trie4(directBits ?? (long >= 1 << 18 ? 20 : 16));
    for (let i = 0; i < pending.length; i += 3) {
      if (this.trie4.insert(pending[i]!, pending[i + 1]!, pending[i + 2]!)) size++;
    }
    this.pending4 = [];
    this.size = size;
    this.trie4.compact();
  }

  /**
   * IPv4 rule: exact addresses in the hash (keys as small integers: never boxed; true when new), prefixes
   * queued for the trie (counted when they are inserted).
   */
  private insert4(addr: number, bits: number, v: number): boolean {
    if (bits === 32) {
      const fresh = !this.exact4.has(addr);
      this.exact4.set(addr, v);
      return fresh;
    }
    this.pending4.push(bits === 0 ? 0 : addr & (-1 << (32 - bits)), bits, v);
    return false;
  }

  lookupIPv4(value: number): T | undefined {
    const a = value | 0;
    let v = 0;
    if (this.exact4.size > 0) v = this.exact4.get(a) ?? 0;
    if (v === 0) v = this.trie4.lookup(a);
    return v === 0 ? undefined : this.values[v - 1];
  }

  lookup(address: string): T | undefined {
    let v = 0;
    if (address.indexOf(':') < 0) {
      const parsed = parseIPv4(address);
      return parsed < 0 ? undefined : this.lookupIPv4(parsed);
    }
    const family = parseAddress(address, scratch);
    if (family === 4) {
      const a = scratch[0]! | 0;
      if (this.exact4.size > 0) v = this.exact4.get(a) ?? 0;
      if (v === 0) v = this.trie4.lookup(a);
    } else if (family === 6) {
      if (this.exact6.size > 0) v = this.exact6.get(key6(scratch)) ?? 0;
      if (v === 0) v = this.trie6.lookup6(scratch);
    }
    return v === 0 ? undefined : this.values[v - 1];
  }
}

/** Decimal prefix length from `text[start..]`, at most `max`; -1 when malformed. */
function prefixLength(text: string, start: number, max: number): number {
  const digits = text.length - start;
  if (digits < 1 || digits > 3) return -1;
  let n = 0;
  for (let i = start; i < text.length; i++) {
    const c = text.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    n = n * 10 + c;
  }
  return n > max ? -1 : n;
}

function key6(words: Uint32Array): string {
  return `${words[0]}:${words[1]}:${words[2]}:${words[3]}`;
}

/** A rule that is not an address or prefix: a typed error naming it (the README promises SockError). */
function notCidr(cidr: unknown): SockError {
  return new SockError(
    SockErrorCode.INVALID_OPTION,
    `createCidrMatcher: not an IP address or CIDR: ${JSON.stringify(cidr)}; give an address (203.0.113.7) or a prefix (198.51.100.0/24)`,
  );
}
