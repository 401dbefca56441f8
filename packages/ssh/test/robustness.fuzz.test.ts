import { once } from 'node:events';
import { connect as netConnect } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runSsh, startSockSsh } from './sock-ssh.js';

let s: Awaited<ReturnType<typeof startSockSsh>>;
beforeAll(async () => {
  s = await startSockSsh({ authTimeoutMs: 2000 });
});
afterAll(() => s?.stop());

/** One SSH binary packet (RFC 4253 §6) with arbitrary fields, lengths possibly lying. */
const packet = fc
  .record({
    length: fc.oneof(fc.nat({ max: 64 }), fc.constantFrom(0, 1, 35_001, 0x7fffffff, 0xffffffff)),
    padding: fc.nat({ max: 255 }),
    type: fc.nat({ max: 255 }),
    body: fc.uint8Array({ maxLength: 256 }),
  })
  .map(({ length, padding, type, body }) => {
    const head = Buffer.alloc(6);
    head.writeUInt32BE(length >>> 0);
    head[4] = padding;
    head[5] = type;
    return Buffer.concat([head, body]);
  });

const ident = fc.oneof(
  fc.constant('SSH-2.0-fuzz\r\n'),
  fc.string({ maxLength: 300 }).map((v) => `SSH-2.0-${v}\r\n`),
  fc.string({ maxLength: 100 }).map((v) => `SSH-1.5-${v}\n`),
  fc.string({ maxLength: 300 }),
  fc.constant(`SSH-2.0-${'x'.repeat(9000)}\r\n`),
  fc.constant('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
);

const attempt = fc.record({
  ident,
  packets: fc.array(packet, { maxLength: 4 }),
  noise: fc.uint8Array({ maxLength: 512 }),
});

describe('malformed identification strings and packets', () => {
  it('never crash the server, and each connection is closed', async () => {
    await fc.assert(
      fc.asyncProperty(attempt, async ({ ident, packets, noise }) => {
        const socket = netConnect(s.port, '127.0.0.1');
        socket.on('error', () => {});
        socket.on('data', () => {});
        await once(socket, 'connect');
        socket.write(ident);
        for (const p of packets) socket.write(p);
        socket.end(Buffer.from(noise));
        // The server closes every such connection: on the error, on our FIN, or at the auth deadline.
        await once(socket, 'close');
      }),
      { numRuns: 80 },
    );
    for (let i = 0; i < 500 && s.server.tcp.connections.size > 0; i++)
      await new Promise((r) => setTimeout(r, 10));
    expect(s.server.tcp.connections.size).toBe(0);
    expect(s.server.tcp.stats().errors).toBe(0);
    // Still serving: a real ssh client gets through.
    const r = await runSsh(['-W', 'echo:7', 'alice@127.0.0.1'], {
      knownHosts: s.knownHosts,
      key: s.clientKey,
      port: s.port,
      input: 'alive\n',
    });
    expect(r.stdout).toMatch(/ssh alive\n$/);
  }, 120_000);
});
