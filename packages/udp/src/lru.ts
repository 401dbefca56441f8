interface Entry<V> {
  value: V;
  expiresAt: number;
  used: boolean;
}

/**
 * A Map with a size cap and lazy expiry: when the cap is reached a least recently used entry goes, and an
 * entry past its deadline is treated as absent (and removed) when it is next looked up. No timers, no
 * per-key work in the background: per-source state must never grow with an attacker's address space.
 *
 * Recency is kept the CLOCK way ("second chance"): a lookup only marks its entry, and eviction walks from
 * the oldest insertion, moving marked entries to the back once. Lookups on the hot path then cost one
 * Map read instead of a delete and an insert.
 *
 * The entry last looked up is remembered: datagrams come in runs from one source (a flood is one long
 * run), and a key equal to the last one is then found without hashing it (a source address is a fresh
 * string per datagram, so every Map read hashed it anew). Any removal or replacement forgets it.
 */
export class Lru<K, V> {
  private readonly map = new Map<K, Entry<V>>();
  private lastKey: K | undefined;
  private lastEntry: Entry<V> | undefined;
  evictions = 0;

  /**
   * @param sliding - when true, every `get` pushes the deadline `ttlMs` further (idle expiry); otherwise
   *   an entry lives `ttlMs` from when it was set.
   */
  constructor(
    readonly maxEntries: number,
    readonly ttlMs: number,
    private readonly now: () => number,
    private readonly sliding = false,
  ) {}

  get size(): number {
    return this.map.size;
  }

  /**
   * The live value for `key`, marked as recently used; undefined when absent or expired. Pass `now`
   * when the caller already read the clock.
   */
  get(key: K, now = this.now()): V | undefined {
    let entry = this.lastEntry;
    if (entry === undefined || key !== this.lastKey) {
      entry = this.map.get(key);
      if (entry === undefined) return undefined;
      this.lastKey = key;
      this.lastEntry = entry;
    }
    if (entry.expiresAt <= now) {
      this.delete(key);
      return undefined;
    }
    if (this.sliding) entry.expiresAt = now + this.ttlMs;
    entry.used = true;
    return entry.value;
  }

  /** Store `value` for `ttlMs` (default: the table's), evicting a least recently used entry when full. */
  set(key: K, value: V, ttlMs = this.ttlMs, now = this.now()): void {
    if (!this.delete(key) && this.map.size >= this.maxEntries) this.evict(now);
    this.map.set(key, { value, expiresAt: now + ttlMs, used: false });
  }

  delete(key: K): boolean {
    this.forgetLast();
    return this.map.delete(key);
  }

  clear(): void {
    this.forgetLast();
    this.map.clear();
  }

  private forgetLast(): void {
    this.lastKey = undefined;
    this.lastEntry = undefined;
  }

  /** Remove one entry: the oldest that is expired or was not used since its last second chance. */
  private evict(now: number): void {
    // Each pass clears one mark, so this ends within size + 1 steps (amortised O(1) per insertion).
    for (const [key, entry] of this.map) {
      if (entry.used && entry.expiresAt > now) {
        entry.used = false;
        this.map.delete(key);
        this.map.set(key, entry);
        continue;
      }
      this.delete(key);
      this.evictions++;
      return;
    }
  }
}
