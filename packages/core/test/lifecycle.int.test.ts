import { describe, expect, it } from 'vitest';
import {
  type Connection,
  connect,
  createServer,
  delimited,
  json,
  type SockError,
  type SockEvent,
  text,
} from '../src/index.js';
import { closeAfterEach, delay, rawClient, readAll, u32 } from './helpers.js';

const track = closeAfterEach();

describe('handler isolation', () => {
  it.each([
    [
      'throws',
      (): void => {
        throw new Error('boom');
      },
    ],
    [
      'rejects',
      async (): Promise<void> => {
        await delay(1);
        throw new Error('boom');
      },
    ],
  ])('a handler that %s closes only its own connection and is reported', async (_name, bad) => {
    const errors: Array<[SockError, number | undefined]> = [];
    let n = 0;
    const server = track(
      createServer({
        framing: delimited(),
        codec: text(),
        onError: (err, conn) => errors.push([err, conn?.id]),
        async handler(conn) {
          if (n++ === 0) return bad();
          for await (const m of conn) await conn.send(m);
        },
      }),
    );
    const { port } = await server.listen();
    const victim = await connect({ port, framing: delimited(), codec: text() });
    const info = await victim.closed;
    expect(info.reason).toMatch(/peer-closed|socket-error/);
    const healthy = await connect({ port, framing: delimited(), codec: text() });
    await healthy.send('still here');
    const it = healthy[Symbol.asyncIterator]();
    expect((await it.next()).value).toBe('still here');
    expect(errors).toHaveLength(1);
    expect(errors[0]?.[0]).toMatchObject({ code: 'ERR_SOCK_HANDLER_FAILED', reason: 'handler-error' });
    expect((errors[0]![0].cause as Error).message).toBe('boom');
    await healthy.close();
  });
});

describe('write buffer cap', () => {
  it('a peer that never reads hits ERR_SOCK_WRITE_BUFFER_FULL and is closed', async () => {
    const events: SockEvent[] = [];
    let failure: unknown;
    const server = track(
      createServer({
        maxWriteBufferBytes: 256 * 1024,
        observers: [(e) => events.push(e)],
        async handler(conn) {
          const chunk = Buffer.alloc(16 * 1024);
          // Not awaiting each send: a broadcaster that trusts the cap. Bounded at 64 MiB.
          for (let i = 0; i < 4096; i++) {
            void conn.send(chunk).catch((err) => {
              failure ??= err;
            });
          }
        },
      }),
    );
    const { port } = await server.listen();
    const socket = await rawClient(port);
    socket.pause(); // never read
    await delay(300);
    expect(failure).toMatchObject({ code: 'ERR_SOCK_WRITE_BUFFER_FULL' });
    expect(events.find((e) => e.type === 'reject')).toMatchObject({
      reason: 'write-buffer-full',
      closed: true,
    });
    socket.destroy();
  });
});

describe('peer reset', () => {
  it('a reset mid-frame closes that connection quietly; the server runs on', async () => {
    const closes: string[] = [];
    const server = track(
      createServer({
        observers: [(e) => e.type === 'close' && closes.push(e.reason)],
        async handler(conn) {
          for await (const m of conn) await conn.send(m);
        },
      }),
    );
    const { port } = await server.listen();
    const socket = await rawClient(port);
    socket.write(u32('complete'));
    socket.write(u32('never finished').subarray(0, 7));
    await delay(50);
    socket.resetAndDestroy();
    await delay(100);
    expect(server.stats()).toMatchObject({ open: 1, closed: 1 });
    expect(closes[0]).toMatch(/socket-error|peer-closed/);
    const client = await connect({ port });
    await client.send(Buffer.from('ok'));
    const it = client[Symbol.asyncIterator]();
    expect(String((await it.next()).value)).toBe('ok');
    await client.close();
  });
});

describe('inbound backpressure', () => {
  it('stops reading from a peer whose messages the handler does not take', async () => {
    let conn!: Connection<string, string>;
    const server = track(
      createServer<string, string>({
        framing: delimited(),
        codec: text(),
        maxQueuedMessages: 8,
        handler(c) {
          conn = c; // takes nothing
        },
      }),
    );
    const { port } = await server.listen();
    const socket = await rawClient(port);
    const line = `${'x'.repeat(1000)}\n`;
    for (let i = 0; i < 2000; i++) socket.write(line); // 2 MB, bounded
    await delay(300);
    // Reading paused after a handful of frames: at most what one read can carry beyond the queue limit.
    expect(conn.stats.framesIn).toBeLessThan(200);
    expect(conn.stats.bytesIn).toBeLessThan(2_000_000);
    let taken = 0;
    for await (const _ of conn) if (++taken === 2000) break;
    expect(taken).toBe(2000);
    socket.destroy();
  });
});

