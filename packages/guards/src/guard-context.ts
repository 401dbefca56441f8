import type { ConnectionControl, Rejection, SockError } from '@sock/core';
import type { Bans } from './bans.js';
import type { ResolvedPolicy } from './policy.js';
import type { GuardReason } from './reasons.js';
import type { GuardStore, MaybePromise } from './store.js';

/** Which guard made a decision. */
export type GuardName = 'ip' | 'connections' | 'rates' | 'timeouts' | 'bans' | 'proxy';

/** The plug-in name core reports for every guards decision. */
export const GUARDS_PLUGIN = 'guards';

/** Chain on a value that may or may not be a promise (the memory store answers synchronously). */
export function after<T, R>(value: MaybePromise<T>, next: (v: T) => MaybePromise<R>): MaybePromise<R> {
  return value instanceof Promise ? value.then(next) : next(value);
}

/**
 * @internal What every guard shares: the policy in force (swapped whole on reload), the store, the clock,
 * the ban module, counting and error reporting. Each guard keeps its own per-connection state under its
 * own symbol in `conn.locals`; the one thing they share per connection is its key (`connKey`).
 */
export interface GuardContext {
  readonly policy: ResolvedPolicy;
  readonly store: GuardStore;
  readonly bans: Bans;
  /** The guards' clock (`GuardsOptions.clock`): tables and bans. Per-connection timers use `conn.clock`. */
  now(): number;
  /** The key `address` counts against, or undefined for a string that is not an address. */
  keyOf(address: string): string | undefined;
  /** Count a decision: `closed` ones as rejected (unless shadow), the rest as reported. */
  count(rejection: Rejection, closed: boolean): void;
  error(err: SockError): void;
}

const KEY = Symbol('sock.guards.key');

/** The key a connection counts against, fixed when it enters accept. */
export function connKey(conn: ConnectionControl): string | undefined {
  return conn.locals.get(KEY) as string | undefined;
}

export function setConnKey(conn: ConnectionControl, key: string): void {
  conn.locals.set(KEY, key);
}

/** A guard's rejection, its message prefixed with the guard's name. */
export function rejection(
  guard: GuardName,
  reason: GuardReason,
  key: string,
  message: string,
  shadow: boolean,
): Rejection {
  return shadow
    ? { reason, key, message: `${guard}: ${message}`, shadow }
    : { reason, key, message: `${guard}: ${message}` };
}
