// The lab's servers. `node lab/server.mjs guarded|plain [--host H] [--port P]`: an echo server of
// length-prefixed frames, either @sock/core with @sock/guards (built from the packages' public APIs, dist)
// or a plain node:net echo. Prints one JSON line `{ "ready": true, "port": N, "pid": N }`, then, every
// second, `{ "stats": ... }` (guarded only). Exits on SIGTERM/SIGINT or when its parent's stdin closes.
import net from 'node:net';

const args = process.argv.slice(2);
const mode = args[0];
const opt = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const host = opt('--host', '127.0.0.1');
const port = Number(opt('--port', 0));
// `--firewall nft`: guards' bans also go to the kernel (this process runs inside the server's namespace),
// so a banned attacker's SYNs are dropped before they cost the server an accept.
const firewallBackend = opt('--firewall', 'none');

/** The lab's policy: defaults, with limits sized for a small server and short deadlines. */
export const LAB_POLICY = {
  connections: { max: 20_000, perKey: 32 },
  rates: { connections: { rate: 20, burst: 40 }, onExceed: 'close' },
  timeouts: { handshake: '3s', idle: '30s', minRate: { bytesPerSecond: 64, grace: '2s' } },
  strikes: { threshold: 10, window: '1m' },
  bans: { duration: '1m' },
};

let close;
if (mode === 'guarded') {
  // Loaded only here: the plain server must not depend on the packages' builds.
  // Retried: a concurrent `pnpm build` empties dist/ for a few seconds.
  const load = async (path) => {
    for (let i = 0; ; i++) {
      try {
        return await import(path);
      } catch (err) {
        if (i >= 40 || err.code !== 'ERR_MODULE_NOT_FOUND') throw err;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  };
  const { createServer, lengthPrefixed } = await load('../packages/core/dist/index.js');
  const { createGuards } = await load('../packages/guards/dist/index.js');
  let bans = 0;
  let bridge;
  let firewall;
  if (firewallBackend !== 'none') {
    const { createBanBridge, createFirewall } = await load('../packages/firewall/dist/index.js');
    firewall = createFirewall({ backend: firewallBackend === 'nft' ? 'nftables' : firewallBackend });
    await firewall.init();
    bridge = createBanBridge(firewall, { windowMs: 50, maxBansPerSecond: 2000 });
  }
  const guards = createGuards(LAB_POLICY, {
    onBan: (event) => {
      bans++;
      bridge?.onBan(event);
    },
  });
  const rejects = new Map();
  const server = createServer({
    framing: lengthPrefixed({ maxFrameBytes: 64 * 1024 }),
    plugins: [guards.plugin],
    noDelay: true,
    maxWriteBufferBytes: 256 * 1024,
    maxQueuedMessages: 8,
    observers: [
      (e) => {
        if (e.type === 'reject') rejects.set(e.reason, (rejects.get(e.reason) ?? 0) + 1);
      },
    ],
    onError: () => {},
    async handler(conn) {
      for await (const message of conn) await conn.send(message);
    },
  });
  const addr = await server.listen({ host, port, backlog: 4096 });
  console.log(JSON.stringify({ ready: true, port: addr.port, pid: process.pid }));
  const report = (quiet) => {
    const { heapUsed, rss } = process.memoryUsage();
    const stats = { ...server.stats, bans, rejects: Object.fromEntries(rejects), heapUsed, rss, quiet };
    console.log(JSON.stringify({ stats }));
  };
  const timer = setInterval(() => report(false), 1000);
  // The soak asks for a measurement after a full GC (node --expose-gc) between load phases.
  process.on('SIGUSR2', () => {
    globalThis.gc?.();
    report(true);
  });
  close = async () => {
    clearInterval(timer);
    await server.close({ drainMs: 500 }).catch(() => {});
    guards.close();
    await bridge?.close().catch(() => {});
    await firewall?.destroy().catch(() => {});
  };
} else if (mode === 'plain') {
  const sockets = new Set();
  const server = net.createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
    socket.pipe(socket);
  });
  await new Promise((resolve) => server.listen({ host, port, backlog: 4096 }, resolve));
  console.log(JSON.stringify({ ready: true, port: server.address().port, pid: process.pid }));
  close = async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  };
} else {
  console.error('usage: node lab/server.mjs guarded|plain [--host H] [--port P]');
  process.exit(2);
}

let closing = false;
const stop = async () => {
  if (closing) return;
  closing = true;
  const hard = setTimeout(() => process.exit(0), 3000);
  hard.unref();
  await close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.on('error', stop);
process.stdin.resume();
