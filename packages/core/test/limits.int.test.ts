import * as v from 'valibot';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  connect,
  createServer,
  delimited,
  json,
  lengthPrefixed,
  type RejectEvent,
  type SockEvent,
} from '../src/index.js';
import { closeAfterEach, delay, rawClient, readAll, u32 } from './helpers.js';

const track = closeAfterEach();
const rejects = (events: SockEvent[]) => events.filter((e): e is RejectEvent => e.type === 'reject');

describe('oversized frames', () => {
  it('closes on an oversized length header without buffering the payload', async () => {
    const events: SockEvent[] = [];
    const server = track(
      createServer({
        framing: lengthPrefixed({ maxFrameBytes: 1024 }),
        observers: [(e) => events.push(e)],
        async handler(conn) {
          for await (const m of conn) await conn.send(m);
        },
      }),
    );
    const { port } = await server.listen();
    const socket = await rawClient(port);
    const done = readAll(socket);
    // A valid frame first, then a header announcing 10 MB.
    socket.write(Buffer.concat([u32('ok'), u32(Buffer.alloc(0)).fill(0xff, 0, 4)]));
    const echoed = await done;
    expect(echoed).toEqual(u32('ok'));
    const [r] = rejects(events);
    expect(r).toMatchObject({ stage: 'frame', reason: 'frame-too-large', closed: true, plugin: 'core' });
    expect(r?.error?.code).toBe('ERR_SOCK_FRAME_TOO_LARGE');
    expect(server.stats().rejected['frame-too-large']).toBe(1);
  });

  it('closes a delimiter-less flood at the limit, holding no more than the limit', async () => {
    const events: SockEvent[] = [];
    const server = track(
      createServer({
        framing: delimited({ maxFrameBytes: 4096 }),
        observers: [(e) => events.push(e)],
        async handler(conn) {
          for await (const _ of conn) {
            // nothing
          }
        },
      }),
    );
    const { port } = await server.listen();
    const socket = await rawClient(port);
    const done = readAll(socket);
    let sent = 0;
    // Bounded flood: at most 1 MiB; the server must cut us long before.
    while (sent < 1024 * 1024 && !socket.destroyed && socket.writable) {
      socket.write(Buffer.alloc(1024, 'x'));
      sent += 1024;
      if (sent % 65536 === 0) await delay(1);
    }
    await done;
    expect(rejects(events).map((e) => e.reason)).toEqual(['frame-too-large']);
  });

  it('reply-close sends an error frame, then closes', async () => {
    const server = track(
      createServer<unknown, unknown>({
        framing: delimited({ maxFrameBytes: 64 }),
        codec: json(),
        onFrameTooLarge: 'reply-close',
        errorReply: (err) => ({ error: err.code }),
        async handler(conn) {
          for await (const _ of conn) {
            // nothing
          }
        },
      }),
    );
    const { port } = await server.listen();
    const socket = await rawClient(port);
    const done = readAll(socket);
    socket.write(`"${'a'.repeat(100)}"\n`);
    expect((await done).toString()).toBe('{"error":"ERR_SOCK_FRAME_TOO_LARGE"}\n');
  });

  it('a reply policy without errorReply is a configuration error', () => {
    expect(() => createServer({ onInvalidMessage: 'reply', handler() {} })).toThrow(/needs errorReply/);
  });
});

const zodSchema = z.object({ op: z.enum(['add']), n: z.number().int() });
const valibotSchema = v.object({ op: v.picklist(['add']), n: v.pipe(v.number(), v.integer()) });

describe.each([
  ['zod', zodSchema],
  ['valibot', valibotSchema],
])('schema validation with %s', (_name, schema) => {
  async function start(policy: 'close' | 'drop' | 'reply') {
    const events: SockEvent[] = [];
    const seen: unknown[] = [];
    const server = track(
      createServer<{ op: 'add'; n: number }, unknown>({
        framing: delimited(),
        codec: json({ schema }),
        onInvalidMessage: policy,
        errorReply: (err) => ({ error: err.code, issues: err.issues?.length }),
        observers: [(e) => events.push(e)],
        async handler(conn) {
          for await (const m of conn) {
            seen.push(m);
            await conn.send({ ok: m.n + 1 });
          }
        },
      }),
    );
    const { port } = await server.listen();
    const client = await connect<unknown, unknown>({ port, framing: delimited(), codec: json() });
    return { events, seen, client };
  }

  it('close: a schema failure closes the connection with its issues reported', async () => {
    const { events, seen, client } = await start('close');
    await client.send({ op: 'add', n: 1 });
    await client.send({ op: 'mul', n: 1.5 });
    await client.send({ op: 'add', n: 2 });
    const got: unknown[] = [];
    for await (const m of client) got.push(m);
    expect(got).toEqual([{ ok: 2 }]);
    expect(seen).toEqual([{ op: 'add', n: 1 }]);
    const [r] = rejects(events);
    expect(r).toMatchObject({ stage: 'message', reason: 'validation-failed', closed: true });
    expect(r?.error?.issues?.length).toBe(2);
  });

  it('drop: the bad message is skipped and reported, the connection goes on', async () => {
    const { events, seen, client } = await start('drop');
    await client.send({ op: 'add', n: 1 });
    await client.send({ op: 'mul' });
    await client.send({ op: 'add', n: 2 });
    const it = client[Symbol.asyncIterator]();
    expect((await it.next()).value).toEqual({ ok: 2 });
    expect((await it.next()).value).toEqual({ ok: 3 });
    expect(seen).toHaveLength(2);
    expect(rejects(events)).toMatchObject([{ reason: 'validation-failed', closed: false }]);
    await client.close();
  });

  it('reply: the peer gets an error message and the connection goes on', async () => {
    const { events, client } = await start('reply');
    await client.send({ op: 'add', n: 'x' });
    await client.send({ op: 'add', n: 5 });
    const it = client[Symbol.asyncIterator]();
    expect((await it.next()).value).toEqual({ error: 'ERR_SOCK_VALIDATION_FAILED', issues: 1 });
    expect((await it.next()).value).toEqual({ ok: 6 });
    expect(rejects(events)).toMatchObject([{ reason: 'validation-failed', closed: false }]);
    await client.close();
  });

  it('invalid JSON is its own reason', async () => {
    const { events, client } = await start('drop');
    client.socket.write('{not json\n');
    await client.send({ op: 'add', n: 9 });
    const it = client[Symbol.asyncIterator]();
    expect((await it.next()).value).toEqual({ ok: 10 });
    expect(rejects(events)).toMatchObject([
      { reason: 'invalid-message', error: { code: 'ERR_SOCK_INVALID_MESSAGE' } },
    ]);
    await client.close();
  });
});

describe('async schemas', () => {
  it('keeps message order when validation is asynchronous', async () => {
    const slowSchema = z.number().refine(async (n) => {
      await delay(n % 3);
      return true;
    });
    const server = track(
      createServer<number, number>({
        framing: delimited(),
        codec: json({ schema: slowSchema }),
        async handler(conn) {
          for await (const m of conn) await conn.send(m);
        },
      }),
    );
    const { port } = await server.listen();
    const client = await connect<number, number>({ port, framing: delimited(), codec: json() });
    const sent = Array.from({ length: 30 }, (_, i) => i);
    for (const n of sent) void client.send(n);
    const got: number[] = [];
    for await (const m of client) {
      got.push(m);
      if (got.length === sent.length) break;
    }
    expect(got).toEqual(sent);
    await client.close();
  });
});
