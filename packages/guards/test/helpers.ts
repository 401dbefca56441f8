import { once } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';
import { createServer, type RejectEvent, type SockEvent, type SockServer } from '@sock/core';
import { afterEach } from 'vitest';
import { delay, u32 } from '../../../test-support/bytes.js';
import type { Guards } from '../src/index.js';

export { u32 };

const servers: SockServer<Buffer, Uint8Array>[] = [];
const sockets: Socket[] = [];
const guardsList: Guards[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(servers.splice(0).map((s) => s.close({ drainMs: 100 })));
  for (const g of guardsList.splice(0)) g.close();
});

export interface TestServer {
  server: SockServer<Buffer, Uint8Array>;
  port: number;
  rejects: RejectEvent[];
  events: SockEvent[];
}

/** A server with `guards` that greets every admitted connection with its peer address and echoes frames. */
export async function guardedServer(
  guards: Guards,
  host = '127.0.0.1',
  ipv6Only?: boolean,
  plugin = guards.plugin,
): Promise<TestServer> {
  guardsList.push(guards);
  const rejects: RejectEvent[] = [];
  const events: SockEvent[] = [];
  const server = createServer<Buffer, Uint8Array>({
    plugins: [plugin],
    observers: [
      (e) => {
        events.push(e);
        if (e.type === 'reject') rejects.push(e);
      },
    ],
    async handler(conn) {
      await conn.send(Buffer.from(`${conn.remoteAddress} ${conn.remotePort}`));
      for await (const m of conn) await conn.send(m).catch(() => {});
    },
  });
  servers.push(server);
  const listenOptions = ipv6Only === undefined ? { host, port: 0 } : { host, port: 0, ipv6Only };
  const { port } = await server.listen(listenOptions);
  return { server, port, rejects, events };
}

export function track(socket: Socket): Socket {
  sockets.push(socket);
  return socket;
}

/** Connect and wait for the greeting (admitted) or the close (rejected). */
export async function attempt(
  port: number,
  host = '127.0.0.1',
  localAddress?: string,
  prefix?: Buffer,
): Promise<{ socket: Socket; admitted: boolean; greeting: string; rest: Buffer }> {
  const socket = track(netConnect({ port, host, localAddress }));
  socket.on('error', () => {});
  await once(socket, 'connect');
  if (prefix) socket.write(prefix);
  let greeting = '';
  let rest: Buffer = Buffer.alloc(0);
  const admitted = await new Promise<boolean>((resolve) => {
    socket.once('data', (d: Buffer) => {
      const length = d.readUInt32BE(0);
      greeting = d.subarray(4, 4 + length).toString();
      rest = d.subarray(4 + length);
      resolve(true);
    });
    socket.once('close', () => resolve(false));
  });
  return { socket, admitted, greeting, rest };
}

export async function closeAndWait(socket: Socket): Promise<void> {
  if (socket.closed) return;
  const closed = once(socket, 'close');
  socket.end();
  socket.destroy();
  await closed;
}

/** Poll until `check` is true, or fail after `ms`. */
export async function until(check: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await delay(5);
  }
}

export function reasons(rejects: RejectEvent[]): string[] {
  return rejects.map((r) => r.reason);
}
