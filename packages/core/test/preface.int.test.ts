import { once } from 'node:events';
import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { type ConnectionInfo, createServer, type PeerAddress, type Plugin } from '../src/index.js';
import { closeAfterEach, rawClient, readAll, u32 } from './helpers.js';

const track = closeAfterEach();

const V2_SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

/** A PROXY v2 header, PROXY command, TCP over IPv6: 16-byte source and destination, then ports. */
function proxyV2(source: Buffer, sourcePort: number, destination: Buffer, destinationPort: number): Buffer {
  const body = Buffer.alloc(36);
  source.copy(body, 0);
  destination.copy(body, 16);
  body.writeUInt16BE(sourcePort, 32);
  body.writeUInt16BE(destinationPort, 34);
  const head = Buffer.alloc(4);
  head[0] = 0x21; // version 2, PROXY
  head[1] = 0x21; // AF_INET6, STREAM
  head.writeUInt16BE(body.length, 2);
  return Buffer.concat([V2_SIGNATURE, head, body]);
}

async function readExactly(socket: Socket, n: number): Promise<Buffer> {
  for (;;) {
    const chunk = socket.read(n) as Buffer | null;
    if (chunk) return chunk;
    await once(socket, 'readable');
  }
}

/**
 * The least a preface plug-in does: parse the header, format the source as eight hex groups (no `::`,
 * no dotted tail — a spelling core must still recognise as IPv4-mapped), and name the peer.
 */
const naiveProxyV2: Plugin = {
  name: 'naive-proxy-v2',
  async preface(socket): Promise<PeerAddress> {
    const head = await readExactly(socket, 16);
    const body = await readExactly(socket, head.readUInt16BE(14));
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(body.readUInt16BE(i).toString(16));
    return { address: groups.join(':'), port: body.readUInt16BE(32) };
  },
};

describe('preface plug-ins', () => {
  it('an IPv4-mapped source from a PROXY v2 header is the IPv4 peer everywhere', async () => {
    const atAccept: Array<Pick<ConnectionInfo, 'remoteAddress' | 'remoteFamily'>> = [];
    const seen: ConnectionInfo[] = [];
    const server = track(
      createServer({
        plugins: [
          naiveProxyV2,
          {
            name: 'recorder',
            accept: (conn) => {
              atAccept.push({ remoteAddress: conn.remoteAddress, remoteFamily: conn.remoteFamily });
            },
          },
        ],
        async handler(conn) {
          seen.push(conn);
          for await (const m of conn) await conn.send(m);
        },
      }),
    );
    const { port } = await server.listen();
    const socket = await rawClient(port);
    const mapped = Buffer.from('00000000000000000000ffffc0000207', 'hex'); // ::ffff:192.0.2.7
    const local = Buffer.from('00000000000000000000ffff7f000001', 'hex');
    const reply = readAll(socket);
    socket.end(Buffer.concat([proxyV2(mapped, 40000, local, port), u32('after the header')]));
    expect((await reply).subarray(4).toString()).toBe('after the header');
    expect(atAccept).toEqual([{ remoteAddress: '192.0.2.7', remoteFamily: 'IPv4' }]);
    expect(seen[0]).toMatchObject({
      remoteAddress: '192.0.2.7',
      remoteFamily: 'IPv4',
      remotePort: 40000,
      socketAddress: '127.0.0.1',
    });
  });
});
