// @sock/tls benchmark: full and resumed TLS handshakes per second and TLS echo throughput, each as a ratio
// against raw node:tls with the same P-256 certificate, measured in the same run, rounds interleaved.
// Usage: node bench/run.mjs [--json] [--seconds 0.4] [--pairs 12]  (about 25 s with the defaults)
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { connect as netConnect } from 'node:net';
import { connect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { createCA, issueServerCert } from '../dist/index.js';

const args = process.argv.slice(2);
const json = args.includes('--json');
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  return i === -1 ? fallback : Number(args[i + 1]);
};
const seconds = Math.min(opt('--seconds', 0.4), 5);
const rounds = Math.min(opt('--pairs', 12), 50);
const concurrency = 8;
const echoBytes = 8 * 1024 * 1024;
const chunk = Buffer.alloc(64 * 1024, 7);
const serverScript = fileURLToPath(new URL('./server.mjs', import.meta.url));

const ca = await createCA();
const { cert, key } = await issueServerCert(ca, { names: ['localhost', '127.0.0.1'] });

async function startServer(mode) {
  const child = fork(serverScript, [mode], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  child.send({ cert, key });
  const [{ port }] = await once(child, 'message');
  return { port, stop: () => child.disconnect() };
}

function handshake(port, session, wantSession = false) {
  return new Promise((resolve, reject) => {
    const tcp = netConnect({ host: '127.0.0.1', port, noDelay: true });
    const socket = connect({ socket: tcp, ca: ca.cert, servername: 'localhost', session });
    let latest;
    socket.on('session', (s) => {
      latest = s;
    });
    socket.once('error', reject);
    socket.once('secureConnect', () => {
      const reused = socket.isSessionReused();
      // TLS 1.3 tickets arrive just after the handshake; wait for one when we need it.
      const done = () => {
        socket.destroy();
        resolve({ reused, session: latest });
      };
      if (latest || !wantSession) done();
      else socket.once('session', () => setImmediate(done));
    });
  });
}

async function handshakes(port, resumed) {
  let session = resumed ? (await handshake(port, undefined, true)).session : undefined;
  let count = 0;
  let reusedCount = 0;
  const until = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) {
        const r = await handshake(port, resumed ? session : undefined);
        count++;
        if (r.reused) reusedCount++;
        if (resumed && r.session) session = r.session;
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  return { perSecond: count / elapsed, reused: reusedCount / count };
}

async function echo(port) {
  const tcp = netConnect({ host: '127.0.0.1', port, noDelay: true });
  const socket = connect({ socket: tcp, ca: ca.cert, servername: 'localhost' });
  await once(socket, 'secureConnect');
  const started = performance.now();
  let received = 0;
  const done = new Promise((resolve) => {
    socket.on('data', (d) => {
      received += d.length;
      if (received >= echoBytes) resolve();
    });
  });
  for (let sent = 0; sent < echoBytes; sent += chunk.length) {
    if (!socket.write(chunk)) await once(socket, 'drain');
  }
  await done;
  const elapsed = (performance.now() - started) / 1000;
  socket.destroy();
  return { mbPerSecond: echoBytes / 1e6 / elapsed };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const servers = { raw: await startServer('raw'), sock: await startServer('sock') };
const metrics = {
  full: {
    label: 'full handshakes/s',
    target: 0.95,
    run: async (port) => (await handshakes(port, false)).perSecond,
  },
  resumed: {
    label: 'resumed handshakes/s',
    target: 0.95,
    run: async (port) => {
      const r = await handshakes(port, true);
      if (r.reused < 0.99) throw new Error(`only ${(r.reused * 100).toFixed(0)}% of sessions resumed`);
      return r.perSecond;
    },
  },
  echo: { label: 'TLS echo MB/s', target: undefined, run: async (port) => (await echo(port)).mbPerSecond },
};
const rows = [];
try {
  for (const s of Object.values(servers)) await handshake(s.port);
  for (const m of Object.values(metrics)) {
    // Short paired slices, order alternating: drift on a shared machine hits both sides of a pair alike,
    // and the median of the per-pair ratios ignores the slices a neighbour's burst spoiled.
    const raw = [];
    const sock = [];
    const ratios = [];
    for (let i = 0; i < rounds; i++) {
      const order = i % 2 === 0 ? ['raw', 'sock'] : ['sock', 'raw'];
      const got = {};
      for (const name of order) got[name] = await m.run(servers[name].port);
      raw.push(got.raw);
      sock.push(got.sock);
      ratios.push(got.sock / got.raw);
    }
    const round = (x) => Math.round(x * 10) / 10;
    rows.push({
      metric: m.label,
      raw: round(median(raw)),
      sock: round(median(sock)),
      ratio: Math.round(median(ratios) * 1000) / 1000,
      target: m.target,
    });
  }
} finally {
  for (const s of Object.values(servers)) s.stop();
}

const result = { pairs: rounds, secondsPerSlice: seconds, concurrency, echoBytes, rows };
if (json) {
  console.log(JSON.stringify(result, null, 2));
} else {
  console.log(
    `@sock/tls vs node:tls (P-256 certificate, TLS 1.3, ${rounds} paired slices of ${seconds}s, ${concurrency} in flight; medians)`,
  );
  console.log('metric                  node:tls      @sock/tls   ratio   target');
  for (const r of rows) {
    const mark =
      r.target === undefined ? '' : r.ratio >= r.target ? `>= ${r.target} ok` : `>= ${r.target} MISSED`;
    console.log(
      `${r.metric.padEnd(22)} ${String(r.raw).padStart(9)} ${String(r.sock).padStart(13)}   ${r.ratio.toFixed(3)}   ${mark}`,
    );
  }
}
