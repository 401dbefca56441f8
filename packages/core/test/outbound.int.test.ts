import { once } from 'node:events';
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { type Connection, createServer, lengthPrefixed, type SockEvent } from '../src/index.js';
import { closeAfterEach, rawClient, readAll, u32 } from './helpers.js';

const track = closeAfterEach();

/** Count the socket's write calls: `_write` for one chunk, `_writev` for a batch (and its chunk count). */
function countWrites(socket: Socket): { writes: number; writevs: number[] } {
  const seen = { writes: 0, writevs: [] as number[] };
  const s = socket as unknown as {
    _write: (...a: unknown[]) => void;
    _writev: (chunks: unknown[], cb: unknown) => void;
  };
  const write = s._write.bind(socket);
  const writev = s._writev.bind(socket);
  s._write = (...a) => {
    seen.writes++;
    write(...a);
  };
  s._writev = (chunks, cb) => {
    seen.writevs.push(chunks.length);
    writev(chunks, cb);
  };
  return seen;
}

/** Eight frames in one TCP write, so the server reads them in one chunk. */
function eightFrames(): Buffer {
  return Buffer.concat(Array.from({ length: 8 }, (_, i) => u32(Buffer.from(`frame-${i}`))));
}

async function echoedCalls(serve: 'handler' | 'onMessage'): Promise<{ writes: number; writevs: number[] }> {
  let seen: { writes: number; writevs: number[] } | undefined;
  // Counting starts before the first reply: at the handler's start, or at the listener's first message.
  const watch = (conn: Connection) => {
    seen ??= countWrites(conn.socket as Socket);
  };
  const server = track(
    createServer({
      framing: lengthPrefixed(),
      ...(serve === 'handler'
        ? {
            async handler(conn: Connection) {
              watch(conn);
              for await (const m of conn) await conn.send(m);
            },
          }
        : {
            onMessage: (m: Buffer, conn: Connection) => {
              watch(conn);
              return conn.send(m);
            },
          }),
    }),
  );
  const { port } = await server.listen();
  const socket = await rawClient(port);
  const got: Buffer[] = [];
  let bytes = 0;
  const all = eightFrames();
  const done = new Promise<void>((resolve) =>
    socket.on('data', (c: Buffer) => {
      got.push(c);
      bytes += c.length;
      if (bytes >= all.length) resolve();
    }),
  );
  socket.write(all);
  await done;
  expect(Buffer.concat(got)).toEqual(all);
  socket.destroy();
  return seen!;
}

