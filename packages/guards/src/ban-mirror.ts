import type { TableStats } from './lru-table.js';
import type { BanRecord } from './store.js';

/**
 * @internal Every ban a shared store knows, in this process: bounded (the oldest record goes first when
 * full), forgotten records dropped lazily. A ban check reads it without waiting for the backend.
 */
export class BanMirror {
  private readonly records = new Map<string, BanRecord>();
  private evictions = 0;
  private expired = 0;

  constructor(private readonly max: number) {}

  get(key: string, now: number): BanRecord | undefined {
    const r = this.records.get(key);
    if (r && r.forgetAt <= now) {
      this.records.delete(key);
      this.expired++;
      return undefined;
    }
    return r;
  }

  set(key: string, record: BanRecord): void {
    this.records.delete(key);
    this.records.set(key, record);
    if (this.records.size > this.max) {
      this.records.delete(this.records.keys().next().value as string);
      this.evictions++;
    }
  }

  delete(key: string): boolean {
    return this.records.delete(key);
  }

  /** Every record not yet forgotten. */
  *entries(now: number): IterableIterator<[string, BanRecord]> {
    for (const [key, r] of this.records) if (r.forgetAt > now) yield [key, r];
  }

  active(now: number, limit: number): Array<{ key: string; until: number; offences: number }> {
    const out: Array<{ key: string; until: number; offences: number }> = [];
    for (const [key, r] of this.records) {
      if (out.length >= limit) break;
      if (r.until > now) out.push({ key, until: r.until, offences: r.offences });
    }
    return out;
  }

  stats(): TableStats {
    return {
      size: this.records.size,
      max: this.max,
      evictions: this.evictions,
      full: 0,
      expired: this.expired,
    };
  }
}
