/**
 * The keys (addresses or prefixes) that were refused most, in bounded memory: the Space-Saving algorithm
 * (Metwally et al. 2005) keeps at most `capacity` entries; a new key replaces the smallest one and
 * inherits its count as `error`, so a key that really is among the top is never lost, and a scan from a
 * million sources costs `capacity` entries. Written here because the field's libraries for this are
 * either unbounded maps or probabilistic sketches that cannot name the keys.
 */
export interface TopKey {
  readonly key: string;
  /** Refusals counted (an over-estimate by at most `error`). */
  readonly count: number;
  /** How much of `count` may have been inherited from the key it replaced (0: exact). */
  readonly error: number;
  /** The reason of the last refusal. */
  readonly lastReason: string;
  /** Clock time (ms) of the last refusal. */
  readonly lastAt: number;
}

/** A bounded Space-Saving counter of refused keys (the collector's `topKeys`). */
export interface TopKeys {
  /** Count one refusal of `key` for `reason` at clock time `at` (ms). */
  add(key: string, reason: string, at: number): void;
  /** The `n` keys counted most (ties: most recent first), as copies. */
  top(n: number): TopKey[];
  /** How many keys are tracked (at most the capacity). */
  readonly size: number;
}

interface Entry {
  key: string;
  count: number;
  error: number;
  lastReason: string;
  lastAt: number;
}

/** Create a {@link TopKeys} tracking at most `capacity` keys; a capacity of 0 or less tracks nothing. */
export function createTopKeys(capacity: number): TopKeys {
  const entries = new Map<string, Entry>();
  return {
    add(key, reason, at) {
      if (capacity <= 0) return;
      const hit = entries.get(key);
      if (hit) {
        hit.count++;
        hit.lastReason = reason;
        hit.lastAt = at;
        return;
      }
      if (entries.size < capacity) {
        entries.set(key, { key, count: 1, error: 0, lastReason: reason, lastAt: at });
        return;
      }
      // Linear scan for the minimum: capacity is small (default 100) and this runs per refusal only.
      let min: Entry | undefined;
      for (const e of entries.values()) if (!min || e.count < min.count) min = e;
      entries.delete(min!.key);
      entries.set(key, { key, count: min!.count + 1, error: min!.count, lastReason: reason, lastAt: at });
    },
    top(n) {
      return [...entries.values()]
        .sort((a, b) => b.count - a.count || b.lastAt - a.lastAt)
        .slice(0, n)
        .map((e) => ({ ...e }));
    },
    get size() {
      return entries.size;
    },
  };
}
