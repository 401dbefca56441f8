import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from './ip.js';

/**
 * A bounded table for per-key state: exact LRU order, lazy expiry, no timer per key.
 *
 * Memory is the point: an attacker controls how many keys exist (every IPv6 /64 is one), so an entry
 * must be a few machine words, not an object and a string. Keys that are addresses or prefixes (all of
 * them, as guards make keys) are stored as four 32-bit words plus a tag in typed arrays and found through
 * an open-addressing hash index (linear probing, backward-shift deletion, load ≤ 1/2); nothing is
 * allocated per key. Other strings fall back to a Map. The LRU list is threaded through two Int32Arrays
 * and each slot's fields sit in a Float64Array; field 0 is the time (ms) after which the entry is as good
 * as absent, so expired entries are dropped when touched or when they reach the LRU end. About 44 bytes
 * per key.
 *
 * When the table is full and its least recently used entry is still live, `onFull` decides: `evict` drops
 * it (fail-open for that key: its state is forgotten), `reject` refuses the new key (fail-closed). Both
 * outcomes are counted.
 */
export type OnFull = 'evict' | 'reject';

export interface TableStats {
  readonly size: number;
  readonly max: number;
  /** Live entries dropped to make room (fail-open). */
  readonly evictions: number;
  /** New keys refused because the table was full of live entries (fail-closed). */
  readonly full: number;
  /** Entries dropped lazily after they expired. */
  readonly expired: number;
}

const OPAQUE = -1;
const words6 = new Uint32Array(4);
const keyWords = new Int32Array(4);

/**
 * Encode `key` into `keyWords`: tag 1 for an IPv4 address, 2 + bits for an IPv6 address or prefix
 * (`2001:db8::/64`), OPAQUE for anything else.
 */
function encode(key: string): number {
  // One check costs several lookups of the same key string (bans, then each rate table): it is parsed
  // once. Only this function writes keyWords, so they still hold the last key's words.
  if (key === lastKey) return lastTag;
  lastTag = encodeWords(key);
  lastKey = key;
  return lastTag;
}

let lastKey: string | undefined;
let lastTag = OPAQUE;

function encodeWords(key: string): number {
  if (key.indexOf(':') < 0) {
    const v = parseIPv4(key);
    if (v < 0) return OPAQUE;
    keyWords[0] = v | 0;
    keyWords[1] = keyWords[2] = keyWords[3] = 0;
    return 1;
  }
  const slash = key.indexOf('/');
  let bits = 128;
  if (slash >= 0) {
    const tail = key.slice(slash + 1);
    bits = tail.length > 0 && tail.length <= 3 ? Number(tail) : -1;
    if (!Number.isInteger(bits) || bits < 0 || bits > 128) return OPAQUE;
  }
  if (!parseIPv6(slash >= 0 ? key.slice(0, slash) : key, words6)) return OPAQUE;
  for (let k = 0; k < 4; k++) keyWords[k] = words6[k]! | 0;
  return 2 + bits;
}

/**
 * Encode an IPv4 address given as its number (as `parseIPv4` returns it) into `keyWords`, tag 1: the same
 * words `encode` writes for its dotted text, so either form finds the same entry. The text cache no
 * longer describes keyWords afterwards, so it is cleared.
 */
function encodeIPv4(value: number): number {
  keyWords[0] = value | 0;
  keyWords[1] = keyWords[2] = keyWords[3] = 0;
  lastKey = undefined;
  lastTag = OPAQUE;
  return 1;
}

function hash(tag: number, w0: number, w1: number, w2: number, w3: number): number {
  let h = Math.imul(w0 ^ tag, 0x9e3779b1);
  h = Math.imul(h ^ w1 ^ (h >>> 16), 0x85ebca77);
  h = Math.imul(h ^ w2 ^ (h >>> 13), 0xc2b2ae3d);
  h = Math.imul(h ^ w3 ^ (h >>> 16), 0x27d4eb2f);
  return h ^ (h >>> 15);
}

export class LruTable {
  private tags: Int32Array;
  private words: Int32Array;
  private prev: Int32Array;
  private next: Int32Array;
  data: Float64Array;
  /** Open-addressing index: slot + 1, 0 for empty. */
  private index = new Int32Array(2048);
  private indexed = 0;
  private opaque: Map<string, number> | undefined;
  private opaqueKeys: Map<number, string> | undefined;
  private head = -1;
  private tail = -1;
  private free = -1;
  private used = 0;
  private count = 0;
  evictions = 0;
  full = 0;
  expired = 0;

