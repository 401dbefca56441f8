import type { SockError } from './errors.js';
import type { ConnectionInfo, Stage } from './pipeline.js';

/**
 * Everything the server decides or suffers, as one stream of events: metrics, logs and guards' strike
 * counting all read the same thing. Observers are called synchronously; one that throws is reported
 * once as a process warning and does not disturb the connection.
 */
export type SockEvent =
  | { readonly type: 'listening'; readonly address: string; readonly port: number; readonly family: string }
  | { readonly type: 'open'; readonly conn: ConnectionInfo }
  | RejectEvent
  | {
      readonly type: 'close';
      readonly conn: ConnectionInfo;
      readonly reason: string;
      readonly error?: SockError;
    }
  | { readonly type: 'error'; readonly conn?: ConnectionInfo; readonly error: SockError };

/**
 * A decision against a connection or one of its frames. `closed` says whether the connection was closed
 * for it; `shadow` marks decisions a plug-in only reports (shadow mode) without acting.
 */
export interface RejectEvent {
  readonly type: 'reject';
  readonly conn: ConnectionInfo;
  readonly stage: Stage;
  /** The plug-in that decided, or `core`. */
  readonly plugin: string;
  /** Stable reason code, e.g. `conn-limit-ip`, `frame-too-large`, `validation-failed`. */
  readonly reason: string;
  readonly message?: string | undefined;
  /** The key a guard counted against (an IP or prefix), when there is one. */
  readonly key?: string | undefined;
  readonly closed: boolean;
  readonly shadow: boolean;
  readonly error?: SockError | undefined;
  /** `server` when our own side is at fault (`plugin-error`), not the peer; absent or `peer` otherwise. */
  readonly fault?: 'peer' | 'server' | undefined;
}

export type Observer = (event: SockEvent) => void;

let warned = false;

/** Call each observer, isolating the rest (and the connection) from one that throws. */
export function notify(observers: readonly Observer[], event: SockEvent): void {
  for (const observer of observers) {
    try {
      observer(event);
    } catch (err) {
      if (!warned) {
        warned = true;
        process.emitWarning(
          `a sock observer threw and was skipped: ${(err as Error)?.message ?? String(err)}`,
        );
      }
    }
  }
}
