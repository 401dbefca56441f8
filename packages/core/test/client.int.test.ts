import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type ClientTransport,
  type Connection,
  connect,
  createServer,
  reconnect,
  type SockServer,
  tcp,
} from '../src/index.js';
import { backoffDelay } from '../src/internal.js';
import { delay } from './helpers.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function freePort(): Promise<number> {
  const s: Server = createNetServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe('connect', () => {
  it('refused: ERR_SOCK_CONNECTION_REFUSED', async () => {
    const port = await freePort();
    await expect(connect({ port })).rejects.toMatchObject({ code: 'ERR_SOCK_CONNECTION_REFUSED' });
  });

  it('timeout: ERR_SOCK_CONNECT_TIMEOUT when the handshake never completes', async () => {
    // A transport whose handshake stalls (like a TLS server that never answers) on a real socket.
    const silent = createNetServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => silent.close(r)));
    const stalling: ClientTransport = {
      name: 'stalling',
      dial: async (options) => {
        const socket = await tcp().dial(options);
        return new Promise<Socket>((_resolve, reject) => {
          options.signal.addEventListener('abort', () => {
            socket.destroy();
            reject(options.signal.reason);
          });
        });
      },
    };
    const port = (silent.address() as { port: number }).port;
    // The timing itself is tested in virtual time (virtual-time.test.ts); here, a real stalled socket.
    await expect(connect({ port, transport: stalling, timeoutMs: 150 })).rejects.toMatchObject({
      code: 'ERR_SOCK_CONNECT_TIMEOUT',
    });
  });

  it('abort: ERR_SOCK_ABORTED, also during retry backoff', async () => {
    const port = await freePort();
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    await expect(
      connect({ port, signal: controller.signal, retry: { attempts: 50, initialDelayMs: 1000, jitter: 0 } }),
    ).rejects.toMatchObject({ code: 'ERR_SOCK_ABORTED' });
    await expect(connect({ port, signal: AbortSignal.abort() })).rejects.toMatchObject({
      code: 'ERR_SOCK_ABORTED',
    });
  });

  it('retries with backoff until the server comes up', async () => {
    const port = await freePort();
    let server: SockServer | undefined;
    setTimeout(() => {
      server = createServer({ handler: (c) => void c.close() });
      void server.listen({ port });
    }, 150);
    cleanups.push(() => server?.close());
    const conn = await connect({ port, retry: { attempts: 20, initialDelayMs: 20, maxDelayMs: 50 } });
    expect(conn.remotePort).toBe(port);
    await conn.close();
  });

  it('gives up after the bounded attempts with the last error', async () => {
    const port = await freePort();
    // The delays between attempts are tested in virtual time (virtual-time.test.ts).
    await expect(
      connect({ port, retry: { attempts: 3, initialDelayMs: 10, jitter: 0 } }),
    ).rejects.toMatchObject({
      code: 'ERR_SOCK_CONNECTION_REFUSED',
    });
  });

  it('rejects an invalid port with a typed error', async () => {
    await expect(connect({ port: 70000 })).rejects.toMatchObject({ code: 'ERR_SOCK_INVALID_OPTION' });
  });
});

describe('backoff', () => {
  it('grows exponentially up to the ceiling, with full jitter by default', () => {
    const none = { initialDelayMs: 100, maxDelayMs: 1000, jitter: 0 };
    expect([1, 2, 3, 4, 5, 6, 7].map((a) => backoffDelay(a, none))).toEqual([
      0, 100, 200, 400, 800, 1000, 1000,
    ]);
    expect(backoffDelay(3, { initialDelayMs: 100, random: () => 0.999 })).toBeLessThan(1);
    expect(backoffDelay(3, { initialDelayMs: 100, random: () => 0 })).toBe(200);
    expect(backoffDelay(3, { initialDelayMs: 100, jitter: 0.5, random: () => 0.5 })).toBe(150);
  });
});

describe('reconnect', () => {
  it('yields a new connection after the server drops the old one', async () => {
    let accepted = 0;
    const server = createServer({
      handler(conn) {
        accepted++;
        setTimeout(() => conn.destroy(), 30);
      },
    });
    const { port } = await server.listen();
    cleanups.push(() => server.close({ drainMs: 50 }));
    const controller = new AbortController();
    const seen: Connection[] = [];
    for await (const conn of reconnect({
      port,
      signal: controller.signal,
      retry: { attempts: 5, initialDelayMs: 10, maxDelayMs: 20 },
    })) {
      seen.push(conn);
      if (seen.length === 3) {
        controller.abort();
        await conn.close();
      }
    }
    expect(seen).toHaveLength(3);
    expect(new Set(seen.map((c) => c.localPort)).size).toBe(3);
    await delay(20);
    expect(accepted).toBe(3);
  });

  it('throws after the bounded attempts when the server stays down', async () => {
    const port = await freePort();
    const run = async () => {
      for await (const _ of reconnect({ port, retry: { attempts: 3, initialDelayMs: 5 } })) {
        // never
      }
    };
    await expect(run()).rejects.toMatchObject({ code: 'ERR_SOCK_CONNECTION_REFUSED' });
  });
});
