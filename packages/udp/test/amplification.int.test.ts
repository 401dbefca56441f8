import { randomBytes } from 'node:crypto';
import { describe, expect, it, onTestFinished } from 'vitest';
import { clockAt } from '../../../test-support/clock.js';
import {
  addressCookies,
  createUdpClient,
  createUdpServer,
  encodeEnvelope,
  parseEnvelope,
} from '../src/index.js';
import { delay, rawPeer, until } from './helpers.js';

function track<T extends { close(): Promise<void> }>(thing: T): T {
  onTestFinished(() => thing.close());
  return thing;
}

const fast = { attempts: 3, initialDelayMs: 50, jitter: 0 };
const big = () => Buffer.alloc(1000, 0x61);

describe('anti-amplification', () => {
  it('a validated path stays validated only as long as the cookie that validated it (requireCookie: false)', async () => {
    let now = 1_700_000_000_000;
    const server = track(
      createUdpServer({
        cookies: { lifetime: '60s' },
        requireCookie: false,
        clock: clockAt(() => now),
        antiAmplification: { idleTimeout: '10m' },
        handler: () => big(),
      }),
    );
    const { port } = await server.bind();
    const peer = track(await rawPeer());
    const kinds: string[] = [];
    let id = 0;
    const ask = async (cookie?: Buffer) => {
      await peer.send(encodeEnvelope('request', ++id, Buffer.alloc(4), cookie), port);
      await peer.waitFor(id);
      kinds.push(parseEnvelope(peer.received[id - 1]!.data)!.kind);
      return parseEnvelope(peer.received[id - 1]!.data)!;
    };
    // Cookie-less: the 1000-byte answer does not fit 3x, so a cookie comes back instead.
    const cookie = (await ask()).cookie!;
    expect(kinds).toEqual(['cookie']);
    expect((await ask(cookie)).kind).toBe('response');
    // Within the cookie's lifetime the path is validated: cookie-less requests are answered in full.
    now += 30_000;
    expect((await ask()).kind).toBe('response');
    // Ten minutes on, kept busy every 20 s: the cookie is long expired, so is the validation.
    for (let t = 0; t < 10 * 60_000; t += 20_000) {
      now += 20_000;
      await ask();
    }
    expect(kinds.slice(-5)).toEqual(['cookie', 'cookie', 'cookie', 'cookie', 'cookie']);
    const lastReplies = peer.received.slice(-5).reduce((n, r) => n + r.data.length, 0);
    expect(lastReplies).toBeLessThanOrEqual(5 * 3 * 10); // never more than 3x the 10-byte requests
  });

  it('never sends an unvalidated source more than 3x what it sent (no cookies)', async () => {
    let runs = 0;
    const server = track(
      createUdpServer({
        handler: () => {
          runs++;
          return big();
        },
      }),
    );
    const { port } = await server.bind();
    const peer = track(await rawPeer());
    const request = encodeEnvelope('request', 1, Buffer.alloc(40));
    for (let i = 0; i < 5; i++) await peer.send(request, port);
    await until(() => server.stats().withheldBy['amplification-limit'] === 5);
    const sent = peer.received.reduce((n, r) => n + r.data.length, 0);
    expect(runs).toBe(1);
    expect(sent).toBe(0); // 1006 bytes never fit in 3 × 46 × 5 = 690
    expect(server.stats().withheldBy).toEqual({ 'amplification-limit': 5 });

    // Small answers fit the budget.
    const small = track(createUdpServer({ handler: () => Buffer.alloc(100) }));
    const smallPort = (await small.bind()).port;
    await peer.send(request, smallPort);
    await peer.waitFor(1);
    expect(peer.received[0]!.data.length).toBe(106);
  });

  it('answers an unvalidated source only with a cookie, and a validated client in full', async () => {
    let runs = 0;
    const server = track(
      createUdpServer({
        cookies: {},
        handler: () => {
          runs++;
          return big();
        },
      }),
    );
    const { port } = await server.bind();
    // A spoofed source (it cannot read replies) gets a cookie: 26 bytes for 26 sent, no handler work.
    const spoofed = track(await rawPeer());
    await spoofed.send(encodeEnvelope('request', 9, Buffer.alloc(0), Buffer.alloc(20)), port);
    await spoofed.waitFor(1);
    // A negative check (no second datagram comes): nothing signals "never", so this one waits.
    await delay(20);
    expect(spoofed.received).toHaveLength(1);
    const challenge = parseEnvelope(spoofed.received[0]!.data);
    expect(challenge).toMatchObject({ kind: 'cookie', id: 9 });
    expect(spoofed.received[0]!.data.length).toBeLessThanOrEqual(3 * 26);
    expect(runs).toBe(0);

    // A real client does the exchange transparently and gets the full answer.
    const client = track(createUdpClient({ host: '127.0.0.1', port, retry: fast }));
    expect((await client.request(Buffer.from('hi'))).length).toBe(1000);
    expect(await client.request(Buffer.from('again'))).toHaveLength(1000);
    expect(client.stats()).toMatchObject({ challenges: 1, retransmissions: 0 });
    expect(server.stats()).toMatchObject({ handled: 2, challenges: 2 });
    expect(runs).toBe(2);
  });

  it('with requireCookie false: answers small requests at once, sends a cookie when the answer is too big', async () => {
    let runs = 0;
    const server = track(
      createUdpServer({
        cookies: {},
        requireCookie: false,
        handler: (req: Buffer) => {
          runs++;
          return req.toString() === 'big' ? big() : Buffer.from('ok');
        },
      }),
    );
    const { port } = await server.bind();
    const client = track(createUdpClient({ host: '127.0.0.1', port, retry: fast }));
    expect((await client.request(Buffer.from('small'))).toString()).toBe('ok');
    expect(client.stats().challenges).toBe(0);

    const other = track(createUdpClient({ host: '127.0.0.1', port, retry: fast }));
    expect(await other.request(Buffer.from('big'))).toHaveLength(1000);
    // The answer waited in the cache while the client fetched a cookie: the handler ran once for it.
    expect(other.stats().challenges).toBe(1);
    expect(runs).toBe(2);
    expect(server.stats()).toMatchObject({ duplicates: 1, withheldBy: { 'amplification-limit': 1 } });
  });

  it('refuses forged cookies and cookies of another address or port', async () => {
    let runs = 0;
    const strikes: string[] = [];
    const cookies = addressCookies();
    const server = track(
      createUdpServer({
        cookies,
        handler: () => {
          runs++;
          return Buffer.from('secret');
        },
        guards: [{ name: 'strikes', violation: (s, v) => strikes.push(`${s.address}:${v.reason}`) }],
      }),
    );
    const { port } = await server.bind({ host: '0.0.0.0', port: 0 });
    const peer = track(await rawPeer());
    await peer.send(encodeEnvelope('request', 1, Buffer.alloc(4), randomBytes(20)), port);
    // A cookie issued to 127.0.0.1:<peer> presented from 127.0.0.2.
    const stolen = cookies.issue('127.0.0.1', peer.port);
    const thief = track(await rawPeer('127.0.0.2'));
    await thief.send(encodeEnvelope('request', 2, Buffer.alloc(4), stolen), port, '127.0.0.1');
    await peer.waitFor(1);
    await thief.waitFor(1);
    expect(parseEnvelope(peer.received[0]!.data)?.kind).toBe('cookie');
    expect(parseEnvelope(thief.received[0]!.data)?.kind).toBe('cookie');
    expect(runs).toBe(0);
    expect(server.stats().droppedBy).toEqual({ 'cookie-invalid': 2 });
    // A forged cookie proves nothing, so it is no strike against the address it claims either.
    expect(strikes).toEqual([]);
    // The genuine owner is served.
    await peer.send(encodeEnvelope('request', 3, Buffer.alloc(4), stolen), port, '127.0.0.1');
    await peer.waitFor(2);
    expect(parseEnvelope(peer.received[1]!.data)).toMatchObject({ kind: 'response', id: 3 });
    expect(runs).toBe(1);
  });

  it('refuses expired cookies (injected clock); the client fetches a new one transparently', async () => {
    let now = 1_700_000_000_000;
    const clock = () => now;
    const server = track(
      createUdpServer({
        cookies: { lifetime: '10s' },
        clock: clockAt(clock),
        handler: () => Buffer.from('ok'),
      }),
    );
    const { port } = await server.bind();
    const client = track(createUdpClient({ host: '127.0.0.1', port, retry: fast }));
    await client.request(Buffer.from('1'));
    now += 4_000;
    await client.request(Buffer.from('2'));
    expect(client.stats().challenges).toBe(1);
    now += 11_000;
    expect((await client.request(Buffer.from('3'))).toString()).toBe('ok');
    expect(client.stats().challenges).toBe(2);
    expect(server.stats().droppedBy).toEqual({ 'cookie-expired': 1 });
  });

  it('refreshes an ageing cookie with the response, before it expires', async () => {
    let now = 1_700_000_000_000;
    const server = track(
      createUdpServer({
        cookies: { lifetime: '10s' },
        clock: clockAt(() => now),
        handler: () => Buffer.from('ok'),
      }),
    );
    const { port } = await server.bind();
    const client = track(createUdpClient({ host: '127.0.0.1', port, retry: fast }));
    await client.request(Buffer.from('1'));
    for (let i = 0; i < 5; i++) {
      now += 6_000; // past half the lifetime each time: every response brings a fresh cookie
      await client.request(Buffer.from('n'));
    }
    expect(client.stats().challenges).toBe(1);
    expect(server.stats().droppedBy).toEqual({});
  });

  it('keeps accepting cookies across one key rotation, not two', async () => {
    const cookies = addressCookies();
    const server = track(createUdpServer({ cookies, handler: () => Buffer.from('ok') }));
    const { port } = await server.bind();
    const client = track(createUdpClient({ host: '127.0.0.1', port, retry: fast }));
    await client.request(Buffer.from('1'));
    cookies.rotate();
    await client.request(Buffer.from('2'));
    expect(client.stats().challenges).toBe(1);
    cookies.rotate();
    await client.request(Buffer.from('3'));
    expect(client.stats().challenges).toBe(2);
    expect(server.stats().droppedBy).toEqual({ 'cookie-invalid': 1 });
  });
});