  constructor(
    readonly max: number,
    readonly fields: number,
    readonly onFull: OnFull = 'evict',
  ) {
    const cap = Math.min(max, 1024);
    this.tags = new Int32Array(cap);
    this.words = new Int32Array(cap * 4);
    this.prev = new Int32Array(cap);
    this.next = new Int32Array(cap);
    this.data = new Float64Array(cap * fields);
  }

  get size(): number {
    return this.count;
  }

  stats(): TableStats {
    return {
      size: this.count,
      max: this.max,
      evictions: this.evictions,
      full: this.full,
      expired: this.expired,
    };
  }

  /** The slot of `key` (encoded in keyWords with `tag`), or -1. */
  private lookup(tag: number, key: string): number {
    if (tag === OPAQUE) return this.opaque?.get(key) ?? -1;
    const w0 = keyWords[0]!;
    const w1 = keyWords[1]!;
    const w2 = keyWords[2]!;
    const w3 = keyWords[3]!;
    const mask = this.index.length - 1;
    for (let i = hash(tag, w0, w1, w2, w3) & mask; ; i = (i + 1) & mask) {
      const s = this.index[i]! - 1;
      if (s < 0) return -1;
      if (this.tags[s] === tag) {
        const o = s * 4;
        const w = this.words;
        if (w[o] === w0 && w[o + 1] === w1 && w[o + 2] === w2 && w[o + 3] === w3) return s;
      }
    }
  }

  private home(slot: number): number {
    const o = slot * 4;
    const w = this.words;
    return hash(this.tags[slot]!, w[o]!, w[o + 1]!, w[o + 2]!, w[o + 3]!) & (this.index.length - 1);
  }

  private indexInsert(slot: number): void {
    if ((this.indexed + 1) * 2 > this.index.length) this.rehash(this.index.length * 2);
    const mask = this.index.length - 1;
    let i = this.home(slot);
    while (this.index[i] !== 0) i = (i + 1) & mask;
    this.index[i] = slot + 1;
    this.indexed++;
  }

  private rehash(size: number): void {
    const old = this.index;
    this.index = new Int32Array(size);
    const mask = size - 1;
    for (let k = 0; k < old.length; k++) {
      const v = old[k]!;
      if (v === 0) continue;
      let i = this.home(v - 1);
      while (this.index[i] !== 0) i = (i + 1) & mask;
      this.index[i] = v;
    }
  }

  /** Backward-shift deletion: no tombstones, probe chains stay short. */
  private indexRemove(slot: number): void {
    const mask = this.index.length - 1;
    let i = this.home(slot);
    while (this.index[i] !== slot + 1) i = (i + 1) & mask;
    for (let j = (i + 1) & mask; ; j = (j + 1) & mask) {
      const v = this.index[j]!;
      if (v === 0) break;
      const k = this.home(v - 1);
      // Move v back into the hole at i unless its home lies cyclically in (i, j].
      const between = i <= j ? k > i && k <= j : k > i || k <= j;
      if (!between) {
        this.index[i] = v;
        i = j;
      }
    }
    this.index[i] = 0;
    this.indexed--;
  }

  /** The live slot for `key` (now most recently used), or -1. */
  find(key: string, now: number): number {
    return this.live(this.lookup(encode(key), key), now);
  }

  /**
   * `find` for an IPv4 address given as its number (`parseIPv4`'s result): the same entry as its dotted
   * text, found without reading the text again (a datagram's source is parsed once for every table).
   */
  findIPv4(value: number, now: number): number {
    // An empty table (the bans, nearly always) answers before any hashing.
    if (this.count === 0) return -1;
    return this.live(this.lookup(encodeIPv4(value), ''), now);
  }

  /** `findAny` for an IPv4 address given as its number. */
  findAnyIPv4(value: number): number {
    const slot = this.lookup(encodeIPv4(value), '');
    if (slot >= 0) this.touch(slot);
    return slot;
  }

  /** `insert` for an IPv4 address given as its number (absent); its key reads back as the dotted text. */
  insertIPv4(value: number, expiresAt: number, now: number): number {
    return this.insertEncoded(undefined, value, expiresAt, now);
  }

  /** `slot` if it is live (now most recently used); an expired one is removed. -1 otherwise. */
  private live(slot: number, now: number): number {
    if (slot < 0) return -1;
    if (this.data[slot * this.fields]! <= now) {
      this.remove(slot);
      this.expired++;
      return -1;
    }
    this.touch(slot);
    return slot;
  }

