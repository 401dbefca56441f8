// Redis store benchmark (loopback only; needs redis-server): accept decisions/s and added latency per
// accept with the Redis store vs the memory store, and the accuracy of one shared connection-rate limit
// enforced by 4 processes. Usage: node bench/redis.mjs [--json] [--seconds N]
import { execFileSync, fork, spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect, createServer as netServer } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createServer } from '@sock/core';
import { createGuards, createMemoryStore, createRedisStore } from '@sock/guards';

const args = process.argv.slice(2);
const json = args.includes('--json');
const seconds = args.includes('--seconds') ? Number(args[args.indexOf('--seconds') + 1]) : 2;
const log = json ? () => {} : (l) => console.error(l);
const results = [];

function redisServerPath() {
  for (const p of ['/usr/bin/redis-server', '/usr/local/bin/redis-server']) {
    try {
      execFileSync(p, ['--version'], { stdio: 'ignore' });
      return p;
    } catch {}
  }
  return undefined;
}

async function freePort() {
  const s = netServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address();
  s.close();
  await once(s, 'close');
  return port;
}

async function startRedis() {
  const bin = redisServerPath();
  if (!bin) throw new Error('redis-server is not installed');
  const port = await freePort();
  const child = spawn(
    bin,
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    {
      stdio: 'ignore',
    },
  );
  for (let i = 0; i < 250; i++) {
    const ok = await new Promise((resolve) => {
      const s = connect({ port, host: '127.0.0.1' }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return { port, child };
    await new Promise((r) => setTimeout(r, 20));
  }
  child.kill('SIGKILL');
  throw new Error('redis-server did not start');
}

/** One connection: connect, wait for the greeting (admitted) or the close (rejected). */
function attempt(port, localAddress) {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1', localAddress });
    let admitted = false;
    s.on('data', () => {
      admitted = true;
      s.destroy();
    });
    s.on('error', () => {});
    s.on('close', () => resolve(admitted));
  });
}

async function guardedServer(store) {
  const guards = createGuards(
    { connections: { perKey: 1_000_000 }, rates: { connections: { rate: 1e9, burst: 1e9 } } },
    { store },
  );
  const server = createServer({
    plugins: [guards.plugin],
    async handler(conn) {
      await conn.send(Buffer.from('hi'));
      conn.close();
    },
  });
  const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
  return { port, close: () => server.close({ drainMs: 50 }) };
}

/** Median accept latency (connect → greeting) over sequential connections, in µs. */
async function acceptLatency(port, n) {
  const times = [];
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    await attempt(port, `127.0.1.${(i % 250) + 1}`);
    times.push(Number(process.hrtime.bigint() - t) / 1000);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

/** Accept decisions (connection rate + per-key count, then the release) per second, `inflight` at a time. */
async function decisionsPerSecond(store, inflight) {
  const end = Date.now() + seconds * 1000;
  let n = 0;
  const rate = { emissionMs: 1e-6, burst: 1e9 };
  const one = async (w) => {
    while (Date.now() < end) {
      const key = `10.${w}.${(n >> 8) & 255}.${n & 255}`;
      if (store.admit) await store.admit(key, rate, 1000, Date.now());
      else {
        store.take('connections', key, 1, rate.emissionMs, rate.burst, Date.now());
        store.acquire(key, 1000);
      }
      store.release(key);
      n++;
      if (!store.admit && n % 1000 === 0) await new Promise((r) => setImmediate(r));
    }
  };
  await Promise.all(Array.from({ length: inflight }, (_, w) => one(w)));
  return n / seconds;
}

const redis = await startRedis();
try {
  // 1. Decisions per second.
  const memory = createMemoryStore();
  const redisStore = await createRedisStore({
    redis: { host: '127.0.0.1', port: redis.port },
    timeout: 1000,
  });
  const memRate = await decisionsPerSecond(memory, 1);
  const redisRate = await decisionsPerSecond(redisStore, 64);
  log(`  decisions/s: memory ${Math.round(memRate)}, redis ${Math.round(redisRate)}`);
  results.push({
    name: 'accept decisions/s, Redis store (64 in flight) vs memory store',
    unit: 'decisions/s',
    baseline: memRate,
    value: redisRate,
    ratio: redisRate / memRate,
  });

  // 2. Added latency per accept on a real server.
  const memServer = await guardedServer(createMemoryStore());
  const redisServer = await guardedServer(redisStore);
  const n = Math.max(200, Math.round(300 * seconds));
  await acceptLatency(memServer.port, 50);
  await acceptLatency(redisServer.port, 50);
  const memLat = await acceptLatency(memServer.port, n);
  const redisLat = await acceptLatency(redisServer.port, n);
  log(`  accept latency p50: memory ${memLat.toFixed(0)} µs, redis ${redisLat.toFixed(0)} µs`);
  results.push({
    name: 'added latency per accept (p50), Redis store vs memory store',
    unit: 'µs',
    baseline: memLat,
    value: redisLat - memLat,
    ratio: redisLat / memLat,
    target: 1000,
    targetKind: 'max',
    met: redisLat - memLat <= 1000,
  });
  await memServer.close();
  await redisServer.close();
  await redisStore.close();

  // 3. One shared connection-rate limit (R/s, burst B) for one address, enforced by 4 processes.
  const R = 100;
  const B = 10;
  const T = Math.max(2, seconds * 1.5);
  const node = fileURLToPath(new URL('./redis-node.mjs', import.meta.url));
  const children = [];
  const ports = [];
  for (let i = 0; i < 4; i++) {
    const c = fork(node, [String(redis.port), String(R), String(B)], {
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    });
    children.push(c);
    const rl = createInterface({ input: c.stdout });
    for await (const line of rl) {
      ports.push(JSON.parse(line).port);
      rl.close();
      break;
    }
  }
  try {
    let admitted = 0;
    let attempts = 0;
    const times = [];
    const start = Date.now();
    const end = start + T * 1000;
    // About 6× the limit, spread over the 4 processes.
    const worker = async (w) => {
      for (let i = 0; Date.now() < end; i++) {
        const t = Date.now();
        attempts++;
        times.push(performance.now());
        if (await attempt(ports[(w + i) % 4], '127.0.0.50')) admitted++;
        const wait = 16 - (Date.now() - t);
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
    };
    await Promise.all(Array.from({ length: 10 }, (_, w) => worker(w)));
    const elapsed = (Date.now() - start) / 1000;
    // What one exact limiter would admit from this very stream of attempts (GCRA over their start times):
    // tokens do not pile up beyond the burst while the load generator stalls, in either case.
    times.sort((a, b) => a - b);
    let tat = 0;
    let expected = 0;
    const em = 1000 / R;
    for (const t of times) {
      const next = Math.max(tat, t) + em;
      if (next - t <= B * em) {
        tat = next;
        expected++;
      }
    }
    const error = (Math.abs(admitted - expected) / expected) * 100;
    log(
      `  shared rate: ${admitted} admitted of ${attempts} in ${elapsed.toFixed(2)} s; one exact limiter: ${expected}`,
    );
    results.push({
      name: `shared connection rate (${R}/s) across 4 processes: error vs one exact limiter on the same attempts (${admitted} admitted, ${expected} expected, ${attempts} attempts)`,
      unit: '%',
      baseline: expected,
      value: error,
      ratio: admitted / expected,
      target: 5,
      targetKind: 'max',
      met: error <= 5,
    });
  } finally {
    for (const c of children) c.kill(process.env.SOCK_BENCH_DEBUG ? 'SIGTERM' : 'SIGKILL');
    await new Promise((r) => setTimeout(r, 100));
  }
} finally {
  redis.child.kill('SIGKILL');
}

const report = { package: '@sock/guards', results };
if (json) console.log(JSON.stringify(report));
else {
  const fmt = (x) => (Math.abs(x) >= 100 ? Math.round(x).toLocaleString('en-US') : Number(x.toPrecision(3)));
  console.log('\nRedis store vs memory store, and a shared limit across 4 processes');
  console.log('| measure | unit | baseline | value | ratio | target | met |');
  console.log('|---|---|---:|---:|---:|---:|:-:|');
  for (const r of results)
    console.log(
      `| ${r.name} | ${r.unit} | ${fmt(r.baseline)} | ${fmt(r.value)} | ${r.ratio.toFixed(3)} | ${r.target === undefined ? '' : `${r.targetKind === 'min' ? '≥' : '≤'} ${fmt(r.target)}`} | ${r.target === undefined ? '' : r.met ? 'yes' : 'NO'} |`,
    );
}
process.exit(0);
