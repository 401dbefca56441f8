import { json, SockError } from '@sock/core';
import { createVirtualClock } from '@sock/core/testing';
import { describe, expect, it, onTestFinished } from 'vitest';
import { createUdpClient, createUdpServer, encodeEnvelope, parseEnvelope } from '../src/index.js';
import { lossyRelay, rawPeer, until } from './helpers.js';

function track<T extends { close(): Promise<void> }>(thing: T): T {
  onTestFinished(() => thing.close());
  return thing;
}

/** Let promise callbacks run (no wall-clock wait). */
const settled = () => new Promise<void>((r) => setImmediate(r));

/** Fast retries for tests: 50 ms, 100 ms, 200 ms… without jitter. */
const fast = { attempts: 4, initialDelayMs: 50, jitter: 0 };

describe('request/response', () => {
  for (const host of ['127.0.0.1', '::1']) {
    it(`answers a request over ${host.includes(':') ? 'IPv6' : 'IPv4'}`, async () => {
      const server = track(createUdpServer({ codec: json(), handler: (req) => ({ echo: req }) }));
      const { port } = await server.bind({ host, port: 0 });
      const client = track(createUdpClient({ host, port, codec: json() }));
      expect(await client.request({ hello: 'world' })).toEqual({ echo: { hello: 'world' } });
      expect(await client.request([1, 2])).toEqual({ echo: [1, 2] });
      expect(client.stats()).toMatchObject({ requests: 2, responses: 2, retransmissions: 0, pending: 0 });
      expect(server.stats()).toMatchObject({ handled: 2, duplicates: 0 });
    });
  }

  it('retries when the first reply is lost, and the handler runs once', async () => {
    let runs = 0;
    const server = track(
      createUdpServer({
        handler: (req: Buffer) => {
          runs++;
          return Buffer.concat([Buffer.from('re:'), req]);
        },
      }),
    );
    const { port } = await server.bind();
    const relay = track(await lossyRelay({ port }, 1));
    const client = track(createUdpClient({ host: '127.0.0.1', port: relay.port, retry: fast }));
    const reply = await client.request(Buffer.from('x'));
    expect(reply.toString()).toBe('re:x');
    expect(relay.dropped()).toBe(1);
    expect(runs).toBe(1);
    expect(client.stats().retransmissions).toBe(1);
    expect(server.stats()).toMatchObject({ handled: 1, duplicates: 1 });
  });

  it('answers a duplicate from the response cache without running the handler again', async () => {
    let runs = 0;
    const server = track(
      createUdpServer({
        handler: () => {
          runs++;
          return Buffer.from(`run ${runs}`);
        },
      }),
    );
    const { port } = await server.bind();
    const peer = track(await rawPeer());
    const request = encodeEnvelope('request', 7, Buffer.from('ping-ping-ping-ping'));
    await peer.send(request, port);
    await peer.waitFor(1);
    await peer.send(request, port);
    await peer.waitFor(2);
    expect(runs).toBe(1);
    const [a, b] = peer.received.map((r) => parseEnvelope(r.data));
    expect(a).toMatchObject({ kind: 'response', id: 7 });
    expect(b?.payload.toString()).toBe('run 1');
    // The same id from another source is another request.
    const other = track(await rawPeer('127.0.0.2'));
    await other.send(request, port, '127.0.0.1');
    await other.waitFor(1);
    expect(runs).toBe(2);
  });

  it('drops a duplicate that arrives while the handler still runs', async () => {
    let release: () => void = () => {};
    let runs = 0;
    const server = track(
      createUdpServer({
        handler: async () => {
          runs++;
          await new Promise<void>((r) => {
            release = r;
          });
          return Buffer.from('done');
        },
      }),
    );
    const { port } = await server.bind();
    const peer = track(await rawPeer());
    const request = encodeEnvelope('request', 1, Buffer.from('slow-request-slow'));
    await peer.send(request, port);
    await peer.send(request, port);
    // The second copy is dropped while the first is still in the handler.
    await until(() => server.stats().droppedBy.duplicate === 1);
    release();
    await peer.waitFor(1);
    expect(runs).toBe(1);
    expect(peer.received).toHaveLength(1);
    expect(server.stats().droppedBy).toEqual({ duplicate: 1 });
  });

  // The retry schedule runs on the client's clock: virtual here, so the test waits on datagrams (the
  // kernel), never on the wall clock, and can check each retransmission to the millisecond.
  it('times out after its attempts, each a retransmission of the same id, on schedule', async () => {
    const clock = createVirtualClock();
    const silent = track(await rawPeer());
    const client = track(
      createUdpClient({ host: '127.0.0.1', port: silent.port, retry: { ...fast, attempts: 3 }, clock }),
    );
    let outcome: unknown;
    void client.request(Buffer.from('anyone?')).catch((e) => {
      outcome = e;
    });
    await silent.waitFor(1);
    // Waits of 50, 100 and 200 ms: a retransmission at 50 and at 150, the timeout at 350.
    clock.advance(49);
    clock.advance(1);
    await silent.waitFor(2);
    clock.advance(100);
    await silent.waitFor(3);
    clock.advance(199);
    await settled();
    expect(outcome).toBeUndefined();
    clock.advance(1);
    await settled();
    expect(SockError.isInstance(outcome)).toBe(true);
    expect(outcome).toMatchObject({
      code: 'ERR_SOCK_REQUEST_TIMEOUT',
      message: expect.stringMatching(/after 3 attempt/),
    });
    expect(silent.received).toHaveLength(3);
    const ids = new Set(silent.received.map((r) => parseEnvelope(r.data)?.id));
    expect(ids.size).toBe(1);
    expect(client.stats()).toMatchObject({ timeouts: 1, retransmissions: 2, pending: 0 });
  });

  it('honours an overall timeout shorter than the retry schedule', async () => {
    const clock = createVirtualClock();
    const silent = track(await rawPeer());
    const client = track(createUdpClient({ host: '127.0.0.1', port: silent.port, retry: fast, clock }));
    let outcome: unknown;
    void client.request(Buffer.from('x'), { timeout: '120ms' }).catch((e) => {
      outcome = e;
    });
    await silent.waitFor(1);
    clock.advance(50);
    await silent.waitFor(2);
    // The next wait would be 100 ms; the deadline cuts it to 70.
    clock.advance(69);
    await settled();
    expect(outcome).toBeUndefined();
    clock.advance(1);
    await settled();
    expect(outcome).toMatchObject({ code: 'ERR_SOCK_REQUEST_TIMEOUT' });
    expect(client.stats()).toMatchObject({ retransmissions: 1, timeouts: 1 });
  });

  it('resolves once, and ignores replies from another address or port', async () => {
    const server = track(await rawPeer());
    const impostor = track(await rawPeer());
    const client = track(createUdpClient({ host: '127.0.0.1', port: server.port, retry: fast }));
    const pending = client.request(Buffer.from('q'));
    await server.waitFor(1);
    const { data, rinfo } = server.received[0]!;
    const id = parseEnvelope(data)!.id;
    await impostor.send(encodeEnvelope('response', id, Buffer.from('forged')), rinfo.port);
    await until(() => client.stats().droppedBy['unmatched-reply'] === 1);
    await server.send(encodeEnvelope('response', id, Buffer.from('one')), rinfo.port);
    await server.send(encodeEnvelope('response', id, Buffer.from('two')), rinfo.port);
    expect((await pending).toString()).toBe('one');
    await until(() => client.stats().droppedBy['unmatched-reply'] === 2);
    expect(client.stats().droppedBy).toEqual({ 'unmatched-reply': 2 });
  });

  it('rejects with ERR_SOCK_HANDLER_FAILED when the handler throws, and reports the error', async () => {
    const errors: string[] = [];
    const server = track(
      createUdpServer({
        handler: () => {
          throw new Error('boom');
        },
        observers: [(e) => e.type === 'error' && errors.push(e.error.code)],
      }),
    );
    const { port } = await server.bind();
    const client = track(createUdpClient({ host: '127.0.0.1', port, retry: fast }));
    await expect(client.request(Buffer.from('x'))).rejects.toMatchObject({
      code: 'ERR_SOCK_HANDLER_FAILED',
      reason: 'handler-failed',
    });
    expect(errors).toEqual(['ERR_SOCK_HANDLER_FAILED']);
    expect(server.stats().failures).toBe(1);
  });

  it('refuses requests that fail the schema, with a reason, and strikes the source', async () => {
    const strikes: string[] = [];
    const schema = {
      '~standard': {
        version: 1 as const,
        vendor: 'test',
        validate: (v: unknown) =>
          typeof v === 'number' ? { value: v } : { issues: [{ message: 'a number' }] as const },
      },
    };
    const server = track(
      createUdpServer<number, number>({
        codec: json<number>({ schema }),
        handler: (n: number) => n + 1,
        // The client proves its address with a cookie: only a proven source earns strikes.
        cookies: {},
        guards: [{ name: 'strikes', violation: (_s, v) => strikes.push(v.reason) }],
      }),
    );
    const { port } = await server.bind();
    const client = track(
      createUdpClient<unknown, unknown>({ host: '127.0.0.1', port, codec: json(), retry: fast }),
    );
    expect(await client.request(41)).toBe(42);
    await expect(client.request('x')).rejects.toMatchObject({
      code: 'ERR_SOCK_VALIDATION_FAILED',
      reason: 'validation-failed',
    });
    expect(server.stats().droppedBy).toEqual({ 'validation-failed': 1 });
    expect(strikes).toEqual(['validation-failed']);
  });

  it('drops datagrams that are not request envelopes', async () => {
    const server = track(createUdpServer({ handler: () => Buffer.from('') }));
    const { port } = await server.bind();
    const peer = track(await rawPeer());
    await peer.send(Buffer.from('garbage'), port);
    await peer.send(encodeEnvelope('response', 1), port);
    await until(() => server.stats().droppedBy['invalid-envelope'] === 2);
    expect(server.stats().droppedBy).toEqual({ 'invalid-envelope': 2 });
    expect(peer.received).toHaveLength(0);
  });

  it('aborts a pending request through its signal, and rejects pending requests on close', async () => {
    const silent = track(await rawPeer());
    const client = createUdpClient({ host: '127.0.0.1', port: silent.port, retry: fast });
    const ac = new AbortController();
    const aborted = client.request(Buffer.from('a'), { signal: ac.signal });
    await silent.waitFor(1);
    ac.abort();
    await expect(aborted).rejects.toMatchObject({ code: 'ERR_SOCK_ABORTED' });
    const pending = client.request(Buffer.from('b'));
    await silent.waitFor(2);
    await client.close();
    await expect(pending).rejects.toMatchObject({ code: 'ERR_SOCK_CONNECTION_CLOSED' });
    await expect(client.request(Buffer.from('c'))).rejects.toMatchObject({
      code: 'ERR_SOCK_CONNECTION_CLOSED',
    });
  });

  it('throws a typed error for a request over maxPayloadBytes', async () => {
    const silent = track(await rawPeer());
    const client = track(createUdpClient({ host: '127.0.0.1', port: silent.port, maxPayloadBytes: 100 }));
    await expect(client.request(Buffer.alloc(100))).rejects.toMatchObject({
      code: 'ERR_SOCK_FRAME_TOO_LARGE',
    });
    expect(client.stats().pending).toBe(0);
  });
});
