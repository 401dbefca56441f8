import { type Cidr, formatIPv4, formatIPv6, parseAddress, parseCidr } from './ip.js';

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
 * - Nodes live in typed arrays (struct of arrays), not objects: a million rules cost tens of megabytes
 *   and a lookup touches a few cache lines, with no allocation for IPv4.
 *
 * A matcher is immutable once built; a policy reload builds a new one and swaps it in.
 */
export interface CidrMatcher<T> {
  /** The value of the most specific rule covering `address`, or undefined. Invalid addresses match nothing. */
  lookup(address: string): T | undefined;
  /** Number of distinct rules. */
  readonly size: number;
}

export interface CidrRule<T> {
  readonly cidr: string | Cidr;
  readonly value: T;
}

/** Build a matcher. A later rule for the same prefix replaces an earlier one. Throws on an invalid CIDR. */
export function createCidrMatcher<T>(rules: Iterable<CidrRule<T>>): CidrMatcher<T> {
  return new Matcher<T>(rules);
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

  /** IPv4 lookup: the value of the deepest matching node, 0 for none. */
  lookup4(addr: number): number {
    const prefix = this.prefix;
    const len = this.len;
    let best = this.value[0]!;
    let n = 0;
    for (;;) {
      const l = len[n]!;
      if (l === 32) return best;
      const c = ((addr >>> (31 - l)) & 1) === 0 ? this.child0[n]! : this.child1[n]!;
      if (c < 0) return best;
      const cl = len[c]!;
      // Does node c's whole (compressed) prefix cover addr?
      if (cl !== 0 && (addr ^ prefix[c]!) >>> (32 - cl) !== 0) return best;
      const v = this.value[c]!;
      if (v !== 0) best = v;
      n = c;
    }
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
  private readonly trie4 = new Trie(1);
  private readonly trie6 = new Trie(4);
  readonly size: number;

  constructor(rules: Iterable<CidrRule<T>>) {
    let size = 0;
    for (const rule of rules) {
      const cidr = typeof rule.cidr === 'string' ? parseCidr(rule.cidr) : rule.cidr;
      if (!cidr) throw new TypeError(`not an IP address or CIDR: ${JSON.stringify(rule.cidr)}`);
      this.values.push(rule.value);
      const v = this.values.length;
      let replaced: boolean;
      if (cidr.family === 4 && cidr.bits === 32) {
        replaced = this.exact4.has(cidr.words[0]!);
        this.exact4.set(cidr.words[0]!, v);
      } else if (cidr.family === 6 && cidr.bits === 128) {
        const key = key6(cidr.words);
        replaced = this.exact6.has(key);
        this.exact6.set(key, v);
      } else {
        const trie = cidr.family === 4 ? this.trie4 : this.trie6;
        replaced = !trie.insert(cidr.words, cidr.bits, v);
      }
      if (!replaced) size++;
    }
    this.size = size;
  }

  lookup(address: string): T | undefined {
    const family = parseAddress(address, scratch);
    let v = 0;
    if (family === 4) {
      const a = scratch[0]!;
      v = this.exact4.get(a) ?? 0;
      if (v === 0) v = this.trie4.lookup4(a);
    } else if (family === 6) {
      if (this.exact6.size > 0) v = this.exact6.get(key6(scratch)) ?? 0;
      if (v === 0) v = this.trie6.lookup6(scratch);
    }
    return v === 0 ? undefined : this.values[v - 1];
  }
}

function key6(words: Uint32Array): string {
  return `${words[0]}:${words[1]}:${words[2]}:${words[3]}`;
}

/** Text of a CIDR, canonical (for messages and tests). */
export function formatCidr(cidr: Cidr): string {
  const addr = cidr.family === 4 ? formatIPv4(cidr.words[0]!) : formatIPv6(cidr.words);
  return `${addr}/${cidr.bits}`;
}
