// The example plug-in's tests, written against @sock/core's README and @sock/core/testing alone: no
// socket, no wall-clock wait; every window is crossed in virtual time.
import { delimited, text } from '@sock/core';
import { createHarness } from '@sock/core/testing';
import { describe, expect, it } from 'vitest';
import { messageQuota } from './message-quota.js';

function quotaServer(quota: ReturnType<typeof messageQuota>) {
  const got: string[] = [];
  const h = createHarness({
    framing: delimited(),
    codec: text(),
    plugins: [quota],
    onMessage: (m) => {
      got.push(m);
    },
  });
  return { h, got };
}

describe('messageQuota', () => {
  it('lets max messages per window through and closes on the next, naming the key', async () => {
    const quota = messageQuota({ max: 3, windowMs: 1000 });
    const { h, got } = quotaServer(quota);
    const peer = h.connect({ remoteAddress: '203.0.113.5' });
    peer.write('a\nb\nc\nd\ne\n');
    await h.settle();
    expect(got).toEqual(['a', 'b', 'c']);
    expect(peer.violations).toMatchObject([
      { stage: 'frame', plugin: 'message-quota', reason: 'message-quota', key: '203.0.113.5', closed: true },
    ]);
    expect(peer.closeInfo?.reason).toBe('message-quota');
    expect(h.server.stats().rejected).toEqual({ 'message-quota': 1 });
    expect(quota.stats()).toEqual({ keys: 1, rejected: 1 });
  });

  it('a new window starts windowMs after the first message (virtual time)', async () => {
    const { h, got } = quotaServer(messageQuota({ max: 2, windowMs: 60_000 }));
    const peer = h.connect();
    peer.write('1\n2\n');
    await h.advance(59_999);
    peer.write('3\n'); // still the first window: one too many ...
    await h.settle();
    expect(peer.closeInfo?.reason).toBe('message-quota');
    const next = h.connect(); // same address, fresh connection, same window
    await h.advance(1);
    next.write('4\n5\n'); // ... the window has turned: two more are fine
    await h.settle();
    expect(got).toEqual(['1', '2', '4', '5']);
    expect(next.closeInfo).toBeUndefined();
    await h.close();
  });

  it('counts per key: connections of one address share it, another address has its own', async () => {
    const { h, got } = quotaServer(messageQuota({ max: 2, windowMs: 1000 }));
    const first = h.connect({ remoteAddress: '198.51.100.1' });
    const second = h.connect({ remoteAddress: '198.51.100.1' });
    const other = h.connect({ remoteAddress: '198.51.100.2' });
    first.write('x1\n');
    second.write('x2\n');
    other.write('y1\ny2\n');
    await h.settle();
    second.write('x3\n');
    await h.settle();
    expect(second.closeInfo?.reason).toBe('message-quota');
    expect(first.closeInfo).toBeUndefined();
    expect(other.closeInfo).toBeUndefined();
    expect(got.sort()).toEqual(['x1', 'x2', 'y1', 'y2']);
    await h.close();
  });

  it('a message split over many reads counts once', async () => {
    const { h, got } = quotaServer(messageQuota({ max: 1, windowMs: 1000 }));
    const peer = h.connect();
    for (const ch of 'one message\n') peer.write(ch);
    await h.settle();
    expect(got).toEqual(['one message']);
    expect(peer.closeInfo).toBeUndefined();
    await h.close();
  });

  it('tracks at most maxKeys keys: a flood of addresses cannot grow its memory', async () => {
    const quota = messageQuota({ max: 1, windowMs: 1000, maxKeys: 50 });
    const { h } = quotaServer(quota);
    for (let i = 0; i < 300; i++) h.connect({ remoteAddress: `10.0.${i >> 8}.${i & 255}` }).write('m\n');
    await h.settle();
    expect(quota.stats().keys).toBe(50);
    await h.close();
  });

  it('refuses bad options with a SockError naming the option', () => {
    expect(() => messageQuota({ max: 0, windowMs: 1000 })).toThrow(
      expect.objectContaining({ code: 'ERR_SOCK_INVALID_OPTION', message: expect.stringContaining('max') }),
    );
    expect(() => messageQuota({ max: 1, windowMs: Number.NaN })).toThrow(/windowMs/);
  });
});
