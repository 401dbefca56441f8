import type { ConnectionInfo } from '@sock/core';
import { expect, it } from 'vitest';
import { createRecentEvents } from './recent-events.js';

it('keeps the newest decisions as plain records: no connection is held, however many come', () => {
  const recent = createRecentEvents(1000);
  const observe = recent.observer('direct');
  for (let i = 0; i < 5000; i++) {
    const conn = {
      remoteAddress: `127.0.0.${i % 250}`,
      socket: Buffer.alloc(1024),
    } as unknown as ConnectionInfo;
    observe({
      type: 'reject',
      conn,
      stage: 'accept',
      plugin: 'guards',
      reason: `r${i}`,
      closed: true,
      shadow: false,
    });
  }
  const list = recent.list();
  expect(list).toHaveLength(1000);
  expect(list[0]).toMatchObject({ reason: 'r4000', listener: 'direct', stage: 'accept', closed: true });
  expect(list.at(-1)?.reason).toBe('r4999');
  for (const e of list) expect(Object.keys(e)).not.toContain('conn');
});
