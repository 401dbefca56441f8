// Load generator for `sock listen` benchmarks, run in its own process (u32 length-prefixed frames).
//   pipeline <port> <conns> <seconds> <size> <depth>: each connection writes `depth` frames in one write,
//     waits for all their echoes, repeats until `seconds` are up.
//   hold <port> <conns> <size>: opens `conns` connections (200 at a time), each sends one frame and waits
//     for its echo, then prints {"held"} and keeps them open until stdin closes (idle-memory measurement).
// Prints one JSON line. Bounded in time (pipeline) or by its parent (hold).
import { connect } from 'node:net';

const [mode, portArg, connsArg, ...rest] = process.argv.slice(2);
const port = Number(portArg);
const conns = Number(connsArg);
const host = '127.0.0.1';

function frames(size, depth) {
  const one = Buffer.alloc(4 + size, 0x61);
  one.writeUInt32BE(size, 0);
  return { one, batch: Buffer.concat(Array.from({ length: depth }, () => one)) };
}

function open() {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host, noDelay: true });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Calls `onEchoed` each time `expect` more bytes have come back. */
function counting(socket, expect, onEchoed) {
  let got = 0;
  socket.on('data', (chunk) => {
    got += chunk.length;
    while (got >= expect) {
      got -= expect;
      onEchoed();
    }
  });
}

if (mode === 'pipeline') {
  const [secondsArg, sizeArg, depthArg] = rest;
  const seconds = Number(secondsArg);
  const size = Number(sizeArg);
  const depth = Number(depthArg);
  const { batch } = frames(size, depth);
  const sockets = await Promise.all(Array.from({ length: conns }, open));
  let messages = 0;
  let errors = 0;
  const started = performance.now();
  const deadline = started + seconds * 1000;
  await Promise.all(
    sockets.map(
      (s) =>
        new Promise((resolve) => {
          s.on('error', () => {
            errors++;
            resolve();
          });
          counting(s, batch.length, () => {
            messages += depth;
            if (performance.now() >= deadline) {
              s.destroy();
              resolve();
            } else s.write(batch);
          });
          s.write(batch);
        }),
    ),
  );
  const elapsed = (performance.now() - started) / 1000;
  process.stdout.write(
    `${JSON.stringify({ perSecond: messages / elapsed, bytes: messages * size, elapsed, errors })}\n`,
  );
  process.exit(0);
} else if (mode === 'hold') {
  const size = Number(rest[0] ?? 64);
  const { one } = frames(size, 1);
  const held = [];
  let errors = 0;
  const holdOne = async () => {
    const s = await open();
    await new Promise((resolve, reject) => {
      counting(s, one.length, resolve);
      s.once('error', reject);
      s.write(one);
    });
    s.on('error', () => errors++);
    held.push(s);
  };
  for (let i = 0; i < conns; i += 200) {
    const n = Math.min(200, conns - i);
    const results = await Promise.allSettled(Array.from({ length: n }, holdOne));
    errors += results.filter((r) => r.status === 'rejected').length;
  }
  process.stdout.write(`${JSON.stringify({ held: held.length, errors })}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('close', () => process.exit(0));
} else {
  throw new Error(`unknown mode ${mode}`);
}