describe('outbound batching', () => {
  it('the replies to eight frames of one read leave in two writes: the first at once, the rest in one writev (handler with await)', async () => {
    const seen = await echoedCalls('handler');
    expect(seen).toEqual({ writes: 1, writevs: [7] });
  });

  it('the same for an onMessage listener returning conn.send()', async () => {
    const seen = await echoedCalls('onMessage');
    expect(seen).toEqual({ writes: 1, writevs: [7] });
  });

  it('a reply sent just before destroy() still reaches the peer', async () => {
    const server = track(
      createServer({
        framing: lengthPrefixed(),
        async handler(conn) {
          for await (const m of conn) {
            void conn.send(m);
            conn.destroy();
          }
        },
      }),
    );
    const { port } = await server.listen();
    const socket = await rawClient(port);
    const received = readAll(socket);
    socket.write(u32(Buffer.from('last words')));
    expect(await received).toEqual(u32(Buffer.from('last words')));
  });

  it('a listener returning send() to a peer that never reads is paced, not killed, and memory stays bounded', async () => {
    const events: SockEvent[] = [];
    let conn: Connection | undefined;
    const server = track(
      createServer({
        framing: lengthPrefixed({ maxFrameBytes: 64 * 1024 }),
        maxWriteBufferBytes: 256 * 1024,
        observers: [(e) => events.push(e)],
        onMessage: (m, c) => {
          conn = c;
          return c.send(m);
        },
      }),
    );
    const { port } = await server.listen();
    const socket = await rawClient(port);
    socket.pause(); // never read
    const frame = u32(Buffer.alloc(32 * 1024, 1));
    // Write 32 MiB (bounded) or until the kernel pushes back on us: the server has stopped reading.
    let written = 0;
    while (written < 32 * 1024 * 1024) {
      written += frame.length;
      if (!socket.write(frame)) {
        const drained = once(socket, 'drain').then(() => true);
        const stalled = new Promise<boolean>((r) => setTimeout(() => r(false), 500));
        if (!(await Promise.race([drained, stalled]))) break;
      }
    }
    expect(written).toBeLessThan(32 * 1024 * 1024);
    expect(conn).toBeDefined();
    // The server waits on the one send above the high-water mark: what it queued stays under the cap.
    expect(conn!.closing).toBe(false);
    expect(conn!.socket.writableLength).toBeLessThanOrEqual(256 * 1024);
    expect(events.some((e) => e.type === 'reject')).toBe(false);
    socket.destroy();
  });

  it('a peer that sends its FIN and never reads what we still owe it is destroyed at closeTimeoutMs', async () => {
    let closed: Promise<{ reason: string }> | undefined;
    const server = track(
      createServer({
        framing: lengthPrefixed({ maxFrameBytes: 1024 * 1024 }),
        maxWriteBufferBytes: 32 * 1024 * 1024,
        closeTimeoutMs: 100,
        async handler(conn) {
          closed = conn.closed;
          // More than loopback's socket buffers hold, not awaited: most of it stays queued in the process.
          const big = Buffer.alloc(1024 * 1024);
          for (let i = 0; i < 24; i++) void conn.send(big);
          for await (const _ of conn) {
            // the peer sends nothing
          }
        },
      }),
    );
    const { port } = await server.listen();
    const socket = await rawClient(port);
    socket.pause(); // never read
    await new Promise((r) => setTimeout(r, 50));
    socket.end(); // FIN: the server's side ends, with megabytes still queued for a peer that does not read
    expect(closed).toBeDefined();
    // Without the close deadline this never settles (the test times out).
    expect(await closed!).toMatchObject({ reason: 'peer-closed' });
    socket.destroy();
  });

  it('a sender awaiting every send never meets the write cap, even on a stream whose high-water mark is above it', async () => {
    // An SSH channel's high-water mark is its 2 MiB window, above the 1 MiB cap: "sent" at the mark alone
    // let an awaiting handler queue past the cap and be closed as a peer that does not read.
    const held: Array<() => void> = [];
    const stream = new Duplex({
      writableHighWaterMark: 4 * 1024 * 1024,
      read() {},
      write(_chunk, _encoding, callback) {
        held.push(callback); // the far end does not read
      },
      writev(_chunks, callback) {
        held.push(callback);
      },
    });
    const events: SockEvent[] = [];
    let sent = 0;
    const server = track(
      createServer({
        framing: lengthPrefixed({ maxFrameBytes: 64 * 1024 }),
        maxWriteBufferBytes: 1024 * 1024,
        observers: [(e) => events.push(e)],
        async handler(conn) {
          const frame = Buffer.alloc(60 * 1024);
          for (let i = 0; i < 64; i++) {
            await conn.send(frame);
            sent++;
          }
        },
      }),
    );
    const conn = server.adopt(stream, {
      remoteAddress: '192.0.2.1',
      remotePort: 1,
      localAddress: '127.0.0.1',
      localPort: 2,
      transport: 'test',
    });
    await new Promise((r) => setTimeout(r, 100));
    // Paced: the handler waits on the kernel hand-off, the connection is open, nothing was refused.
    expect(events.filter((e) => e.type === 'reject')).toEqual([]);
    expect(conn.closing).toBe(false);
    expect(sent).toBeLessThan(64);
    expect(stream.writableLength).toBeLessThanOrEqual(1024 * 1024);
    // The far end reads: everything is delivered and the handler finishes.
    while (sent < 64) {
      for (const cb of held.splice(0)) cb();
      await new Promise((r) => setImmediate(r));
    }
    expect(events.filter((e) => e.type === 'reject')).toEqual([]);
    stream.destroy();
  });
});