  /**
   * The slot of `key`, live or expired (now most recently used), or -1: for a caller that treats an
   * expired entry's data as its own default (a token bucket whose TAT has passed is a full bucket) and
   * overwrites it, so a key seen again is updated in place, not dropped and inserted anew.
   */
  findAny(key: string): number {
    const slot = this.lookup(encode(key), key);
    if (slot >= 0) this.touch(slot);
    return slot;
  }

  /** A new slot for `key` (absent) expiring at `expiresAt`, or -1 when full and `onFull` is `reject`. */
  insert(key: string, expiresAt: number, now: number): number {
    return this.insertEncoded(key, 0, expiresAt, now);
  }

  /** Insert `key`, or (when it is undefined) the IPv4 address numbered `value`. */
  private insertEncoded(key: string | undefined, value: number, expiresAt: number, now: number): number {
    if (this.count >= this.max) {
      const victim = this.tail;
      if (this.data[victim * this.fields]! <= now) this.expired++;
      else if (this.onFull === 'evict') this.evictions++;
      else {
        this.full++;
        return -1;
      }
      this.remove(victim);
    }
    // Encoded after the eviction above (which reads no keyWords): they hold this key's words below.
    const tag = key === undefined ? encodeIPv4(value) : encode(key);
    let slot = this.free;
    if (slot >= 0) this.free = this.next[slot]!;
    else {
      if (this.used === this.tags.length) this.grow();
      slot = this.used++;
    }
    this.tags[slot] = tag;
    if (tag === OPAQUE) {
      // Only text encodes as OPAQUE, so `key` is a string here.
      this.opaque ??= new Map();
      this.opaqueKeys ??= new Map();
      this.opaque.set(key!, slot);
      this.opaqueKeys.set(slot, key!);
    } else {
      this.words.set(keyWords, slot * 4);
      this.indexInsert(slot);
    }
    this.count++;
    this.data.fill(0, slot * this.fields, slot * this.fields + this.fields);
    this.data[slot * this.fields] = expiresAt;
    this.linkHead(slot);
    return slot;
  }

  delete(key: string): boolean {
    const slot = this.lookup(encode(key), key);
    if (slot < 0) return false;
    this.remove(slot);
    return true;
  }

  /** Live entries as [key, slot], most recently used first (for snapshots; O(n)). */
  *entries(now: number): IterableIterator<[string, number]> {
    for (let s = this.head; s >= 0; s = this.next[s]!) {
      if (this.data[s * this.fields]! > now) yield [this.keyOf(s), s];
    }
  }

  private keyOf(slot: number): string {
    const tag = this.tags[slot]!;
    if (tag === OPAQUE) return this.opaqueKeys!.get(slot)!;
    const o = slot * 4;
    if (tag === 1) return formatIPv4(this.words[o]! >>> 0);
    for (let k = 0; k < 4; k++) words6[k] = this.words[o + k]! >>> 0;
    const bits = tag - 2;
    return bits === 128 ? formatIPv6(words6) : `${formatIPv6(words6)}/${bits}`;
  }

  private remove(slot: number): void {
    if (this.tags[slot] === OPAQUE) {
      this.opaque!.delete(this.opaqueKeys!.get(slot)!);
      this.opaqueKeys!.delete(slot);
    } else this.indexRemove(slot);
    this.tags[slot] = 0;
    this.count--;
    this.unlink(slot);
    this.next[slot] = this.free;
    this.free = slot;
  }

  private touch(slot: number): void {
    if (slot === this.head) return;
    this.unlink(slot);
    this.linkHead(slot);
  }

  private linkHead(slot: number): void {
    this.prev[slot] = -1;
    this.next[slot] = this.head;
    if (this.head >= 0) this.prev[this.head] = slot;
    this.head = slot;
    if (this.tail < 0) this.tail = slot;
  }

  private unlink(slot: number): void {
    const p = this.prev[slot]!;
    const n = this.next[slot]!;
    if (p >= 0) this.next[p] = n;
    else this.head = n;
    if (n >= 0) this.prev[n] = p;
    else this.tail = p;
  }

  private grow(): void {
    const cap = Math.min(this.max, this.tags.length * 2);
    const resize = <A extends Int32Array | Float64Array>(a: A, size: number): A => {
      const b = new (a.constructor as new (n: number) => A)(size);
      b.set(a);
      return b;
    };
    this.tags = resize(this.tags, cap);
    this.words = resize(this.words, cap * 4);
    this.prev = resize(this.prev, cap);
    this.next = resize(this.next, cap);
    this.data = resize(this.data, cap * this.fields);
  }
}
