import { describe, expect, it } from 'vitest';
import {
  type CloseInfo,
  connect,
  createServer,
  delimited,
  type Plugin,
  type RejectEvent,
  reject,
  type SockEvent,
  text,
  type Violation,
} from '../src/index.js';
import { closeAfterEach, delay, rawClient, readAll } from './helpers.js';

const track = closeAfterEach();
const echo = async (conn: AsyncIterable<string> & { send(m: string): Promise<void> }) => {
  for await (const m of conn) await conn.send(m);
};

describe('accept stage', () => {
  it('a rejection stops the socket before any byte is read, with its reason counted', async () => {
    const events: SockEvent[] = [];
    const closes: CloseInfo[] = [];
    let framesSeen = 0;
    const denyAll: Plugin = {
      name: 'deny',
      accept: (conn) => reject('ip-denied', { key: conn.remoteAddress }),
      frame: () => {
        framesSeen++;
      },
      close: (_conn, info) => closes.push(info),
    };
    const server = track(
      createServer({ plugins: [denyAll], observers: [(e) => events.push(e)], handler: echo }),
    );
    const { port } = await server.listen();
    const socket = await rawClient(port);
    socket.write('hello, anybody?\n'); // already in flight when the server decides
    await readAll(socket);
    const r = events.find((e): e is RejectEvent => e.type === 'reject');
    expect(r).toMatchObject({
      stage: 'accept',
      plugin: 'deny',
      reason: 'ip-denied',
      key: '127.0.0.1',
      closed: true,
    });
    expect(r?.conn.stats.bytesIn).toBe(0);
    expect(framesSeen).toBe(0);
    expect(events.some((e) => e.type === 'open')).toBe(false);
    expect(closes).toEqual([{ reason: 'ip-denied', error: expect.anything(), rejectedEarly: true }]);
    expect(server.stats().rejected).toEqual({ 'ip-denied': 1 });
  });

  it('an async verdict keeps the socket paused, then lets it through', async () => {
    const slow: Plugin = {
      name: 'slow',
      accept: async () => {
        await delay(30);
        return undefined;
      },
    };
    const server = track(
      createServer({ framing: delimited(), codec: text(), plugins: [slow], handler: echo }),
    );
    const { port } = await server.listen();
    const client = await connect({ port, framing: delimited(), codec: text() });
    await client.send('after the wait');
    const it = client[Symbol.asyncIterator]();
    expect((await it.next()).value).toBe('after the wait');
    await client.close();
  });

  it('a shadow rejection is reported but lets the connection through', async () => {
    const events: SockEvent[] = [];
    const server = track(
      createServer({
        framing: delimited(),
        codec: text(),
        plugins: [{ name: 'shadowed', accept: () => reject('conn-limit', { shadow: true }) }],
        observers: [(e) => events.push(e)],
        handler: echo,
      }),
    );
    const { port } = await server.listen();
    const client = await connect({ port, framing: delimited(), codec: text() });
    await client.send('through');
    const it = client[Symbol.asyncIterator]();
    expect((await it.next()).value).toBe('through');
    expect(events.find((e) => e.type === 'reject')).toMatchObject({
      reason: 'conn-limit',
      shadow: true,
      closed: false,
    });
    expect(server.stats()).toMatchObject({ rejected: {}, reported: { 'conn-limit': 1 } });
    await client.close();
  });

  it('a plug-in that throws rejects that connection only', async () => {
    const errors: unknown[] = [];
    let first = true;
    const flaky: Plugin = {
      name: 'flaky',
      accept: () => {
        if (first) {
          first = false;
          throw new Error('store down');
        }
      },
    };
    const server = track(
      createServer({
        framing: delimited(),
        codec: text(),
        plugins: [flaky],
        onError: (e) => errors.push(e),
        handler: echo,
      }),
    );
    const { port } = await server.listen();
    const a = await rawClient(port);
    await readAll(a);
    const b = await connect({ port, framing: delimited(), codec: text() });
    await b.send('fine');
    const it = b[Symbol.asyncIterator]();
    expect((await it.next()).value).toBe('fine');
    expect(errors).toHaveLength(1);
    await b.close();
  });
});

