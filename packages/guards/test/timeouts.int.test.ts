import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { createGuards } from '../src/index.js';
import { attempt, delay, guardedServer, reasons, u32 } from './helpers.js';

/** Write `data` one byte every `everyMs` until the socket closes; resolves when it closes. */
async function trickle(socket: import('node:net').Socket, data: Buffer, everyMs: number): Promise<void> {
  for (let i = 0; i < data.length && !socket.closed && !socket.destroyed; i++) {
    socket.write(data.subarray(i, i + 1));
    await delay(everyMs);
  }
  if (!socket.closed) await once(socket, 'close');
}

const noRates = { connections: false as const };

describe('timeouts', () => {
  it('cuts a slowloris client at the absolute first-frame deadline, however it trickles', async () => {
    const guards = createGuards({
      timeouts: { firstFrame: '300ms', idle: '200ms', minRate: false },
      rates: noRates,
    });
    const { port, rejects } = await guardedServer(guards);
    const { socket } = await attempt(port, '127.0.0.1', '127.0.0.80');
    const started = Date.now();
    // One byte every 40ms keeps an idle timeout of 200ms from ever firing; the deadline does not move.
    await trickle(socket, u32(Buffer.alloc(1000)), 40);
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(1500);
    expect(reasons(rejects)).toEqual(['handshake-timeout']);
    expect(rejects[0]).toMatchObject({ stage: 'handshake', plugin: 'guards' });
  });

  it('closes an idle connection', async () => {
    const guards = createGuards({
      timeouts: { handshake: false, idle: '150ms', minRate: false },
      rates: noRates,
    });
    const { port, rejects } = await guardedServer(guards);
    const { socket } = await attempt(port, '127.0.0.1', '127.0.0.81');
    const started = Date.now();
    await once(socket, 'close');
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(100);
    expect(elapsed).toBeLessThan(1000);
    expect(reasons(rejects)).toEqual(['idle-timeout']);
  });

  it('ends a busy connection at its maximum lifetime', async () => {
    const guards = createGuards({
      timeouts: { firstFrame: false, idle: false, lifetime: '300ms', minRate: false },
      rates: noRates,
    });
    const { port, rejects } = await guardedServer(guards);
    // From before the connect: accept (where the lifetime starts) can only come later, however slow.
    const started = Date.now();
    const { socket } = await attempt(port, '127.0.0.1', '127.0.0.82');
    const timer = setInterval(() => socket.write(u32('ping')), 20);
    await once(socket, 'close');
    clearInterval(timer);
    expect(Date.now() - started).toBeGreaterThanOrEqual(295);
    expect(reasons(rejects)).toEqual(['lifetime']);
  });

  it('cuts a frame trickled below the minimum rate after the grace period', async () => {
    const guards = createGuards({
      timeouts: { handshake: false, idle: false, minRate: { bytesPerSecond: 200, grace: '250ms' } },
      rates: noRates,
    });
    const { port, rejects } = await guardedServer(guards);
    const { socket } = await attempt(port, '127.0.0.1', '127.0.0.83');
    socket.write(u32('a complete first frame'));
    await once(socket, 'data');
    await trickle(socket, u32(Buffer.alloc(1000)), 30);
    expect(reasons(rejects)).toEqual(['min-rate']);
  });

  it('leaves a fast sender alone', async () => {
    const guards = createGuards({
      timeouts: { handshake: '200ms', idle: '300ms', minRate: { bytesPerSecond: 200, grace: '100ms' } },
      rates: noRates,
    });
    const { port, rejects } = await guardedServer(guards);
    const { socket } = await attempt(port, '127.0.0.1', '127.0.0.84');
    for (let i = 0; i < 20; i++) {
      socket.write(u32(`message ${i}`));
      await delay(25);
    }
    expect(socket.closed).toBe(false);
    expect(rejects).toEqual([]);
  });

  it('in shadow mode reports a timeout once and keeps the connection', async () => {
    const guards = createGuards({
      timeouts: { handshake: '100ms', idle: false, minRate: false, shadow: true },
      rates: noRates,
    });
    const { port, rejects } = await guardedServer(guards);
    const { socket } = await attempt(port, '127.0.0.1', '127.0.0.85');
    await delay(400);
    expect(socket.closed).toBe(false);
    expect(rejects.map((r) => [r.reason, r.shadow, r.closed])).toEqual([['handshake-timeout', true, false]]);
  });
});
