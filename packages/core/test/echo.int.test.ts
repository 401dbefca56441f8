import { describe, expect, it } from 'vitest';
import {
  bytes,
  type Codec,
  connect,
  createServer,
  delimited,
  type Framing,
  json,
  lengthPrefixed,
  raw,
  text,
} from '../src/index.js';
import { closeAfterEach } from './helpers.js';

const track = closeAfterEach();

const framings: Array<[string, () => Framing]> = [
  ['length-u16', () => lengthPrefixed({ header: 'u16' })],
  ['length-u32', () => lengthPrefixed()],
  ['delimited', () => delimited()],
];
const codecs: Array<[string, () => Codec<unknown, unknown>, unknown[]]> = [
  ['bytes', () => bytes() as Codec<unknown, unknown>, [Buffer.from([1, 2, 3]), Buffer.alloc(0)]],
  ['text', () => text() as Codec<unknown, unknown>, ['héllo', 'wörld ✓']],
  ['json', () => json(), [{ a: 1, b: [true, null] }, 'str', 42]],
];
const hosts = ['127.0.0.1', '::1'];

describe.each(hosts)('echo on %s', (host) => {
  describe.each(framings)('framing %s', (_f, framing) => {
    it.each(codecs)('codec %s', async (_c, codec, messages) => {
      const server = track(
        createServer<unknown, unknown>({
          framing: framing(),
          codec: codec(),
          async handler(conn) {
            for await (const m of conn) await conn.send(m);
          },
        }),
      );
      const { port, family } = await server.listen({ host, port: 0 });
      expect(family).toBe(host === '::1' ? 'IPv6' : 'IPv4');
      const client = await connect<unknown, unknown>({ host, port, framing: framing(), codec: codec() });
      for (const m of messages) await client.send(m);
      const got: unknown[] = [];
      for await (const m of client) {
        got.push(m);
        if (got.length === messages.length) break;
      }
      expect(got).toEqual(messages);
      await client.close();
    });
  });
});

describe('raw byte stream', () => {
  it('echoes bytes as they come', async () => {
    const server = track(
      createServer({
        framing: raw(),
        async handler(conn) {
          for await (const chunk of conn) await conn.send(chunk);
        },
      }),
    );
    const { port } = await server.listen();
    const client = await connect({ port, framing: raw() });
    const payload = Buffer.alloc(200_000, 'z');
    for (let off = 0; off < payload.length; off += 65536)
      await client.send(payload.subarray(off, off + 65536));
    let received = 0;
    for await (const chunk of client) {
      received += chunk.length;
      if (received >= payload.length) break;
    }
    expect(received).toBe(payload.length);
    await client.close();
  });
});

describe('addresses', () => {
  it('dual-stack listener sees IPv4 peers as IPv4, not mapped IPv6', async () => {
    const seen: Array<[string, string]> = [];
    const server = track(
      createServer({
        handler(conn) {
          seen.push([conn.remoteAddress, conn.remoteFamily]);
          void conn.close();
        },
      }),
    );
    const { port } = await server.listen({ host: '::', ipv6Only: false });
    const v4 = await connect({ host: '127.0.0.1', port });
    await v4.closed;
    const v6 = await connect({ host: '::1', port });
    await v6.closed;
    expect(seen).toEqual([
      ['127.0.0.1', 'IPv4'],
      ['::1', 'IPv6'],
    ]);
  });

  it('address() reports the bound port and null after close', async () => {
    const server = createServer({ handler() {} });
    const a = await server.listen({ port: 0 });
    expect(server.address()).toEqual(a);
    expect(a.port).toBeGreaterThan(0);
    await server.close();
    expect(server.address()).toBeNull();
  });

  it('counts bytes and frames both ways', async () => {
    const server = track(
      createServer({
        framing: delimited(),
        codec: text(),
        async handler(conn) {
          for await (const m of conn) await conn.send(m.toUpperCase());
        },
      }),
    );
    const { port } = await server.listen();
    const client = await connect({ port, framing: delimited(), codec: text() });
    await client.send('abc');
    await client.send('de');
    const it = client[Symbol.asyncIterator]();
    expect((await it.next()).value).toBe('ABC');
    expect((await it.next()).value).toBe('DE');
    expect(client.stats).toEqual({ bytesIn: 7, bytesOut: 7, framesIn: 2, framesOut: 2 });
    await client.close();
  });
});
