// Load generator (child process): blasts datagrams at 127.0.0.1:<port> from <sources> connected sockets
// bound to 127.0.0.1, 127.0.0.2, …, in batches, yielding to the event loop between batches so that the
// parent's 'stop' and the deadline are heard. With <rate> (datagrams/s in all, 0 = as fast as it can) the
// batches are paced to that rate, so receivers of different speeds can be compared at the same load.
// Usage: node loadgen.mjs <port> <sources> <size> <maxSeconds> [rate]
import { createSocket } from 'node:dgram';
import { once } from 'node:events';

const [port, sources, size, maxSeconds, rate = 0] = process.argv.slice(2).map(Number);
const BATCH = 64;
const payload = Buffer.alloc(size, 0x61);
let running = true;
let sent = 0;

const sockets = [];
for (let i = 0; i < sources; i++) {
  const socket = createSocket('udp4');
  socket.on('error', () => {}); // ENOBUFS / ECONNREFUSED under load: that datagram is lost, keep going
  socket.bind(0, `127.0.0.${i + 1}`);
  await once(socket, 'listening');
  socket.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  sockets.push(socket);
}

const started = performance.now();

function turn() {
  if (!running) return;
  // Paced: only the batches due by now (time since the start × rate); none due, just yield.
  const due = rate > 0 ? ((performance.now() - started) / 1000) * rate - sent : Number.POSITIVE_INFINITY;
  if (due >= BATCH * sockets.length) {
    for (const socket of sockets) {
      for (let i = 0; i < BATCH; i++) socket.send(payload);
    }
    sent += BATCH * sockets.length;
  }
  setImmediate(turn);
}

const stop = () => {
  if (!running) return;
  running = false;
  for (const s of sockets) s.close();
  process.send?.({ sent });
  setTimeout(() => process.exit(0), 50);
};
process.on('message', (m) => m === 'stop' && stop());
setTimeout(stop, maxSeconds * 1000).unref();
turn();
process.send?.({ ready: true });
