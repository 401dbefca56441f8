import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { userInfo } from 'node:os';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Sshd, startSshd } from '../../../test-support/openssh.mjs';
import { built, SOCK } from './helpers.js';

// `sock tunnel -L` through a real OpenSSH sshd to a TCP server this test owns, so the far side can stop
// reading, reset, or watch its socket close.

let sshd: Sshd;
let knownHosts: string;
const tunnels = new Set<ChildProcess>();
const servers = new Set<Server>();
const sockets = new Set<Socket>();

beforeAll(async () => {
  expect(built(), 'build the CLI first: pnpm build').toBe(true);
  sshd = await startSshd();
  const [type, key] = sshd.hostKeyPub.split(' ');
  knownHosts = `${sshd.dir}/known_hosts`;
  writeFileSync(knownHosts, `[127.0.0.1]:${sshd.port} ${type} ${key}\n`);
});
afterAll(async () => {
  await sshd?.stop();
});
afterEach(async () => {
  for (const s of sockets) s.destroy();
  sockets.clear();
  for (const t of tunnels) t.kill('SIGKILL');
  tunnels.clear();
  await Promise.all([...servers].map((s) => new Promise((r) => s.close(r))));
  servers.clear();
});

/** A loopback TCP server for the far side of the tunnel; `onSocket` decides what it does. */
async function farServer(onSocket: (s: Socket) => void, allowHalfOpen = false): Promise<number> {
  const server = createServer({ allowHalfOpen }, (s) => {
    sockets.add(s);
    s.on('error', () => {});
    onSocket(s);
  });
  servers.add(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as { port: number }).port;
}

/** `sock tunnel -L 0:127.0.0.1:<farPort>` through sshd; resolves with its local port and its stderr. */
async function tunnel(farPort: number, extra: string[] = []) {
  const child = spawn(
    process.execPath,
    [
      SOCK,
      'tunnel',
      '-L',
      `0:127.0.0.1:${farPort}`,
      `ssh://${userInfo().username}@127.0.0.1:${sshd.port}`,
      '--ssh-key',
      sshd.clientKey,
      '--ssh-known-hosts',
      knownHosts,
      '--json',
      ...extra,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  tunnels.add(child);
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d;
  });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d;
      if (out.includes('\n')) resolve((JSON.parse(out.split('\n')[0]!) as { port: number }).port);
    });
    child.once('exit', (code) => reject(new Error(`tunnel exited ${code}: ${stderr}`)));
  });
  return { port, stderr: () => stderr };
}

async function connectLocal(port: number): Promise<Socket> {
  const socket = netConnect({ host: '127.0.0.1', port });
  sockets.add(socket);
  socket.on('error', () => {});
  await once(socket, 'connect');
  return socket;
}

/** The next `n` bytes `socket` receives, as text. */
function read(socket: Socket, n: number): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    const onData = (d: Buffer) => {
      got += d;
      if (got.length < n) return;
      socket.off('data', onData);
      resolve(got);
    };
    socket.on('data', onData);
  });
}

/** Resolves with true once `socket` closes, false if it has not after `ms` (a bound, not a measurement). */
function closesWithin(socket: Socket, ms: number): Promise<boolean> {
  if (socket.destroyed) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

describe('sock tunnel -L through OpenSSH sshd', { timeout: 60_000 }, () => {
  it('holds the sender back while the local client does not read, then delivers every byte', async () => {
    const farPort = await farServer((s) => s.pipe(s));
    const { port } = await tunnel(farPort);
    const socket = await connectLocal(port);
    socket.pause();
    // Write until the path stops taking bytes (no 'drain' for a second) or far past anything the kernel's
    // socket buffers, the SSH windows and the tunnel's bounded queues could hold together.
    const cap = 256 * 1024 * 1024;
    const chunk = Buffer.alloc(64 * 1024, 0x5a);
    let written = 0;
    while (written < cap) {
      written += chunk.length;
      if (socket.write(chunk)) continue;
      const drained = await Promise.race([
        once(socket, 'drain').then(() => true),
        new Promise<boolean>((r) => setTimeout(() => r(false), 1000)),
      ]);
      if (!drained) break;
    }
    expect(written).toBeLessThan(96 * 1024 * 1024);
    // Now read: everything written comes back, nothing was dropped while held.
    let received = 0;
    let wrong = 0;
    const all = new Promise<void>((resolve, reject) => {
      socket.on('data', (d: Buffer) => {
        for (const b of d) if (b !== 0x5a) wrong++;
        received += d.length;
        if (received >= written) resolve();
      });
      socket.once('close', () => reject(new Error(`closed after ${received} of ${written} bytes`)));
    });
    socket.resume();
    await all;
    expect({ received, wrong }).toEqual({ received: written, wrong: 0 });
  });

  it('a far-side reset mid-transfer closes the local connection', async () => {
    let far = 0;
    const farPort = await farServer((s) => {
      s.on('data', (d: Buffer) => {
        far += d.length;
        if (far >= 1024 * 1024) s.resetAndDestroy();
      });
    });
    const { port } = await tunnel(farPort);
    const socket = await connectLocal(port);
    const chunk = Buffer.alloc(64 * 1024, 1);
    const closed = closesWithin(socket, 30_000);
    const writing = (async () => {
      for (let i = 0; i < 1024 && !socket.destroyed; i++) {
        if (!socket.write(chunk)) await Promise.race([once(socket, 'drain'), once(socket, 'close')]);
      }
    })();
    expect(await closed).toBe(true);
    await writing;
    expect(far).toBeGreaterThanOrEqual(1024 * 1024);
  });

  it('a local reset closes the channel: the far side gets its FIN, and what it sends after is refused', async () => {
    let farSocket: Socket | undefined;
    let arrive!: () => void;
    const arrived = new Promise<void>((resolve) => {
      arrive = resolve;
    });
    let ended = false;
    const farPort = await farServer((s) => {
      farSocket = s;
      s.once('data', () => arrive());
      // Half-open after the FIN: only a closed channel (sshd closing its socket) makes these writes fail.
      s.once('end', () => {
        ended = true;
        const timer = setInterval(() => s.write('late'), 50);
        s.once('close', () => clearInterval(timer));
      });
    }, true);
    const { port } = await tunnel(farPort);
    const socket = await connectLocal(port);
    socket.write('hello');
    await arrived;
    socket.resetAndDestroy();
    expect(await closesWithin(farSocket!, 30_000)).toBe(true);
    expect(ended).toBe(true);
  });

  it('keeps the guard flags on the local listener: --deny refuses at accept, --max-conns holds the limit', async () => {
    const farPort = await farServer((s) => s.pipe(s));
    const denied = await tunnel(farPort, ['--deny', '127.0.0.1']);
    const refused = await connectLocal(denied.port);
    expect(await closesWithin(refused, 30_000)).toBe(true);
    await expect.poll(denied.stderr, { timeout: 10_000 }).toContain('refused: ip-denied');

    const limited = await tunnel(farPort, ['--max-conns', '1']);
    const first = await connectLocal(limited.port);
    first.write('one');
    expect(await read(first, 3)).toBe('one');
    const second = await connectLocal(limited.port);
    expect(await closesWithin(second, 30_000)).toBe(true);
    await expect.poll(limited.stderr, { timeout: 10_000 }).toContain('refused: conn-limit');
    // The first connection still works after the second was refused.
    first.write('two');
    expect(await read(first, 3)).toBe('two');
  });
});
