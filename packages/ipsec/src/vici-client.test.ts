import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PacketReader } from './packet-reader.js';
import { createViciClient, type ViciClient } from './vici-client.js';
import { encodePacket, type Packet, PacketType } from './vici-wire.js';

/**
 * A daemon that misbehaves on purpose (charon cannot be made to): it answers through `handle`, which
 * may reply, stay silent, send garbage or hang up. The real daemon is tested in test/tunnel.int.test.ts.
 */
interface FakeDaemon {
  path: string;
  received: Packet[];
  connections: number;
  sockets: Set<Socket>;
  close(): Promise<void>;
}
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function fakeDaemon(handle: (p: Packet, s: Socket, d: FakeDaemon) => void): Promise<FakeDaemon> {
  const dir = mkdtempSync(join(tmpdir(), 'sock-vici-'));
  const sockets = new Set<Socket>();
  const daemon: FakeDaemon = {
    path: join(dir, 'vici.sock'),
    received: [],
    connections: 0,
    sockets,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
  const server: Server = createServer((socket) => {
    daemon.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    const reader = new PacketReader();
    socket.on('data', (chunk: Buffer) => {
      for (const p of reader.push(chunk)) {
        daemon.received.push(p);
        handle(p, socket, daemon);
      }
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(daemon.path, r));
  cleanups.push(async () => {
    await daemon.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return daemon;
}

function client(path: string, options: Parameters<typeof createViciClient>[0] = {}): ViciClient {
  const c = createViciClient({ socket: path, timeoutMs: 2000, ...options });
  cleanups.push(() => c.close());
  return c;
}

/** Behaves like charon for commands and registrations. */
const polite = (p: Packet, s: Socket) => {
  if (p.type === PacketType.CMD_REQUEST)
    s.write(encodePacket(PacketType.CMD_RESPONSE, undefined, { answer: p.name!, ...(p.message ?? {}) }));
  else if (p.type === PacketType.EVENT_REGISTER || p.type === PacketType.EVENT_UNREGISTER)
    s.write(encodePacket(PacketType.EVENT_CONFIRM, undefined, undefined));
};

const code = (c: string) => expect.objectContaining({ code: c });

describe('VICI client against a misbehaving daemon', () => {
  it('sends one command at a time and matches answers in order', async () => {
    const pending: Array<() => void> = [];
    const d = await fakeDaemon((p, s) => pending.push(() => polite(p, s)));
    const c = client(d.path);
    const first = c.request('one', { n: '1' });
    const second = c.request('two', { n: '2' });
    await until(() => pending.length === 1);
    await new Promise((r) => setTimeout(r, 20));
    expect(d.received.map((p) => p.name)).toEqual(['one']); // the second waits for the first answer
    pending.shift()!();
    await until(() => pending.length === 1);
    pending.shift()!();
    expect(await first).toEqual({ answer: 'one', n: '1' });
    expect(await second).toEqual({ answer: 'two', n: '2' });
    expect(c.stats()).toMatchObject({ connects: 1, commands: 2 });
  });

  it('times out a command the daemon never answers, drops that connection, and recovers on the next', async () => {
    let silent = true;
    const d = await fakeDaemon((p, s) => {
      if (!silent) polite(p, s);
    });
    const c = client(d.path, { timeoutMs: 100 });
    await expect(c.request('hang')).rejects.toThrow(code('ERR_SOCK_IPSEC_TIMEOUT'));
    await until(() => d.sockets.size === 0);
    silent = false;
    expect(await c.request('version')).toEqual({ answer: 'version' });
    expect(d.connections).toBe(2);
  });

  it('closes the socket when the daemon announces an oversized packet, holding none of it', async () => {
    const d = await fakeDaemon((_p, s) => {
      const header = Buffer.alloc(4);
      header.writeUInt32BE(64 * 1024 * 1024);
      s.write(header);
      s.write(Buffer.alloc(64 * 1024)); // and starts streaming it
    });
    const c = client(d.path, { maxMessageBytes: 4096 });
    await expect(c.request('list-certs')).rejects.toThrow(code('ERR_SOCK_IPSEC_MESSAGE_TOO_LARGE'));
    await until(() => d.sockets.size === 0);
    expect(c.stats().protocolErrors).toBe(1);
  });

  it('rejects a too deeply nested answer', async () => {
    const d = await fakeDaemon((_p, s) => {
      let m: Record<string, unknown> = {};
      const root = m;
      for (let i = 0; i < 20; i++) {
        const n = {};
        m.s = n;
        m = n;
      }
      s.write(
        encodePacket(PacketType.CMD_RESPONSE, undefined, root as never, {
          maxMessageBytes: 1 << 20,
          maxDepth: 64,
        }),
      );
    });
    const c = client(d.path, { maxDepth: 8 });
    await expect(c.request('x')).rejects.toThrow(code('ERR_SOCK_IPSEC_TOO_DEEP'));
  });

  it('treats an answer nobody asked for, or of the wrong kind, as a protocol error', async () => {
    const d = await fakeDaemon((_p, s) =>
      s.write(encodePacket(PacketType.EVENT_CONFIRM, undefined, undefined)),
    );
    const c = client(d.path);
    await expect(c.request('x')).rejects.toThrow(code('ERR_SOCK_IPSEC_PROTOCOL'));
  });

  it('fails the command in flight when charon hangs up, and reports CMD_UNKNOWN', async () => {
    const d = await fakeDaemon((p, s) => {
      if (p.name === 'bye') s.destroy();
      else s.write(encodePacket(PacketType.CMD_UNKNOWN, undefined, undefined));
    });
    const c = client(d.path);
    await expect(c.request('bye')).rejects.toThrow(code('ERR_SOCK_IPSEC_DISCONNECTED'));
    await expect(c.request('what')).rejects.toThrow(code('ERR_SOCK_IPSEC_UNKNOWN_COMMAND'));
  });

  it('forgets a half-written answer when charon hangs up mid-packet, and starts clean on the next', async () => {
    let half = true;
    const d = await fakeDaemon((p, s) => {
      if (!half) return polite(p, s);
      half = false;
      const full = encodePacket(PacketType.CMD_RESPONSE, undefined, { big: 'x'.repeat(1000) });
      s.end(full.subarray(0, 600));
    });
    const c = client(d.path);
    await expect(c.request('first')).rejects.toThrow(code('ERR_SOCK_IPSEC_DISCONNECTED'));
    expect(await c.request('second')).toEqual({ answer: 'second' });
  });

  it('says clearly when no daemon listens', async () => {
    const c = client('/nonexistent/charon.vici');
    await expect(c.request('version')).rejects.toThrow(code('ERR_SOCK_IPSEC_CONNECT_FAILED'));
  });

  it('aborts through the signal, queued or in flight', async () => {
    const d = await fakeDaemon(() => {});
    const c = client(d.path);
    const ac = new AbortController();
    const inFlight = c.request('slow', {}, { signal: ac.signal });
    const queued = c.request('queued', {}, { signal: ac.signal });
    await until(() => d.received.length === 1);
    ac.abort();
    await expect(inFlight).rejects.toThrow(code('ERR_SOCK_IPSEC_ABORTED'));
    await expect(queued).rejects.toThrow(/aborted|DISCONNECTED|charon closed/);
    await expect(c.request('x', {}, { signal: ac.signal })).rejects.toThrow(code('ERR_SOCK_IPSEC_ABORTED'));
  });

  it('streams events to subscribers and re-registers them after the daemon restarts', async () => {
    const d = await fakeDaemon(polite);
    const c = client(d.path, { reconnectDelayMs: 10 });
    const events = c.subscribe(['ike-updown']);
    const first = events.next();
    await until(() => d.sockets.size === 1 && d.received.length === 1);
    const send = () => {
      for (const s of d.sockets) s.write(encodePacket(PacketType.EVENT, 'ike-updown', { up: 'yes' }));
    };
    send();
    expect((await first).value).toEqual({ name: 'ike-updown', message: { up: 'yes' } });
    for (const s of d.sockets) s.destroy(); // charon restarts
    await until(
      () =>
        d.connections === 2 && d.received.filter((p) => p.type === PacketType.EVENT_REGISTER).length === 2,
    );
    const second = events.next();
    send();
    expect((await second).value).toEqual({ name: 'ike-updown', message: { up: 'yes' } });
    expect(c.stats().reconnects).toBe(1);
    await events.return!();
    await until(() => d.received.some((p) => p.type === PacketType.EVENT_UNREGISTER));
  });

  it('ends a subscriber that does not read once maxQueuedEvents wait, without holding more', async () => {
    const d = await fakeDaemon(polite);
    const c = client(d.path, { maxQueuedEvents: 5 });
    const events = c.subscribe(['log']);
    await c.request('sync');
    for (const s of d.sockets)
      for (let i = 0; i < 50; i++) s.write(encodePacket(PacketType.EVENT, 'log', { i: String(i) }));
    await c.request('sync'); // every event arrived before this answer
    await expect(events.next()).rejects.toThrow(code('ERR_SOCK_IPSEC_EVENTS_OVERFLOW'));
    expect((await events.next()).done).toBe(true);
  });

  it('streamed() hands over the events of one command, then unregisters', async () => {
    const d = await fakeDaemon((p, s) => {
      if (p.type === PacketType.CMD_REQUEST) {
        for (let i = 0; i < 3; i++)
          s.write(encodePacket(PacketType.EVENT, 'list-sa', { [`sa${i}`]: { state: 'UP' } }));
      }
      polite(p, s);
    });
    const c = client(d.path);
    const seen: unknown[] = [];
    await c.streamed('list-sas', 'list-sa', {}, (m) => seen.push(m));
    expect(seen).toHaveLength(3);
    expect(d.received.map((p) => p.type)).toEqual([
      PacketType.EVENT_REGISTER,
      PacketType.CMD_REQUEST,
      PacketType.EVENT_UNREGISTER,
    ]);
  });

  it('gives each of two concurrent streamed commands only its own events', async () => {
    const d = await fakeDaemon((p, s) => {
      if (p.type === PacketType.CMD_REQUEST) {
        const n = p.message!.n as string;
        for (let i = 0; i < 2; i++) s.write(encodePacket(PacketType.EVENT, 'list-sa', { from: n }));
      }
      polite(p, s);
    });
    const c = client(d.path);
    const one: unknown[] = [];
    const two: unknown[] = [];
    await Promise.all([
      c.streamed('list-sas', 'list-sa', { n: '1' }, (m) => one.push(m.from)),
      c.streamed('list-sas', 'list-sa', { n: '2' }, (m) => two.push(m.from)),
    ]);
    expect(one).toEqual(['1', '1']);
    expect(two).toEqual(['2', '2']);
  });

  it('ends a subscription on its signal: the waiting next() rejects, the daemon is told', async () => {
    const d = await fakeDaemon(polite);
    const c = client(d.path);
    const ac = new AbortController();
    const events = c.subscribe(['ike-updown', 'child-updown'], { signal: ac.signal });
    const next = events.next();
    await until(() => d.received.filter((p) => p.type === PacketType.EVENT_REGISTER).length === 2);
    ac.abort();
    await expect(next).rejects.toThrow(code('ERR_SOCK_IPSEC_ABORTED'));
    expect((await events.next()).done).toBe(true);
    await until(() => d.received.filter((p) => p.type === PacketType.EVENT_UNREGISTER).length === 2);
  });

  it('close() fails what is pending and ends subscriptions', async () => {
    const d = await fakeDaemon((p, s) => {
      if (p.type !== PacketType.CMD_REQUEST) polite(p, s);
    });
    const c = client(d.path);
    const events = c.subscribe(['x']);
    const next = events.next();
    const pending = c.request('never');
    await until(() => d.received.length === 2);
    const failed = expect(pending).rejects.toThrow(code('ERR_SOCK_IPSEC_CLOSED'));
    await c.close();
    await failed;
    expect((await next).done).toBe(true);
    await expect(c.request('after')).rejects.toThrow(code('ERR_SOCK_IPSEC_CLOSED'));
  });
});

async function until(check: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 5));
  }
}
