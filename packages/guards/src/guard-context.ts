import type { ConnectionControl, Rejection, SockError } from '@sock/core';
import type { Bans } from './bans.js';
import type { Deadlines } from './guard-timeouts.js';
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
 * the ban module, counting and error reporting. Per connection they share one `GuardConn`.
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

/**
 * @internal Everything the guards keep for one connection, in one object under one `conn.locals` entry:
 * one Map write at accept and one read per frame, not one per guard. Each field has one writer, named.
 */
export class GuardConn {
  /** Admission counted it among the open connections; close uncounts it. */
  counted = false;
  /** Admission counted it against its key in the store; close releases that. */
  keyCounted = false;
  /** The deadline timer's state (Timeouts), when the policy has deadlines. */
  deadlines: Deadlines | undefined = undefined;
  /** FrameRates: GCRA theoretical arrival times of the connection's own message and byte budgets (ms). */
  tatMessages = 0;
  tatBytes = 0;

  /** `key`: what the connection counts against, fixed when it enters accept. */
  constructor(readonly key: string) {}
}

const STATE = Symbol('sock.guards.connection');

/** The guards' state of a connection that entered accept with an address; undefined otherwise. */
export function guardConn(conn: ConnectionControl): GuardConn | undefined {
  return conn.locals.get(STATE) as GuardConn | undefined;
}

/** Admission: the connection entered accept and counts against `key` from now on. */
export function startGuardConn(conn: ConnectionControl, key: string): GuardConn {
  const state = new GuardConn(key);
  conn.locals.set(STATE, state);
  return state;
}

/** The key a connection counts against, fixed when it enters accept. */
export function connKey(conn: ConnectionControl): string | undefined {
  return guardConn(conn)?.key;
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
