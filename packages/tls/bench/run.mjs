// @sock/tls benchmark: full and resumed TLS handshakes per second and TLS echo throughput, each as a ratio
// against raw node:tls with the same P-256 certificate, measured in the same run, rounds interleaved.
// Usage: node bench/run.mjs [--json] [--seconds 0.4] [--rounds 16] [--no-control]  (about a minute by default)
// The A/A control row measures a second node:tls server against the first: its distance from 1.000 is the
// noise of this run.
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { connect as netConnect } from 'node:net';
import { connect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { createCA, issueServerCert } from '../dist/pki.js';

const args = process.argv.slice(2);
const json = args.includes('--json');
const control = !args.includes('--no-control');
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  return i === -1 ? fallback : Number(args[i + 1]);
};
const seconds = Math.min(opt('--seconds', 0.4), 5);
const rounds = Math.min(opt('--rounds', 16), 50);
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
  const cpu = async () => {
    child.send('cpu');
    const [m] = await once(child, 'message');
    return m.cpu;
  };
  return { port, cpu, stop: () => child.disconnect() };
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
  return { rate: count / elapsed, ops: count, reused: reusedCount / count };
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
  return { rate: echoBytes / 1e6 / elapsed, ops: echoBytes / 1e6 };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const servers = { raw: await startServer('raw'), sock: await startServer('sock') };
// A second node:tls server: pairing it against the first shows how much noise this machine adds.
if (control) servers.control = await startServer('raw');
const metrics = {
  full: {
    label: 'full handshakes/s',
    unit: 'handshake',
    target: 0.95,
    run: (port) => handshakes(port, false),
  },
  resumed: {
    label: 'resumed handshakes/s',
    unit: 'handshake',
    target: 0.95,
    run: async (port) => {
      const r = await handshakes(port, true);
      if (r.reused < 0.99) throw new Error(`only ${(r.reused * 100).toFixed(0)}% of sessions resumed`);
      return r;
    },
  },
  echo: { label: 'TLS echo MB/s', unit: 'MB', target: undefined, run: (port) => echo(port) },
};
const rows = [];
const round = (x) => Math.round(x * 10) / 10;
const ratio = (x) => Math.round(x * 1000) / 1000;
try {
  // Warm-up: every server runs every workload first, so no side is measured while its JIT is still cold.
  for (const s of Object.values(servers)) {
    await handshakes(s.port, false);
    await handshakes(s.port, true);
    await echo(s.port);
  }
  for (const [key, m] of Object.entries(metrics)) {
    // Short slices, servers in rotating order: drift on a shared machine hits every side alike, and no
    // server sits idle long enough for V8 to shrink its heap (an idle server then pays to regrow it).
    const sides = key === 'full' && control ? ['raw', 'sock', 'control'] : ['raw', 'sock'];
    const rates = Object.fromEntries(sides.map((n) => [n, []]));
    const totals = Object.fromEntries(sides.map((n) => [n, { cpu: 0, ops: 0 }]));
    for (let i = 0; i < rounds; i++) {
      const order = sides.map((_, j) => sides[(i + j) % sides.length]);
      for (const name of order) {
        const server = servers[name];
        const before = await server.cpu();
        const r = await m.run(server.port);
        totals[name].cpu += (await server.cpu()) - before;
        totals[name].ops += r.ops;
        rates[name].push(r.rate);
      }
    }
    const row = (label, other, target) => {
      const pairRatios = rates.raw.map((x, i) => rates[other][i] / x);
      const rawCpu = totals.raw.cpu / totals.raw.ops;
      const otherCpu = totals[other].cpu / totals[other].ops;
      return {
        metric: label,
        raw: round(median(rates.raw)),
        sock: round(median(rates[other])),
        ratio: ratio(median(pairRatios)),
        unit: m.unit,
        // Summed over all slices: what one core can sustain, whatever the neighbours are doing.
        rawCpuUs: round(rawCpu),
        sockCpuUs: round(otherCpu),
        cpuRatio: ratio(rawCpu / otherCpu),
        target,
      };
    };
    rows.push(row(m.label, 'sock', m.target));
    if (sides.includes('control')) rows.push(row('A/A control (full)', 'control', undefined));
  }
} finally {
  for (const s of Object.values(servers)) s.stop();
}

const result = { rounds, secondsPerSlice: seconds, concurrency, echoBytes, rows };
if (json) {
  console.log(JSON.stringify(result, null, 2));
} else {
  console.log(
    `@sock/tls vs node:tls (P-256 certificate, TLS 1.3, ${rounds} rounds of slices of ${seconds}s, ${concurrency} in flight; medians)`,
  );
  console.log(
    'metric                    node:tls   @sock/tls  ratio | server CPU µs/op: node:tls  @sock/tls  ratio | target (CPU ratio)',
  );
  for (const r of rows) {
    const mark =
      r.target === undefined ? '' : r.cpuRatio >= r.target ? `>= ${r.target} ok` : `>= ${r.target} MISSED`;
    console.log(
      `${r.metric.padEnd(24)} ${String(r.raw).padStart(9)} ${String(r.sock).padStart(11)}  ${r.ratio.toFixed(3)} | ${`per ${r.unit}`.padEnd(14)} ${String(r.rawCpuUs).padStart(8)} ${String(r.sockCpuUs).padStart(10)}  ${r.cpuRatio.toFixed(3)} | ${mark}`,
    );
  }
}
