import { json, SockError, type SockEvent, text } from '@sock/core';
import { describe, expect, it, onTestFinished } from 'vitest';
import { createUdpSocket, type Datagram, type DatagramGuard, type UdpSocket } from '../src/index.js';
import { delay, rawPeer, until } from './helpers.js';

function track<T extends { close(): Promise<void> }>(thing: T): T {
  onTestFinished(() => thing.close());
  return thing;
}

async function next<T>(socket: AsyncIterable<T>, ms = 2000): Promise<T> {
  const it = socket[Symbol.asyncIterator]();
  const result = await Promise.race([
    it.next(),
    delay(ms).then(() => {
      throw new Error(`no datagram within ${ms} ms`);
    }),
  ]);
  if (result.done) throw new Error('iteration ended');
  return result.value;
}

async function echoServer(host: string): Promise<UdpSocket<string, string>> {
  const server = track(createUdpSocket({ codec: text() }));
  await server.bind({ host, port: 0 });
  (async () => {
    for await (const d of server)
      await server.send(`echo:${d.message}`, { address: d.address, port: d.port });
  })();
  return server;
}

/** A text codec whose decode is asynchronous, like a schema that validates asynchronously. */
const schema = {
  '~standard': {
    version: 1 as const,
    vendor: 'test',
    validate: (value: unknown) =>
      typeof value === 'object' && value !== null && typeof (value as { n?: unknown }).n === 'number'
        ? { value: value as { n: number } }
        : { issues: [{ message: 'n must be a number', path: ['n'] }] },
  },
};

