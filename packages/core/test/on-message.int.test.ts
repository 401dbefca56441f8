import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { connect, createServer, delimited, json, type SockError, text } from '../src/index.js';
import { closeAfterEach, delay, rawClient, readAll } from './helpers.js';

const track = closeAfterEach();

describe('onMessage (callback delivery)', () => {
  it('delivers every message in order, sync and async listeners alike', async () => {
    const seen: number[] = [];
    const server = track(
      createServer<number, number>({
        framing: delimited(),
        codec: json(),
        async onMessage(n, conn) {
          if (n % 3 === 0) await delay(2); // some slow ones: order must hold anyway
          seen.push(n);
          await conn.send(n * 10);
        },
      }),
    );
    const { port } = await server.listen();
    const client = await connect<number, number>({ port, framing: delimited(), codec: json() });
    for (let n = 0; n < 50; n++) void client.send(n);
    const got: number[] = [];
    for await (const m of client) {
      got.push(m);
      if (got.length === 50) break;
    }
    expect(seen).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(got).toEqual(seen.map((n) => n * 10));
    await client.close();
  });

  it('error replies stay in order behind a busy listener', async () => {
    const server = track(
      createServer<{ n: number }, unknown>({
        framing: delimited(),
        codec: json({ schema: z.object({ n: z.number() }) }),
        onInvalidMessage: 'reply',
        errorReply: (e) => ({ error: e.code }),
        async onMessage(m, conn) {
          await delay(20);
          await conn.send({ ok: m.n });
        },
      }),
    );
    const { port } = await server.listen();
    const socket = await rawClient(port);
    const done = readAll(socket);
    socket.end('{"n":1}\n{"n":"x"}\n{"n":2}\n');
    await delay(200);
    socket.destroy();
    expect((await done).toString()).toBe('{"ok":1}\n{"error":"ERR_SOCK_VALIDATION_FAILED"}\n{"ok":2}\n');
  });

  it('a listener that throws closes only its connection and is reported', async () => {
    const errors: SockError[] = [];
    const server = track(
      createServer<string, string>({
        framing: delimited(),
        codec: text(),
        onError: (e) => errors.push(e),
        onMessage(m, conn) {
          if (m === 'boom') throw new Error('listener bug');
          void conn.send(m);
        },
      }),
    );
    const { port } = await server.listen();
    const bad = await rawClient(port);
    bad.write('boom\n');
    await readAll(bad);
    const good = await connect({ port, framing: delimited(), codec: text() });
    await good.send('fine');
    const it = good[Symbol.asyncIterator]();
    expect((await it.next()).value).toBe('fine');
    expect(errors).toMatchObject([{ code: 'ERR_SOCK_HANDLER_FAILED', reason: 'handler-error' }]);
    await good.close();
  });

  it('needs a handler or onMessage', () => {
    expect(() => createServer({} as never)).toThrow(/handler or onMessage/);
  });
});
