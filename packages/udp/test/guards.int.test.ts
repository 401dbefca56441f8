import { json, type SockEvent } from '@sock/core';
import { type BanEvent, createGuards, type GuardsPolicy } from '@sock/guards';
import { describe, expect, it, onTestFinished } from 'vitest';
import { clockAt } from '../../../test-support/clock.js';
import { createUdpClient, createUdpServer, createUdpSocket, type Datagram } from '../src/index.js';
import { delay, rawPeer, until } from './helpers.js';

function track<T extends { close(): Promise<void> | void }>(thing: T): T {
  onTestFinished(() => thing.close());
  return thing;
}

/** Guards on a frozen clock: no tokens come back during a test. */
function frozenGuards(policy: GuardsPolicy, onBan?: (e: BanEvent) => void) {
  const now = 1_700_000_000_000;
  return track(createGuards(policy, { clock: clockAt(() => now), ...(onBan ? { onBan } : {}) }));
}

/** Send `count` datagrams of `size` bytes from `host` to 127.0.0.1:`port`. */
async function sendFrom(host: string, port: number, count: number, size = 10) {
  const peer = track(await rawPeer(host));
  for (let i = 0; i < count; i++) await peer.send(Buffer.alloc(size, i), port, '127.0.0.1');
  return peer;
}

async function collect<T>(socket: AsyncIterable<T>, settleMs = 60): Promise<T[]> {
  const got: T[] = [];
  const it = socket[Symbol.asyncIterator]();
  for (;;) {
    const next = await Promise.race([it.next(), delay(settleMs).then(() => undefined)]);
    if (next === undefined || next.done) return got;
    got.push(next.value);
  }
}

describe('@sock/guards per datagram', () => {
  it('limits datagrams/s and bytes/s per source, each source on its own', async () => {
    const events: SockEvent[] = [];
    const guards = frozenGuards({
      rates: { datagrams: { perKey: { rate: 5, burst: 5 }, bytesPerKey: { rate: 1000, burst: 1000 } } },
      strikes: { threshold: 1000 },
    });
    const socket = track(
      createUdpSocket({
        guards: [guards],
        observers: [(e) => events.push(e)],
        dangerouslyTrustSourceAddresses: true,
      }),
    );
    const { port } = await socket.bind({ host: '0.0.0.0', port: 0 });
    await sendFrom('127.0.0.2', port, 8);
    await sendFrom('127.0.0.3', port, 3);
    await sendFrom('127.0.0.4', port, 3, 400);
    const got = await collect<Datagram<Buffer>>(socket);
    const by = (a: string) => got.filter((d) => d.address === a).length;
    expect([by('127.0.0.2'), by('127.0.0.3'), by('127.0.0.4')]).toEqual([5, 3, 2]);
    expect(socket.stats().droppedBy).toEqual({ 'rate-datagrams': 3, 'rate-datagram-bytes': 1 });
    const rejects = events.filter((e) => e.type === 'reject');
    expect(rejects[0]).toMatchObject({
      plugin: 'guards',
      reason: 'rate-datagrams',
      key: '127.0.0.2',
      stage: 'accept',
    });
    const snapshot = await guards.snapshot();
    expect(snapshot.rejected).toMatchObject({ 'rate-datagrams': 3, 'rate-datagram-bytes': 1 });
  });

  it('applies the IP policy and bans, and strikes sources for invalid datagrams until banned', async () => {
    const bans: string[] = [];
    const guards = frozenGuards(
      { ip: { deny: ['127.0.0.5'] }, strikes: { threshold: 3 }, bans: { duration: '1m' } },
      (e) => bans.push(e.key),
    );
    const socket = track(
      createUdpSocket({ codec: json(), guards: [guards], dangerouslyTrustSourceAddresses: true }),
    );
    const { port } = await socket.bind({ host: '0.0.0.0', port: 0 });
    const denied = await sendFrom('127.0.0.5', port, 1);
    const bad = track(await rawPeer('127.0.0.6'));
    for (let i = 0; i < 3; i++) await bad.send(Buffer.from('{nope'), port, '127.0.0.1');
    await until(() => bans.length > 0);
    expect(bans).toEqual(['127.0.0.6']);
    await bad.send(Buffer.from('{"ok":true}'), port, '127.0.0.1');
    const good = track(await rawPeer('127.0.0.7'));
    await good.send(Buffer.from('{"ok":1}'), port, '127.0.0.1');
    const got = await collect<Datagram<unknown>>(socket);
    expect(got.map((d) => d.address)).toEqual(['127.0.0.7']);
    expect(socket.stats().droppedBy).toEqual({ 'ip-denied': 1, 'invalid-message': 3, banned: 1 });
    expect(denied.received).toHaveLength(0);
  });

  it('protects a request/response server: a flooding source is cut off, the others are served', async () => {
    let runs = 0;
    const guards = frozenGuards({ rates: { datagrams: { perKey: { rate: 3, burst: 3 } } } });
    const server = track(
      createUdpServer({
        guards: [guards],
        // Clients prove their address with a cookie; only then do guards count them.
        cookies: {},
        handler: (req: Buffer) => {
          runs++;
          return req;
        },
      }),
    );
    const { port } = await server.bind({ host: '0.0.0.0', port: 0 });
    const retry = { attempts: 2, initialDelayMs: 40, jitter: 0 };
    const flooder = track(createUdpClient({ host: '127.0.0.1', port, localAddress: '127.0.0.8', retry }));
    const polite = track(createUdpClient({ host: '127.0.0.1', port, localAddress: '127.0.0.9', retry }));
    const results = await Promise.allSettled(
      Array.from({ length: 6 }, (_, i) => flooder.request(Buffer.from(`f${i}`))),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(3);
    expect(results.filter((r) => r.status === 'rejected')[0]).toMatchObject({
      reason: { code: 'ERR_SOCK_REQUEST_TIMEOUT' },
    });
    expect((await polite.request(Buffer.from('hello'))).toString()).toBe('hello');
    expect(runs).toBe(4);
    expect(server.stats().droppedBy['rate-datagrams']).toBeGreaterThanOrEqual(3);
  });
});