describe('core failing after an asynchronous stage', () => {
  it('is reported and closes that connection, never an unhandled rejection (the stages after an async hook run in its continuation)', async () => {
    // A framing whose decoder cannot be made: core fails in `open()`, after an accept hook that awaited.
    const broken = {
      ...delimited(),
      createDecoder: () => {
        throw new Error('no decoder today');
      },
    };
    const errors: unknown[] = [];
    const closes: CloseInfo[] = [];
    const server = track(
      createServer({
        framing: broken,
        plugins: [{ name: 'slow', accept: async () => undefined, close: (_c, info) => closes.push(info) }],
        onError: (err) => errors.push(err),
        onMessage: () => {},
      }),
    );
    const { port } = await server.listen();
    const socket = await rawClient(port);
    await readAll(socket); // the server closes it
    expect(closes).toMatchObject([{ reason: 'plugin-error' }]);
    expect(errors).toMatchObject([{ code: 'ERR_SOCK_HANDLER_FAILED', reason: 'plugin-error' }]);
    // The server is still serving.
    const next = await rawClient(port);
    next.destroy();
  });
});

describe('frame stage and violations', () => {
  it('frame hooks see every frame, can reject, and every plug-in hears of the violation', async () => {
    const violations: Violation[] = [];
    const closes: string[] = [];
    const sizes: number[] = [];
    const maxThree: Plugin = {
      name: 'max-three',
      frame: (conn, frame) => {
        sizes.push(frame.length);
        return conn.stats.framesIn > 3 ? reject('msg-rate') : undefined;
      },
    };
    const auditor: Plugin = {
      name: 'auditor',
      violation: (_conn, v) => violations.push(v),
      close: (_conn, info) => closes.push(info.reason),
    };
    const server = track(
      createServer({ framing: delimited(), codec: text(), plugins: [maxThree, auditor], handler: echo }),
    );
    const { port } = await server.listen();
    const socket = await rawClient(port);
    const done = readAll(socket);
    socket.write('a\nbb\nccc\ndddd\neeeee\n');
    await done;
    expect(sizes).toEqual([1, 2, 3, 4]);
    expect(violations).toMatchObject([
      { stage: 'frame', plugin: 'max-three', reason: 'msg-rate', closed: true },
    ]);
    expect(closes).toEqual(['msg-rate']);
  });

  it('core violations reach plug-ins too (strikes can count them)', async () => {
    const violations: Violation[] = [];
    const server = track(
      createServer({
        framing: delimited({ maxFrameBytes: 10 }),
        codec: text(),
        plugins: [{ name: 'auditor', violation: (_c, v) => violations.push(v) }],
        handler: echo,
      }),
    );
    const { port } = await server.listen();
    const socket = await rawClient(port);
    const done = readAll(socket);
    socket.write('this line is far too long\n');
    await done;
    expect(violations).toMatchObject([
      { stage: 'frame', plugin: 'core', reason: 'frame-too-large', closed: true },
    ]);
  });
});

describe('close stage', () => {
  it('close runs exactly once per connection that entered accept, whatever ends it', async () => {
    const closes = new Map<number, number>();
    const counter: Plugin = {
      name: 'counter',
      accept: () => undefined,
      close: (conn) => closes.set(conn.id, (closes.get(conn.id) ?? 0) + 1),
    };
    const server = track(
      createServer({
        framing: delimited({ maxFrameBytes: 8 }),
        codec: text(),
        plugins: [counter],
        async handler(conn) {
          for await (const m of conn) {
            if (m === 'throw') throw new Error('x');
            await conn.send(m);
          }
        },
      }),
    );
    const { port } = await server.listen();
    const endings = [
      async () => (await connect({ port, framing: delimited(), codec: text() })).close(),
      async () => {
        const s = await rawClient(port);
        s.write('waytoolongline\n');
        await readAll(s);
      },
      async () => {
        const s = await rawClient(port);
        s.write('throw\n');
        await readAll(s);
      },
      async () => {
        const s = await rawClient(port);
        s.resetAndDestroy();
      },
    ];
    await Promise.all(endings.map((f) => f()));
    await delay(100);
    expect(closes.size).toBe(4);
    expect([...closes.values()]).toEqual([1, 1, 1, 1]);
  });
});
