import { once } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';
import { afterEach } from 'vitest';
import type { SockServer } from '../src/index.js';

export { delay, u32 } from '../../../test-support/bytes.js';

/** A raw TCP client for poking a server with exact bytes. */
export async function rawClient(port: number, host = '127.0.0.1', localAddress?: string): Promise<Socket> {
  const socket = netConnect({ port, host, localAddress });
  await once(socket, 'connect');
  return socket;
}

/** Everything the socket receives until it closes. */
export async function readAll(socket: Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.on('error', () => {});
  if (!socket.closed) await new Promise((resolve) => socket.once('close', resolve));
  return Buffer.concat(chunks);
}

/** Servers registered through the returned function are closed after each test, even when it fails. */
export function closeAfterEach(): <I, O>(server: SockServer<I, O>) => SockServer<I, O> {
  const servers: Array<{ close(o: { drainMs: number }): Promise<void> }> = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close({ drainMs: 200 })));
  });
  return (server) => {
    servers.push(server);
    return server;
  };
}
