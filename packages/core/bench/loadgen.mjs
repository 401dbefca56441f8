// Load generator, run in its own process. Modes:
//   echo: `conns` connections, each with one 1 KiB request in flight at a time, for `seconds`.
//   accept: new connections with `conns` in parallel, each sends one frame, waits for the echo, closes.
// Prints one JSON line of results. Bounded by `seconds`; stops by itself.
import { connect } from 'node:net';

const [mode, portArg, connsArg = '64', secondsArg = '3', sizeArg = '1024'] = process.argv.slice(2);
const port = Number(portArg);
const conns = Number(connsArg);
const seconds = Number(secondsArg);
const size = Number(sizeArg);
const frame = Buffer.alloc(4 + size, 0x61);
frame.writeUInt32BE(size, 0);
const host = process.env.SOCK_BENCH_HOST ?? '127.0.0.1';

const latencies = new Float64Array(5_000_000);
let samples = 0;
let messages = 0;
let errors = 0;
const deadline = performance.now() + seconds * 1000;

function openSocket() {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host, noDelay: true });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Resolves with each complete echoed frame. */
function reader(socket, onFrame) {
  let pending = 0;
  socket.on('data', (chunk) => {
    pending += chunk.length;
    while (pending >= frame.length) {
      pending -= frame.length;
      onFrame();
    }
  });
}

async function echoLoop(socket) {
  await new Promise((resolve) => {
    let sentAt = 0;
    const send = () => {
      if (performance.now() >= deadline) {
        socket.end();
        resolve();
        return;
      }
      sentAt = performance.now();
      socket.write(frame);
    };
    reader(socket, () => {
      const now = performance.now();
      if (samples < latencies.length) latencies[samples++] = now - sentAt;
      messages++;
      send();
    });
    socket.on('error', () => {
      errors++;
      resolve();
    });
    send();
  });
}

async function acceptLoop() {
  while (performance.now() < deadline) {
    const started = performance.now();
    try {
      const socket = await openSocket();
      await new Promise((resolve, reject) => {
        reader(socket, resolve);
        socket.once('error', reject);
        socket.write(frame);
      });
      socket.destroy();
      if (samples < latencies.length) latencies[samples++] = performance.now() - started;
      messages++;
    } catch {
      errors++;
    }
  }
}

function percentile(p) {
  const sorted = latencies.subarray(0, samples).sort();
  return sorted[Math.min(samples - 1, Math.floor((p / 100) * samples))] ?? 0;
}

const started = performance.now();
if (mode === 'echo') {
  const sockets = await Promise.all(Array.from({ length: conns }, openSocket));
  await Promise.all(sockets.map(echoLoop));
} else {
  await Promise.all(Array.from({ length: conns }, acceptLoop));
}
const elapsed = (performance.now() - started) / 1000;
process.stdout.write(
  `${JSON.stringify({
    mode,
    perSecond: messages / elapsed,
    mbPerSecond: mode === 'echo' ? (messages * size * 2) / elapsed / 1e6 : undefined,
    p50: percentile(50),
    p99: percentile(99),
    errors,
  })}\n`,
);
