// Receiver (child process): one variant of the receiving side. Prints {"port"} once bound, counts
// datagrams, and answers 'start' (reset the window) and 'report' ({ count, cpuMs, ms, ... }) over IPC.
// Usage: node receiver.mjs <raw|udp|udp-bare|udp-iter>
//   udp: guards + anti-amplification, datagrams by `onDatagram` callback (as raw gets them by 'message');
//   udp-bare: the socket alone, callback; udp-iter: as udp, but read with `for await`.
import { createSocket } from 'node:dgram';
import { once } from 'node:events';

const variant = process.argv[2];
let count = 0;
let windowStart = 0;
let cpuStart = process.cpuUsage();
let details = {};
let close;

if (variant === 'raw') {
  const socket = createSocket('udp4');
  socket.on('message', () => {
    count++;
  });
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  close = () => new Promise((r) => socket.close(r));
  process.stdout.write(`${JSON.stringify({ port: socket.address().port })}\n`);
} else {
  const { createUdpSocket } = await import('../dist/index.js');
  const bare = variant === 'udp-bare';
  const iterated = variant === 'udp-iter';
  const guards = bare ? { kind: 'none', guard: undefined } : await loadGuards();
  const delivery = iterated
    ? {}
    : {
        onDatagram: () => {
          count++;
        },
      };
  const socket = createUdpSocket(
    bare
      ? // Sources trusted as in `udp` (else the unvalidated-source rate caps what is measured).
        { maxQueue: 4096, dangerouslyTrustSourceAddresses: true, ...delivery }
      : // Every datagram through guards' full check, as for proven sources: the cost being measured.
        {
          guards: [guards.guard],
          antiAmplification: true,
          maxQueue: 4096,
          dangerouslyTrustSourceAddresses: true,
          ...delivery,
        },
  );
  const { port } = await socket.bind({ host: '127.0.0.1', port: 0 });
  details = () => ({ admission: guards.kind, dropped: socket.stats().droppedBy });
  close = async () => {
    await socket.close();
    guards.guard?.close?.();
  };
  if (iterated)
    (async () => {
      for await (const _ of socket) count++;
    })();
  process.stdout.write(`${JSON.stringify({ port })}\n`);
}

/** @sock/guards' datagram checks when it is built; otherwise an equivalent admission of our own. */
async function loadGuards() {
  try {
    const { createGuards } = await import('@sock/guards');
    const guards = createGuards({
      ip: { deny: ['203.0.113.0/24', '198.51.100.0/24', '2001:db8::/32'] },
      // Limits far above the offered load: every check runs, none rejects, so both sides count the same.
      rates: {
        datagrams: {
          perKey: { rate: 10_000_000, burst: 10_000_000 },
          bytesPerKey: { rate: 1e10, burst: 1e10 },
        },
      },
    });
    return { kind: '@sock/guards', guard: guards };
  } catch (err) {
    return {
      kind: `own admission (guards unavailable: ${err.message.split('\n')[0]})`,
      guard: ownAdmission(),
    };
  }
}

function ownAdmission() {
  const denied = new Set(['203.0.113.7', '198.51.100.9']);
  const buckets = new Map();
  return {
    name: 'bench-admission',
    admit(source) {
      if (denied.has(source.address)) return { reason: 'ip-denied' };
      const now = Date.now();
      let b = buckets.get(source.address);
      if (!b) {
        if (buckets.size > 10_000) buckets.delete(buckets.keys().next().value);
        b = { tokens: 1e7, at: now };
        buckets.set(source.address, b);
      }
      b.tokens = Math.min(1e7, b.tokens + (now - b.at) * 1e4);
      b.at = now;
      if (b.tokens < 1) return { reason: 'rate-datagrams' };
      b.tokens--;
      return undefined;
    },
  };
}

process.on('message', async (m) => {
  if (m === 'start') {
    count = 0;
    windowStart = performance.now();
    cpuStart = process.cpuUsage();
  } else if (m === 'report') {
    const cpu = process.cpuUsage(cpuStart);
    process.send({
      count,
      ms: performance.now() - windowStart,
      cpuMs: (cpu.user + cpu.system) / 1000,
      ...(typeof details === 'function' ? details() : {}),
    });
  } else if (m === 'stop') {
    await close();
    process.exit(0);
  }
});
