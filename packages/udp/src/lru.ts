/**
 * A Map with a size cap and lazy expiry: the least recently used entry goes when the cap is reached, and
 * an entry past its deadline is treated as absent (and removed) when it is next looked up. No timers, no
 * per-key work in the background: per-source state must never grow with an attacker's address space.
 */
export class Lru<K, V> {
  private readonly map = new Map<K, { value: V; expiresAt: number }>();
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

  /** The live value for `key`, refreshed as most recently used; undefined when absent or expired. */
  get(key: K): V | undefined {
    const entry = this.map.get(key);
    if (entry === undefined) return undefined;
    const now = this.now();
    if (entry.expiresAt <= now) {
      this.map.delete(key);
      return undefined;
    }
    if (this.sliding) entry.expiresAt = now + this.ttlMs;
    // Re-insert to move it to the most recent end (Map keeps insertion order).
    this.map.delete(key);
    this.map.set(key, entry);
    return entry.value;
  }

  /** Store `value` for `ttlMs` (default: the table's), evicting the least recently used entry when full. */
  set(key: K, value: V, ttlMs = this.ttlMs): void {
    this.map.delete(key);
    if (this.map.size >= this.maxEntries) {
      const oldest = this.map.keys().next();
      if (!oldest.done) {
        this.map.delete(oldest.value);
        this.evictions++;
      }
    }
    this.map.set(key, { value, expiresAt: this.now() + ttlMs });
  }

  delete(key: K): boolean {
    return this.map.delete(key);
  }

  clear(): void {
    this.map.clear();
  }
}