describe('close({ drainMs })', () => {
  it('delivers every acknowledged message, then closes every socket', async () => {
    const processed: number[] = [];
    let received = 0;
    const server = createServer<number, number>({
      framing: delimited(),
      codec: json(),
      // Frames the server cut, per connection, counted when it closes.
      observers: [
        (e) => {
          if (e.type === 'close') received += e.conn.stats.framesIn;
        },
      ],
      async handler(conn) {
        for await (const n of conn) {
          await delay(2); // work in flight
          processed.push(n);
          await conn.send(n);
        }
      },
    });
    const { port } = await server.listen();
    const clients = await Promise.all(
      [1, 2, 3].map(() => connect<number, number>({ port, framing: delimited(), codec: json() })),
    );
    const acked: number[] = [];
    const readers = clients.map(async (c) => {
      for await (const n of c) acked.push(n);
    });
    let n = 0;
    for (let round = 0; round < 30; round++) for (const c of clients) void c.send(n++).catch(() => {});
    // Drain while messages are queued: the handlers are 2 ms per message behind 90 sent at once.
    const conns = [...server.connections];
    await new Promise<void>((resolve) => {
      const check = () => (conns.every((c) => c.stats.framesIn > 3) ? resolve() : setTimeout(check, 2));
      check();
    });
    const queuedAtDrain = conns.reduce((sum, c) => sum + c.stats.framesIn, 0) - processed.length;
    await server.close({ drainMs: 2000 });
    await Promise.all(readers);
    expect(server.connections.size).toBe(0);
    expect(queuedAtDrain).toBeGreaterThan(0);
    // Every frame the server received before the drain was processed (none dropped from a queue) ...
    expect(processed).toHaveLength(received);
    // ... and every processed message was acknowledged, and nothing else was.
    expect(acked.sort((a, b) => a - b)).toEqual([...processed].sort((a, b) => a - b));
  });

  it('refuses new connections while draining', async () => {
    let release!: () => void;
    const busy = new Promise<void>((r) => {
      release = r;
    });
    let entered!: () => void;
    const inHandler = new Promise<void>((r) => {
      entered = r;
    });
    const server = createServer({
      async handler(conn) {
        for await (const _ of conn) {
          entered();
          await busy; // a connection still at work keeps the drain open
        }
      },
    });
    const { port } = await server.listen();
    const worker = await connect({ port });
    await worker.send(Buffer.from('work'));
    await inHandler;
    let drained = false;
    const closing = server.close({ drainMs: 10_000 }).then(() => {
      drained = true;
    });
    await expect(connect({ port, timeoutMs: 2000 })).rejects.toMatchObject({
      code: 'ERR_SOCK_CONNECTION_REFUSED',
    });
    // The refusal happened during the drain, not after it.
    expect(drained).toBe(false);
    expect(server.connections.size).toBe(1);
    release();
    await closing;
    expect(drained).toBe(true);
    await worker.closed;
  });
});

describe('raw peers', () => {
  it('a half-closing request/response peer still gets every answer', async () => {
    const server = track(
      createServer({
        framing: delimited(),
        codec: text(),
        async handler(conn) {
          for await (const m of conn) {
            await delay(1);
            await conn.send(`re:${m}`);
          }
        },
      }),
    );
    const { port } = await server.listen();
    const socket = await rawClient(port);
    const done = readAll(socket);
    socket.end('a\nb\nc\n');
    expect((await done).toString()).toBe('re:a\nre:b\nre:c\n');
  });
});

describe('local address', () => {
  const localOf = async (host: string, connectTo: string) => {
    const seen: Connection[] = [];
    const server = track(
      createServer({
        handler: async (conn) => {
          seen.push(conn);
          for await (const _ of conn);
        },
      }),
    );
    const { port } = await server.listen({ host, port: 0 });
    const socket = await rawClient(port, connectTo);
    await delay(0);
    while (seen.length === 0) await delay(5);
    socket.destroy();
    return { conn: seen[0]!, port };
  };

  it('a listener bound to one address gives it to every connection without asking the socket', async () => {
    const { conn, port } = await localOf('127.0.0.1', '127.0.0.1');
    expect([conn.localAddress, conn.localPort]).toEqual(['127.0.0.1', port]);
    // Node caches a getsockname() answer on the socket: none was made.
    expect((conn.socket as unknown as { _sockname?: unknown })._sockname ?? null).toBeNull();
  });

  it('a wildcard listener asks each socket: the address the peer reached, not the wildcard', async () => {
    const { conn, port } = await localOf('::', '127.0.0.1');
    expect([conn.localAddress, conn.localPort]).toEqual(['127.0.0.1', port]);
    const v6 = await localOf('::', '::1');
    expect([v6.conn.localAddress, v6.conn.localPort]).toEqual(['::1', v6.port]);
  });
});