describe('UDP socket', () => {
  for (const host of ['127.0.0.1', '::1']) {
    it(`echoes over ${host.includes(':') ? 'IPv6' : 'IPv4'}`, async () => {
      const server = await echoServer(host);
      const { port } = server.address()!;
      const client = track(createUdpSocket({ codec: text() }));
      await client.bind({ host, port: 0 });
      expect(await client.send('hi', { address: host, port })).toBe(true);
      const reply = await next(client);
      expect(reply).toMatchObject({ message: 'echo:hi', address: host, port, size: 7 });
      expect(reply.family).toBe(host.includes(':') ? 'IPv6' : 'IPv4');
      expect(client.stats()).toMatchObject({
        datagramsOut: 1,
        datagramsIn: 1,
        admitted: 1,
        bytesOut: 2,
        bytesIn: 7,
      });
    });
  }

  it('reports IPv4 peers of a dual-stack socket as IPv4 and answers them', async () => {
    const server = await echoServer('::');
    const client = track(createUdpSocket({ codec: text() }));
    await client.bind({ host: '127.0.0.1', port: 0 });
    await client.send('v4', { address: '127.0.0.1', port: server.address()!.port });
    expect((await next(client)).message).toBe('echo:v4');
  });

  it('sends without an address in connected mode and only hears its peer', async () => {
    const server = await echoServer('127.0.0.1');
    const stranger = track(await rawPeer());
    const client = track(createUdpSocket({ codec: text() }));
    await client.connect({ host: '127.0.0.1', port: server.address()!.port });
    expect(client.remoteAddress()).toMatchObject({ address: '127.0.0.1', port: server.address()!.port });
    await stranger.send(Buffer.from('noise'), client.address()!.port);
    await client.send('c');
    expect((await next(client)).message).toBe('echo:c');
    // A negative check (the stranger's datagram is never delivered): nothing signals "never", so this one waits.
    await delay(20);
    expect(client.stats().datagramsIn).toBe(1);
  });

  it('drops and counts datagrams over maxPayloadBytes, and reports them', async () => {
    const events: SockEvent[] = [];
    const strikes: string[] = [];
    const guard: DatagramGuard = {
      name: 'strikes',
      violation: (s, v) => strikes.push(`${s.address}:${v.reason}`),
    };
    const server = track(
      createUdpSocket({
        maxPayloadBytes: 100,
        observers: [(e) => events.push(e)],
        guards: [guard],
        dangerouslyTrustSourceAddresses: true,
      }),
    );
    const { port } = await server.bind();
    const peer = track(await rawPeer());
    await peer.send(Buffer.alloc(101, 1), port);
    await peer.send(Buffer.alloc(100, 2), port);
    const d = await next(server);
    expect(d.size).toBe(100);
    expect(d.message[0]).toBe(2);
    expect(server.stats()).toMatchObject({
      datagramsIn: 2,
      admitted: 1,
      droppedBy: { 'frame-too-large': 1 },
    });
    const reject = events.find((e) => e.type === 'reject');
    expect(reject).toMatchObject({ stage: 'frame', reason: 'frame-too-large', plugin: 'udp', closed: false });
    expect(reject?.type === 'reject' && reject.conn).toMatchObject({
      remoteAddress: '127.0.0.1',
      transport: 'udp',
    });
    expect(strikes).toEqual(['127.0.0.1:frame-too-large']);
  });

  it('throws a typed error for an oversize send, and accepts the configured maximum', async () => {
    const socket = track(createUdpSocket({ maxPayloadBytes: 1232 }));
    await socket.bind();
    const err = await socket.send(Buffer.alloc(1233), { address: '127.0.0.1', port: 9 }).catch((e) => e);
    expect(SockError.isInstance(err)).toBe(true);
    expect(err).toMatchObject({ code: 'ERR_SOCK_FRAME_TOO_LARGE' });
    expect(err.message).toMatch(/1233 bytes exceeds maxPayloadBytes 1232; raise maxPayloadBytes/);
    expect(() => createUdpSocket({ maxPayloadBytes: 65_508 })).toThrow(/from 1 to 65507/);
    const jsonSocket = track(createUdpSocket({ codec: json() }));
    await expect(jsonSocket.send(undefined, { address: '127.0.0.1', port: 9 })).rejects.toMatchObject({
      code: 'ERR_SOCK_INVALID_MESSAGE',
    });

    const big = track(createUdpSocket({ maxPayloadBytes: 65_507, receiveBufferSize: 1 << 20 }));
    const { port } = await big.bind();
    await socket.close();
    const sender = track(createUdpSocket({ maxPayloadBytes: 65_507 }));
    expect(sender.address()).toBeNull();
    await sender.send(Buffer.alloc(65_507, 7), { address: '127.0.0.1', port });
    const received = await next(big);
    expect(received.size).toBe(65_507);
    expect(sender.address()?.port).toBe(received.port);
  });

  it('sets receive and send buffer sizes', async () => {
    const socket = track(createUdpSocket({ receiveBufferSize: 65_536, sendBufferSize: 32_768 }));
    await socket.bind();
    const sizes = socket.bufferSizes();
    // Linux doubles what is asked for.
    expect(sizes.receive).toBeGreaterThanOrEqual(65_536);
    expect(sizes.send).toBeGreaterThanOrEqual(32_768);
  });

  it('drops invalid JSON and schema failures, counts them by reason and strikes the source', async () => {
    const strikes: string[] = [];
    const server = track(
      createUdpSocket({
        codec: json({ schema }),
        guards: [{ name: 'strikes', violation: (_s, v) => strikes.push(v.reason) }],
        dangerouslyTrustSourceAddresses: true,
      }),
    );
    const { port } = await server.bind();
    const peer = track(await rawPeer());
    await peer.send(Buffer.from('{not json'), port);
    await peer.send(Buffer.from('{"n":"x"}'), port);
    await peer.send(Buffer.from('{"n":1}'), port);
    expect((await next(server)).message).toEqual({ n: 1 });
    expect(server.stats().droppedBy).toEqual({ 'invalid-message': 1, 'validation-failed': 1 });
    expect(strikes.sort()).toEqual(['invalid-message', 'validation-failed']);
  });

  it('drops and counts datagrams when the consumer lags (bounded queue)', async () => {
    const server = track(createUdpSocket({ maxQueue: 2 }));
    const { port } = await server.bind();
    const peer = track(await rawPeer());
    for (let i = 0; i < 5; i++) await peer.send(Buffer.from([i]), port);
    await until(() => server.stats().admitted === 5);
    expect(server.stats()).toMatchObject({ admitted: 5, queued: 2, droppedBy: { 'queue-full': 1 * 3 } });
    expect((await next(server)).message[0]).toBe(0);
    expect((await next(server)).message[0]).toBe(1);
  });

  it('admits per datagram through its hook: a rejected source is dropped, a shadow rejection reported', async () => {
    const events: SockEvent[] = [];
    const server = track(
      createUdpSocket({
        admit: (source) =>
          source.address === '127.0.0.2'
            ? { reason: 'ip-denied', key: source.address }
            : source.address === '127.0.0.3'
              ? { reason: 'would-deny', shadow: true }
              : undefined,
        observers: [(e) => events.push(e)],
      }),
    );
    const { port } = await server.bind({ host: '0.0.0.0', port: 0 });
    for (const host of ['127.0.0.2', '127.0.0.3', '127.0.0.4']) {
      const peer = track(await rawPeer(host));
      await peer.send(Buffer.from(host), port, '127.0.0.1');
    }
    const got = [await next(server), await next(server)].map((d: Datagram<Buffer>) => d.address).sort();
    expect(got).toEqual(['127.0.0.3', '127.0.0.4']);
    expect(server.stats()).toMatchObject({ droppedBy: { 'ip-denied': 1 }, reportedBy: { 'would-deny': 1 } });
    expect(events.filter((e) => e.type === 'reject')).toMatchObject([
      { reason: 'ip-denied', plugin: 'admit', key: '127.0.0.2', stage: 'accept', shadow: false },
      { reason: 'would-deny', shadow: true },
    ]);
  });

  it('awaits asynchronous verdicts, and fails closed when a guard throws', async () => {
    const errors: string[] = [];
    const server = track(
      createUdpSocket({
        guards: [
          {
            name: 'async',
            admit: async (source) => (source.size === 3 ? { reason: 'async-deny' } : undefined),
          },
          {
            name: 'broken',
            admit: (source) => {
              if (source.size === 4) throw new Error('bug');
            },
          },
        ],
        observers: [(e) => e.type === 'error' && errors.push(e.error.message)],
      }),
    );
    const { port } = await server.bind();
    const peer = track(await rawPeer());
    await peer.send(Buffer.from('abc'), port);
    await peer.send(Buffer.from('abcd'), port);
    await peer.send(Buffer.from('ok'), port);
    expect((await next(server)).message.toString()).toBe('ok');
    await until(() => Object.values(server.stats().droppedBy).reduce((a, b) => a + b, 0) === 2);
    expect(server.stats().droppedBy).toEqual({ 'async-deny': 1, 'guard-failed': 1 });
    expect(errors).toEqual(['guard broken failed: bug']);
  });

  it('caps sends to an unvalidated source at 3x what it sent, until validated', async () => {
    const events: SockEvent[] = [];
    const server = track(createUdpSocket({ antiAmplification: true, observers: [(e) => events.push(e)] }));
    const { port } = await server.bind();
    const peer = track(await rawPeer());
    const to = { address: '127.0.0.1', port: peer.port };
    expect(await server.send(Buffer.alloc(1), to)).toBe(false); // never heard from: budget 0
    await peer.send(Buffer.alloc(10), port);
    await next(server);
    expect(await server.send(Buffer.alloc(25), to)).toBe(true);
    expect(await server.send(Buffer.alloc(6), to)).toBe(false); // 31 > 30
    expect(await server.send(Buffer.alloc(5), to)).toBe(true); // exactly 30
    server.validate('127.0.0.1', peer.port);
    expect(await server.send(Buffer.alloc(1000), to)).toBe(true);
    await peer.waitFor(3);
    expect(peer.received.map((r) => r.data.length)).toEqual([25, 5, 1000]);
    expect(server.stats().withheldBy).toEqual({ 'amplification-limit': 2 });
    expect(events.filter((e) => e.type === 'reject').map((e) => e.type === 'reject' && e.reason)).toEqual([
      'amplification-limit',
      'amplification-limit',
    ]);
  });

  it('closes: close() resolves, iteration ends after the queue drains, send then throws', async () => {
    const server = createUdpSocket();
    const { port } = await server.bind();
    const peer = track(await rawPeer());
    await peer.send(Buffer.from('last'), port);
    await until(() => server.stats().datagramsIn === 1);
    const seen: string[] = [];
    const loop = (async () => {
      for await (const d of server) seen.push(d.message.toString());
    })();
    await server.close();
    await loop;
    expect(seen).toEqual(['last']);
    await expect(server.send(Buffer.from('x'), { address: '127.0.0.1', port })).rejects.toMatchObject({
      code: 'ERR_SOCK_CONNECTION_CLOSED',
    });
    await server.close(); // idempotent
  });

  it('ends datagrams() with ERR_SOCK_ABORTED when its signal aborts, and aborts bind', async () => {
    const server = track(createUdpSocket());
    await server.bind();
    const ac = new AbortController();
    const loop = (async () => {
      for await (const _ of server.datagrams({ signal: ac.signal })) {
        // nothing arrives
      }
    })();
    ac.abort();
    await expect(loop).rejects.toMatchObject({ code: 'ERR_SOCK_ABORTED' });
    // The aborted iteration took nothing with it: the next datagram reaches the next reader.
    const peer = track(await rawPeer());
    await peer.send(Buffer.from('after'), server.address()!.port);
    expect((await next(server)).message.toString()).toBe('after');
    const other = track(createUdpSocket());
    await expect(other.bind({ signal: AbortSignal.abort() })).rejects.toMatchObject({
      code: 'ERR_SOCK_ABORTED',
    });
  });
});
