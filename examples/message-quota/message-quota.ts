// An example plug-in, written against @sock/core's README alone: N messages per key per window. It reads
// time from `conn.clock`, so its tests run in virtual time with @sock/core/testing.
import { type ConnectionInfo, type Plugin, reject, SockError, SockErrorCode } from '@sock/core';

export interface MessageQuotaOptions {
  /** Messages (frames) each key may send per window. */
  max: number;
  /** The window, in ms; a key's window starts with its first message. */
  windowMs: number;
  /** What a message counts against. Default the peer's address (all its connections share the quota). */
  key?: (conn: ConnectionInfo) => string;
  /**
   * Keys tracked at once. Beyond it the key whose window started first is forgotten (it starts over):
   * memory stays bounded whatever the number of peers. Default 10,000.
   */
  maxKeys?: number;
}

export interface MessageQuota extends Plugin {
  stats(): { keys: number; rejected: number };
}

interface Window {
  start: number;
  count: number;
}

/** Close a connection whose key sends more than `max` messages within `windowMs` (reason `message-quota`). */
export function messageQuota(options: MessageQuotaOptions): MessageQuota {
  const { max, windowMs, maxKeys = 10_000 } = options;
  for (const [name, value] of [
    ['max', max],
    ['windowMs', windowMs],
    ['maxKeys', maxKeys],
  ] as const) {
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new SockError(
        SockErrorCode.INVALID_OPTION,
        `messageQuota: ${name} must be a positive integer, got ${value}`,
      );
    }
  }
  const keyOf = options.key ?? ((conn: ConnectionInfo) => conn.remoteAddress);
  // Map order is insertion order: a key is re-inserted when its window restarts, so the first entry is
  // always the oldest window, the one to forget at the bound.
  const windows = new Map<string, Window>();
  const KEY = Symbol('message-quota key');
  let rejected = 0;

  return {
    name: 'message-quota',
    accept(conn) {
      // Computed once per connection, not per frame: the frame hook is the hot path.
      conn.locals.set(KEY, keyOf(conn));
    },
    frame(conn) {
      const key = conn.locals.get(KEY) as string;
      const now = conn.clock.now();
      let w = windows.get(key);
      if (w === undefined || now - w.start >= windowMs) {
        if (w !== undefined) windows.delete(key);
        else if (windows.size >= maxKeys) windows.delete(windows.keys().next().value as string);
        w = { start: now, count: 0 };
        windows.set(key, w);
      }
      if (++w.count <= max) return undefined;
      rejected++;
      return reject('message-quota', { key, message: `more than ${max} messages in ${windowMs} ms` });
    },
    stats: () => ({ keys: windows.size, rejected }),
  };
}
