import { once } from 'node:events';
import { createServer as createNetServer, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type ConnectionInfo,
  connect,
  createServer,
  lengthPrefixed,
  type Plugin,
  reject,
} from '../src/index.js';
import { closeAfterEach } from './helpers.js';

const track = closeAfterEach();
const netServers: Array<ReturnType<typeof createNetServer>> = [];
afterEach(async () => {
  await Promise.all(netServers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/**
 * A Duplex that is not a net.Socket (no remoteAddress, no setNoDelay), carrying a socket's bytes: what an
 * SSH channel looks like to core.
 */
function wrap(socket: Socket): Duplex {
  const stream: Duplex = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk, _encoding, callback) {
      socket.write(chunk, callback);
    },
    final(callback) {
      socket.end();
      callback();
    },
    destroy(err, callback) {
      socket.destroy();
      callback(err);
    },
  });
  socket.on('data', (chunk) => {
    if (!stream.push(chunk)) socket.pause();
  });
  socket.on('end', () => stream.push(null));
  socket.on('close', () => stream.destroy());
  socket.on('error', () => {});
  return stream;
}

/** A plain node:net listener whose sockets are handed, wrapped, to `onStream`. */
async function foreignListener(onStream: (stream: Duplex) => void): Promise<number> {
  const net = createNetServer({ allowHalfOpen: true }, (socket) => onStream(wrap(socket)));
  netServers.push(net);
  net.listen(0, '127.0.0.1');
  await once(net, 'listening');
  return (net.address() as { port: number }).port;
}

const peer = {
  remoteAddress: '::ffff:192.0.2.7',
  remotePort: 50022,
  localAddress: '127.0.0.1',
  localPort: 22,
  transport: 'ssh',
  identity: { user: 'alice', key: 'SHA256:abc' },
};

describe('server.adopt', () => {
  it('serves a Duplex that is not a socket, with the given peer and identity', async () => {
    const seen: ConnectionInfo[] = [];
    const server = track(
      createServer({
        framing: lengthPrefixed(),
        async handler(conn) {
          seen.push(conn);
          for await (const m of conn) await conn.send(Buffer.concat([Buffer.from('echo:'), m]));
        },
      }),
    );
    const port = await foreignListener((stream) => server.adopt(stream, peer));
    const client = await connect({ port, framing: lengthPrefixed() });
    await client.send(Buffer.from('hi'));
    const it = client[Symbol.asyncIterator]();
    expect((await it.next()).value?.toString()).toBe('echo:hi');
    expect(server.connections.size).toBe(1);
    expect(seen[0]).toMatchObject({
      remoteAddress: '192.0.2.7',
      remoteFamily: 'IPv4',
      remotePort: 50022,
      localPort: 22,
      transport: 'ssh',
      identity: { user: 'alice', key: 'SHA256:abc' },
    });
    await client.close();
    await server.close({ drainMs: 500 });
    expect(server.stats()).toMatchObject({ accepted: 1, closed: 1 });
  });

  it('runs accept hooks on adopted streams (and skips preface hooks)', async () => {
    let prefaceCalls = 0;
    const policy: Plugin = {
      name: 'deny-mallory',
      preface: async () => {
        prefaceCalls++;
        return undefined;
      },
      accept: (conn) => (conn.identity?.user === 'mallory' ? reject('user-denied') : undefined),
    };
    const server = track(
      createServer({
        plugins: [policy],
        async handler(conn) {
          for await (const m of conn) await conn.send(m);
        },
      }),
    );
    const port = await foreignListener((stream) =>
      server.adopt(stream, { ...peer, identity: { user: 'mallory' } }),
    );
    const client = await connect({ port });
    const closed = await client.closed;
    expect(closed.reason).not.toBe('closed');
    expect(server.stats().rejected).toEqual({ 'user-denied': 1 });
    expect(prefaceCalls).toBe(0);
  });
});
