import type { Observer } from '@sock/core';
import { createRing } from '@sock/observe';

/**
 * The demo's memory of what happened, for the tour's checks: the newest `capacity` decisions as plain
 * records. It used to keep every observer event forever, each holding its connection (sockets, buffers):
 * memory grew with every connection the service ever saw.
 *
 * @public (named in `startService`'s inferred return type, so its declaration must be exported)
 */
export interface RecentEvent {
  readonly type: 'open' | 'close' | 'reject' | 'error';
  readonly at: number;
  readonly remoteAddress?: string | undefined;
  readonly listener: string;
  readonly reason?: string | undefined;
  readonly stage?: string | undefined;
  readonly plugin?: string | undefined;
  readonly closed?: boolean | undefined;
}

export interface RecentEvents {
  observer(listener: string): Observer;
  list(): RecentEvent[];
}

export function createRecentEvents(capacity = 1000): RecentEvents {
  const ring = createRing<RecentEvent>(capacity);
  return {
    observer: (listener) => (e) => {
      if (e.type === 'listening') return;
      ring.push({
        type: e.type,
        at: Date.now(),
        listener,
        remoteAddress: e.conn?.remoteAddress,
        ...(e.type === 'reject'
          ? { reason: e.reason, stage: e.stage, plugin: e.plugin, closed: e.closed }
          : e.type === 'close'
            ? { reason: e.reason }
            : e.type === 'error'
              ? { reason: e.error.reason }
              : {}),
      });
    },
    list: () => ring.toArray(),
  };
}
