/**
 * A bounded table for per-key state: exact LRU order, lazy expiry, no timer per key.
 *
 * Layout: a `Map` from key to slot number, and the slots' fields in typed arrays (struct of arrays), so an
 * entry costs a Map entry plus a few machine words, not an object. The LRU list is threaded through two
 * Int32Arrays. Field 0 of each slot is the time (ms) after which the entry is as good as absent; expired
 * entries are dropped when touched or when they reach the LRU end. Capacity grows by doubling up to `max`.
 *
 * When the table is full and its least recently used entry is still live, `onFull` decides: `evict` drops
 * it (fail-open for that key: its state is forgotten), `reject` refuses the new key (fail-closed). Both
 * outcomes are counted.
 */
export type TableKey = number | string;

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

export class LruTable {
  private readonly index = new Map<TableKey, number>();
  private keys: TableKey[] = [];
  private prev: Int32Array;
  private next: Int32Array;
  data: Float64Array;
  private head = -1;
  private tail = -1;
  private free = -1;
  private used = 0;
  evictions = 0;
  full = 0;
  expired = 0;

  constructor(
    readonly max: number,
    readonly fields: number,
    readonly onFull: OnFull = 'evict',
  ) {
    const cap = Math.min(max, 1024);
    this.prev = new Int32Array(cap);
    this.next = new Int32Array(cap);
    this.data = new Float64Array(cap * fields);
  }

  get size(): number {
    return this.index.size;
  }

  stats(): TableStats {
    return {
      size: this.index.size,
      max: this.max,
      evictions: this.evictions,
      full: this.full,
      expired: this.expired,
    };
  }

  /** The live slot for `key` (now most recently used), or -1. */
  find(key: TableKey, now: number): number {
    const slot = this.index.get(key);
    if (slot === undefined) return -1;
    if (this.data[slot * this.fields]! <= now) {
      this.remove(slot);
      this.expired++;
      return -1;
    }
    this.touch(slot);
    return slot;
  }

  /** The slot for `key` without touching LRU order or expiry, or -1. */
  peek(key: TableKey): number {
    return this.index.get(key) ?? -1;
  }

  /** A new slot for `key` (absent) expiring at `expiresAt`, or -1 when full and `onFull` is `reject`. */
  insert(key: TableKey, expiresAt: number, now: number): number {
    if (this.index.size >= this.max) {
      const victim = this.tail;
      if (this.data[victim * this.fields]! <= now) this.expired++;
      else if (this.onFull === 'evict') this.evictions++;
      else {
        this.full++;
        return -1;
      }
      this.remove(victim);
    }
    let slot = this.free;
    if (slot >= 0) this.free = this.next[slot]!;
    else {
      if (this.used === this.prev.length) this.grow();
      slot = this.used++;
    }
    this.keys[slot] = key;
    this.index.set(key, slot);
    this.data.fill(0, slot * this.fields, slot * this.fields + this.fields);
    this.data[slot * this.fields] = expiresAt;
    this.linkHead(slot);
    return slot;
  }

  delete(key: TableKey): boolean {
    const slot = this.index.get(key);
    if (slot === undefined) return false;
    this.remove(slot);
    return true;
  }

  clear(): void {
    this.index.clear();
    this.keys = [];
    this.head = this.tail = this.free = -1;
    this.used = 0;
  }

  /** Live keys, most recently used first (for snapshots; O(n)). */
  *entries(now: number): IterableIterator<[TableKey, number]> {
    for (let s = this.head; s >= 0; s = this.next[s]!) {
      if (this.data[s * this.fields]! > now) yield [this.keys[s]!, s];
    }
  }

  private remove(slot: number): void {
    this.index.delete(this.keys[slot]!);
    this.unlink(slot);
    this.keys[slot] = 0;
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
    const cap = Math.min(this.max, this.prev.length * 2);
    const prev = new Int32Array(cap);
    prev.set(this.prev);
    this.prev = prev;
    const next = new Int32Array(cap);
    next.set(this.next);
    this.next = next;
    const data = new Float64Array(cap * this.fields);
    data.set(this.data);
    this.data = data;
  }
}
