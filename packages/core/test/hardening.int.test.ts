/**
 * The seven attacks of issue 13, each as a regression test on real sockets. Each one failed on the code
 * before the connection redesign (one owner, one inbox, one bound).
 */
import type { StandardSchemaV1 } from '@standard-schema/spec';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type Connection,
  connect,
  createServer,
  json,
  lengthPrefixed,
  type Plugin,
  SockError,
  SockErrorCode,
  type Violation,
} from '../src/index.js';
import { closeAfterEach, delay, rawClient, readAll, u32 } from './helpers.js';

const track = closeAfterEach();

/** Unhandled rejections seen while a test runs: each one would end a production process. */
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);
beforeEach(() => {
  unhandled.length = 0;
  process.on('unhandledRejection', onUnhandled);
});
afterEach(() => {
  process.off('unhandledRejection', onUnhandled);
});

/** Resolves when `check` holds, polling each tick; fails after `ms` (a bound, not a timing assertion). */
async function until(check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await delay(5);
  }
}

/** A gate a handler waits on, so it is as slow as the test needs. */
function gate(): { wait: Promise<void>; open(): void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => {
    open = r;
  });
  return { wait, open };
}

describe('issue 13', () => {
  it('1. onMessage with void send() to a peer that never reads closes that connection, no unhandled rejection', async () => {
    const closes: string[] = [];
    const server = track(
      createServer({
        framing: lengthPrefixed({ maxFrameBytes: 128 * 1024 }),
        // The README's example, as written.
        onMessage: (message, conn) => void conn.send(message),
        observers: [(e) => e.type === 'close' && closes.push(e.reason)],
      }),
    );
    const { port } = await server.listen();
    const socket = await rawClient(port);
    socket.pause(); // never reads
    socket.on('error', () => {});
    const request = u32(Buffer.alloc(60 * 1024, 1));
    // 200 requests of 60 KiB: 12 MiB echoed to a peer that reads nothing (bounded).
    for (let i = 0; i < 200; i++) socket.write(request);
    await until(() => closes.length === 1);
    expect(closes).toEqual(['write-buffer-full']);
    // Give any stray rejection a turn to surface.
    await delay(50);
    expect(unhandled).toEqual([]);
    socket.destroy();
    // The server still serves.
    const client = await connect({ port, framing: lengthPrefixed({ maxFrameBytes: 128 * 1024 }) });
    await client.send(Buffer.from('ok'));
    expect(String((await client[Symbol.asyncIterator]().next()).value)).toBe('ok');
    await client.close();
  });

  it('1b. an awaited send() still rejects with its reason, and the failure is reported once', async () => {
    let results: PromiseSettledResult<void>[] = [];
    const errors: SockError[] = [];
    const server = track(
      createServer({
        maxWriteBufferBytes: 64 * 1024,
        onError: (err) => errors.push(err),
        async handler(conn) {
          const chunk = Buffer.alloc(32 * 1024);
          // 1,024 sends of 32 KiB (32 MiB, one buffer): far more than the kernel takes for a peer that never reads.
          results = await Promise.allSettled(Array.from({ length: 1024 }, () => conn.send(chunk)));
        },
      }),
    );
    const { port } = await server.listen();
    const socket = await rawClient(port);
    socket.pause();
    socket.on('error', () => {});
    await until(() => results.length === 1024);
    const reasons = results.flatMap((r) => (r.status === 'rejected' ? [(r.reason as SockError).code] : []));
    // One send hit the cap; every other one failed because the connection closed for it.
    expect(reasons.filter((c) => c === 'ERR_SOCK_WRITE_BUFFER_FULL')).toHaveLength(1);
    expect(new Set(reasons)).toEqual(new Set(['ERR_SOCK_WRITE_BUFFER_FULL', 'ERR_SOCK_CONNECTION_CLOSED']));
    await until(() => server.stats().closed === 1);
    expect(server.stats().rejected).toEqual({ 'write-buffer-full': 1 });
    expect(errors).toEqual([]);
    await delay(50);
    expect(unhandled).toEqual([]);
    socket.destroy();
  });

  it('1c. a message of ours that cannot be encoded rejects its send, is reported, and closes nothing', async () => {
    const errors: SockError[] = [];
    const failures: unknown[] = [];
    const server = track(
      createServer({
        framing: lengthPrefixed({ maxFrameBytes: 8 }),
        onError: (err) => errors.push(err),
        async handler(conn) {
          for await (const m of conn) {
            await conn.send(Buffer.alloc(64)).catch((err) => failures.push(err));
            void conn.send(Buffer.alloc(64)); // not awaited: still no unhandled rejection
            await conn.send(m);
          }
        },
      }),
    );
    const { port } = await server.listen();
    const client = await connect({ port, framing: lengthPrefixed({ maxFrameBytes: 8 }) });
    await client.send(Buffer.from('ok'));
    expect(String((await client[Symbol.asyncIterator]().next()).value)).toBe('ok');
    expect(failures).toMatchObject([{ code: 'ERR_SOCK_FRAME_TOO_LARGE' }]);
    expect(errors.map((e) => e.code)).toEqual(['ERR_SOCK_FRAME_TOO_LARGE', 'ERR_SOCK_FRAME_TOO_LARGE']);
    await delay(20);
    expect(unhandled).toEqual([]);
    await client.close();
  });

  it('2. error replies count against maxQueuedMessages: reading pauses', async () => {
    const slow = gate();
    let conn!: Connection<unknown, unknown>;
    const server = track(
      createServer<unknown, unknown>({
        framing: lengthPrefixed(),
        codec: json(),
        onInvalidMessage: 'reply',
        errorReply: (error) => ({ error: error.reason }),
        async handler(c) {
          conn = c;
          await slow.wait;
          for await (const m of c) await c.send(m);
        },
      }),
    );
    const { port } = await server.listen();
    const socket = await rawClient(port);
    socket.on('error', () => {});
    const invalid = u32('{nope');
    const burst = Buffer.concat(Array.from({ length: 5000 }, () => invalid)); // 45 KB: one read
    socket.write(burst);
    await until(() => conn !== undefined && conn.stats.bytesIn === burst.length);
    await delay(20);
    // Decoding stopped at the bound, mid-read: 16 replies queued, not 5000.
    expect(conn.stats.framesIn).toBeLessThanOrEqual(16);
    slow.open();
    // Draining the inbox decodes the rest of the read: every invalid frame is answered, in order.
    const replies = readAll(socket);
    await until(() => conn.stats.framesOut === 5000);
    socket.end();
    const text = (await replies).toString();
    expect(text.split('invalid-message').length - 1).toBe(5000);
  });

  it('3. pending async decodes count against maxQueuedMessages', async () => {
    const slow = gate();
    let started = 0;
    const schema: StandardSchemaV1<unknown, number> = {
      '~standard': {
        version: 1,
        vendor: 'test',
        validate: async (value) => {
          started++;
          await slow.wait;
          return { value: value as number };
        },
      },
    };
    let conn!: Connection<number, number>;
    const got: number[] = [];
    const server = track(
      createServer<number, number>({
        framing: lengthPrefixed(),
        codec: json({ schema }),
        async handler(c) {
          conn = c;
          for await (const m of c) got.push(m);
        },
      }),
    );
    const { port } = await server.listen();
    const socket = await rawClient(port);
    socket.on('error', () => {});
    const burst = Buffer.concat(Array.from({ length: 5000 }, (_, i) => u32(String(i))));
    socket.write(burst);
    await until(() => conn !== undefined && conn.stats.bytesIn === burst.length);
    await delay(20);
    expect(started).toBeLessThanOrEqual(16);
    expect(conn.stats.framesIn).toBeLessThanOrEqual(16);
    slow.open();
    await until(() => got.length === 5000);
    expect(got).toEqual(Array.from({ length: 5000 }, (_, i) => i));
    socket.destroy();
  });

  it('4. one read of empty frames queues at most maxQueuedMessages, and none is lost', async () => {
    const slow = gate();
    let conn!: Connection;
    let taken = 0;
    const server = track(
      createServer({
        async handler(c) {
          conn = c;
          await slow.wait;
          for await (const _ of c) taken++;
        },
      }),
    );
    const { port } = await server.listen();
    const socket = await rawClient(port);
    socket.on('error', () => {});
    const burst = Buffer.alloc(64 * 1024); // 16,384 zero-length frames
    socket.write(burst);
    await until(() => conn !== undefined && conn.stats.bytesIn === burst.length);
    await delay(20);
    expect(conn.stats.framesIn).toBeLessThanOrEqual(16);
    slow.open();
    await until(() => taken === 16_384);
    socket.destroy();
  });

  it('5. close({ drainMs }) delivers every reply in onMessage mode', async () => {
    const server = createServer({
      async onMessage(message, conn) {
        await delay(30);
        await conn.send(message);
      },
    });
    const { port } = await server.listen();
    const client = await connect({ port });
    const replies: string[] = [];
    const reading = (async () => {
      for await (const m of client) replies.push(String(m));
    })();
    for (const m of ['a', 'b', 'c']) await client.send(Buffer.from(m));
    await until(() => [...server.connections][0]?.stats.framesIn === 3);
    await server.close({ drainMs: 3000 });
    await reading;
    expect(replies).toEqual(['a', 'b', 'c']);
  });

  it('6. a reply larger than maxWriteBufferBytes reaches a peer that reads', async () => {
    const big = 2 * 1024 * 1024;
    const server = track(
      createServer({
        framing: lengthPrefixed({ maxFrameBytes: 4 * 1024 * 1024 }),
        async handler(conn) {
          for await (const _ of conn) await conn.send(Buffer.alloc(big, 7));
        },
      }),
    );
    const { port } = await server.listen();
    const client = await connect({ port, framing: lengthPrefixed({ maxFrameBytes: 4 * 1024 * 1024 }) });
    await client.send(Buffer.from('give me 2 MiB'));
    const reply = await client[Symbol.asyncIterator]().next();
    expect(reply.value?.length).toBe(big);
    await client.close();
  });

  it('7. a throwing frame hook is reported as plugin-error, closes the connection, strikes no one', async () => {
    const errors: SockError[] = [];
    const strikes: Violation[] = [];
    const closes: string[] = [];
    const buggy: Plugin = {
      name: 'buggy',
      frame: () => {
        throw new Error('bug in the plug-in');
      },
    };
    // What a strike counter does: count violations the peer is to blame for.
    const striker: Plugin = {
      name: 'striker',
      violation: (_conn, v) => {
        if (v.fault !== 'server') strikes.push(v);
      },
      close: (_conn, info) => closes.push(info.reason),
    };
    const server = track(
      createServer({
        plugins: [buggy, striker],
        onError: (err) => errors.push(err),
        async handler(conn) {
          for await (const m of conn) await conn.send(m);
        },
      }),
    );
    const { port } = await server.listen();
    const socket = await rawClient(port);
    const done = readAll(socket);
    socket.write(u32('hello'));
    await done;
    await until(() => closes.length === 1);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: 'ERR_SOCK_HANDLER_FAILED', reason: 'plugin-error' });
    expect((errors[0]!.cause as Error).message).toBe('bug in the plug-in');
    expect(closes).toEqual(['plugin-error']);
    expect(strikes).toEqual([]);
  });

  it('7b. a throwing accept hook is plugin-error too, never a strike', async () => {
    const errors: SockError[] = [];
    const strikes: Violation[] = [];
    const server = track(
      createServer({
        plugins: [
          {
            name: 'buggy',
            accept: () => {
              throw new Error('store down');
            },
          },
          { name: 'striker', violation: (_c, v) => v.fault !== 'server' && strikes.push(v) },
        ],
        onError: (err) => errors.push(err),
        handler() {},
      }),
    );
    const { port } = await server.listen();
    await readAll(await rawClient(port));
    await until(() => server.stats().closed === 1);
    expect(errors).toMatchObject([{ code: 'ERR_SOCK_HANDLER_FAILED', reason: 'plugin-error' }]);
    expect(server.stats().rejected).toEqual({ 'plugin-error': 1 });
    expect(strikes).toEqual([]);
  });

  it('7c. a hook that throws an ERR_SOCK_REJECTED with a reason is a rejection, not a plug-in error', async () => {
    const errors: SockError[] = [];
    const violations: Violation[] = [];
    const server = track(
      createServer({
        plugins: [
          {
            name: 'fail-closed-store',
            accept: async () => {
              throw new SockError(SockErrorCode.REJECTED, 'store unavailable', {
                reason: 'store-unavailable',
              });
            },
            violation: (_c, v) => violations.push(v),
          },
        ],
        onError: (err) => errors.push(err),
        handler() {},
      }),
    );
    const { port } = await server.listen();
    await readAll(await rawClient(port));
    await until(() => server.stats().closed === 1);
    expect(errors).toEqual([]);
    expect(server.stats().rejected).toEqual({ 'store-unavailable': 1 });
    expect(violations).toMatchObject([{ reason: 'store-unavailable', fault: 'peer' }]);
  });
});
