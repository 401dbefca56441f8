import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { once } from 'node:events';

interface Received {
  readonly data: Buffer;
  readonly rinfo: RemoteInfo;
}

/** A bare node:dgram socket that records what it receives, for poking endpoints with exact bytes. */
export interface RawPeer {
  readonly socket: Socket;
  readonly port: number;
  readonly received: Received[];
  send(data: Uint8Array, port: number, host?: string): Promise<void>;
  /** Resolve once `count` datagrams have arrived in all (rejects after `ms`). */
  waitFor(count: number, ms?: number): Promise<Received[]>;
  close(): Promise<void>;
}

export async function rawPeer(host = '127.0.0.1'): Promise<RawPeer> {
  const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  const received: Received[] = [];
  const waiters: (() => void)[] = [];
  socket.on('message', (data, rinfo) => {
    received.push({ data, rinfo });
    for (const w of waiters.splice(0)) w();
  });
  socket.bind(0, host);
  await once(socket, 'listening');
  let closed = false;
  return {
    socket,
    port: socket.address().port,
    received,
    send: (data, port, to = host) =>
      new Promise((resolve, reject) => socket.send(data, port, to, (err) => (err ? reject(err) : resolve()))),
    async waitFor(count, ms = 2000) {
      const deadline = Date.now() + ms;
      while (received.length < count) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`expected ${count} datagrams, got ${received.length}`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
      return received;
    },
    async close() {
      if (closed) return;
      closed = true;
      await new Promise<void>((resolve) => socket.close(() => resolve()));
    },
  };
}

/**
 * A relay between a client and a server that drops the first `dropReplies` datagrams coming back from
 * the server: a lossy path on loopback.
 */
export async function lossyRelay(
  target: { port: number; host?: string },
  dropReplies: number,
): Promise<{ port: number; dropped: () => number; close: () => Promise<void> }> {
  const host = target.host ?? '127.0.0.1';
  const front = await rawPeer(host);
  const back = await rawPeer(host);
  let client: RemoteInfo | undefined;
  let dropped = 0;
  front.socket.on('message', (data, rinfo) => {
    client = rinfo;
    back.socket.send(data, target.port, host);
  });
  back.socket.on('message', (data) => {
    if (dropped < dropReplies) {
      dropped++;
      return;
    }
    if (client) front.socket.send(data, client.port, client.address);
  });
  return {
    port: front.port,
    dropped: () => dropped,
    close: async () => {
      await Promise.all([front.close(), back.close()]);
    },
  };
}

export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Wait until `check` holds (a counter reached its value: the datagrams were processed), polling; fail
 * after `ms`. A condition, not a guessed delay: fast on an idle machine, still right on a loaded one.
 */
export async function until(check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 2));
  }
}
