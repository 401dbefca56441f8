// The inbox bound, measured (issue 13): connections whose reader is stalled while their peers push the
// worst they can (error replies owed, async decodes pending, empty frames) and never read. The server runs
// alone in a child process with --expose-gc; its heap + Buffer memory per connection, above the same number
// of idle connections, is compared with the documented bound (README, "Memory bound"):
//   B = R + (F + h) + min(M × max(R, F), Q + F + M × R) + M × E
// Usage: node bench/inbox-bound.mjs [--conns N] [--cases a,b] [--json]
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const flag = (name, d) => (args.includes(name) ? args[args.indexOf(name) + 1] : d);
const conns = Number(flag('--conns', 200));
const json = args.includes('--json');
const server = fileURLToPath(new URL('./inbox-server.mjs', import.meta.url));

const KiB = 1024;
const limits = { maxQueuedMessages: 16, maxQueuedBytes: 1024 * KiB, maxFrameBytes: 64 * KiB };
/** One socket read (Node reads at most 64 KiB at a time), the u32 header, per-entry bookkeeping. */
const R = 64 * KiB;
const h = 4;
const E = 0.5 * KiB;
const { maxQueuedMessages: M, maxQueuedBytes: Q, maxFrameBytes: F } = limits;
const bound = R + (F + h) + Math.min(M * Math.max(R, F), Q + F + M * R) + M * E;

const u32 = (payload) => {
  const p = Buffer.from(payload);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(p.length);
  return Buffer.concat([head, p]);
};
const repeat = (frames, bytes) => {
  const one = Buffer.concat(frames);
  return Buffer.concat(Array.from({ length: Math.ceil(bytes / one.length) }, () => one));
};
const big = u32(JSON.stringify('x'.repeat(F - 2))); // the largest valid frame: a 64 KiB JSON string

// What each peer sends at once and never reads. One Buffer for all connections: the clients hold no copies.
const cases = {
  idle: { codec: 'json', burst: undefined },
  // Case 2: invalid frames under onInvalidMessage 'reply', the reader stalled: error replies owed.
  replies: { codec: 'json', burst: repeat([u32('{nope')], 160 * KiB) },
  // Case 3: valid frames whose async validation is still running.
  async: { codec: 'json', burst: repeat([u32('1')], 160 * KiB) },
  // Case 4: empty frames (4 bytes each on the wire) with bytes(): the most entries per byte read.
  empty: { codec: 'bytes', burst: Buffer.alloc(160 * KiB) },
  // Cases 2–4 at once, with the largest frames, so both limits (entries and bytes) are reached.
  worst: { codec: 'json', burst: repeat([big, u32(''), big, u32('{nope'), big, u32('2')], 768 * KiB) },
};
const selected = flag('--cases', Object.keys(cases).join(',')).split(',');

async function run(name) {
  const { codec, burst } = cases[name];
  const child = fork(server, [codec], {
    execArgv: ['--expose-gc'],
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    env: { ...process.env, INBOX_LIMITS: JSON.stringify(limits) },
  });
  const measure = async () => {
    child.send('measure');
    const [m] = await once(child, 'message');
    return m;
  };
  const sockets = [];
  try {
    const rl = createInterface({ input: child.stdout });
    const { port } = JSON.parse((await rl[Symbol.asyncIterator]().next()).value);
    rl.close();
    for (let i = 0; i < conns; i++) {
      const socket = connect({ port, host: '127.0.0.1' });
      socket.on('error', () => {});
      socket.pause(); // never reads
      sockets.push(socket);
      await once(socket, 'connect');
    }
    if (burst) for (const socket of sockets) socket.write(burst);
    // Steady state: the server has stopped taking bytes (every inbox is full, every socket paused).
    let last = -1;
    let m = await measure();
    for (let i = 0; i < 200 && (m.conns < conns || m.bytesIn !== last); i++) {
      last = m.bytesIn;
      await new Promise((r) => setTimeout(r, 150));
      m = await measure();
    }
    return m;
  } finally {
    for (const socket of sockets) socket.destroy();
    child.kill();
  }
}

const idle = await run('idle');
const base = idle.memory.heapUsed + idle.memory.arrayBuffers;
const rows = [];
for (const name of selected.filter((n) => n !== 'idle')) {
  const m = await run(name);
  const held = (m.memory.heapUsed + m.memory.arrayBuffers - base) / conns;
  rows.push({
    case: name,
    conns,
    perConnKiB: held / KiB,
    boundKiB: bound / KiB,
    rssMiB: m.memory.rss / (KiB * KiB),
    idleRssMiB: idle.memory.rss / (KiB * KiB),
    heapMiB: m.memory.heapUsed / (KiB * KiB),
    peakEntries: m.peakEntries,
    peakBytesKiB: m.peakBytes / KiB,
    framesIn: m.framesIn,
    bytesIn: m.bytesIn,
  });
}
if (json) {
  console.log(JSON.stringify({ conns, boundKiB: bound / KiB, limits, rows }));
} else {
  console.log(
    `inbox bound per connection (M=${M}, Q=${Q / KiB} KiB, F=${F / KiB} KiB): ${(bound / KiB).toFixed(0)} KiB`,
  );
  console.table(rows);
}
