import type { BanRecord } from './store.js';

/**
 * The rules of strikes and bans, in one place, for every store: the memory store and the cluster primary
 * run these functions; the Redis store runs the same rules in its Lua scripts (redis-scripts.ts), and the
 * property test checks the memory store against a reference model.
 *
 * - A key that is banned right now earns no strikes: one burst of violations gives one ban.
 * - Strikes count within a window that starts at a key's first strike; at `threshold` they are cleared and
 *   a ban is issued, of `duration × factor^(offences − 1)` (at most `max`), where offences are the bans the
 *   key earned before (remembered until `forget` after the last ban ended).
 * - A ban is never shortened: banning a key that is banned longer keeps the longer ban.
 */
export interface BanRule {
  readonly threshold: number;
  readonly windowMs: number;
  readonly durationMs: number;
  readonly factor: number;
  readonly maxMs: number;
  readonly forgetMs: number;
}

/** What one strike did. */
export interface StrikeOutcome {
  /** Strikes on the strike key after this one; 0 when the ban key was already banned (nothing counted). */
  readonly strikes: number;
  /** True when the ban key was banned already, so the strike was not counted. */
  readonly alreadyBanned?: boolean;
  /** The ban this strike issued. */
  readonly ban?: BanRecord;
  /** False when the ban could not be stored (a full table that refuses new keys). */
  readonly stored?: boolean;
}

/** What one ban did. */
export interface BanOutcome {
  /** The ban now in force (the longer of the old and the new). */
  readonly record: BanRecord;
  /** False when the ban key already had a ban at least as long: nothing changed. */
  readonly changed: boolean;
  /** False when the ban could not be stored (a full table that refuses new keys). */
  readonly stored: boolean;
}

/** The state one rule step reads and writes, as a store holds it. */
export interface BanState {
  /** The key's record, unless forgotten. */
  getBan(key: string, now: number): BanRecord | undefined;
  /** False when it could not be stored. */
  setBan(key: string, record: BanRecord, now: number): boolean;
  /** Add `weight` strikes (window from the first); the total, or -1 when the table refuses the key. */
  addStrikes(key: string, weight: number, windowMs: number, now: number): number;
  clearStrikes(key: string): void;
}

/** The length of a key's `offences`-th ban. */
function banLength(rule: BanRule, offences: number): number {
  return Math.min(rule.maxMs, Math.round(rule.durationMs * rule.factor ** Math.max(0, offences - 1)));
}

/** Ban `key` for `durationMs` (undefined: the escalating length its offences earn), never shortening. */
export function applyBan(
  state: BanState,
  key: string,
  durationMs: number | undefined,
  rule: BanRule,
  now: number,
): BanOutcome {
  const previous = state.getBan(key, now);
  const offences = (previous?.offences ?? 0) + 1;
  const ms = durationMs ?? banLength(rule, offences);
  const until = now + ms;
  if (previous && previous.until >= until) return { record: previous, changed: false, stored: true };
  const record: BanRecord = { until, offences, forgetAt: until + rule.forgetMs };
  return { record, changed: true, stored: state.setBan(key, record, now) };
}

/** Count `weight` strikes against `strikeKey`; at the threshold, ban `banKey` (usually the same key). */
export function applyStrike(
  state: BanState,
  strikeKey: string,
  banKey: string,
  weight: number,
  rule: BanRule,
  now: number,
): StrikeOutcome {
  const current = state.getBan(banKey, now);
  if (current && current.until > now) return { strikes: 0, alreadyBanned: true };
  const total = state.addStrikes(strikeKey, weight, rule.windowMs, now);
  if (total < rule.threshold) return { strikes: Math.max(0, total) };
  state.clearStrikes(strikeKey);
  const outcome = applyBan(state, banKey, undefined, rule, now);
  return { strikes: total, ban: outcome.record, stored: outcome.stored };
}
