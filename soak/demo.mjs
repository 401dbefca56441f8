// pnpm soak:demo [--duration 3m] [--every 2s] [--phase 20s] [--serve path/to/serve.js]
// `pnpm demo:serve` (apps/demo-server/dist/serve.js) under the lab's abusive traffic (lab/load.mjs attack:
// slowloris, flood, oversize, slowread, mix from 127.0.0.10-250, against the TLS listener and the PROXY
// edge listener) plus certified chat users (TLS with alice's certificate: hello, say, close) for a bounded
// time. Samples the service's RSS every few seconds and fits a least-squares line to the samples taken
// after the first full cycle of attack kinds: a service that keeps what it saw grows with the traffic.
// Loopback only. Writes bench/results/soak-demo.json; exits 1 on a growth trend over the limit.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { parseDuration } from '../packages/core/dist/index.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const opt = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const durationMs = Math.min(parseDuration(opt('--duration', '3m'), '--duration'), 30 * 60_000);
const everyMs = parseDuration(opt('--every', '2s'), '--every');
const phaseS = Math.round(parseDuration(opt('--phase', '20s'), '--phase') / 1000);
const serveJs = opt('--serve', join(root, 'apps/demo-server/dist/serve.js'));
/** RSS growth per minute, after the warm-up cycle, that counts as unbounded memory. */
const LIMIT_RSS_MIB_PER_MIN = 4;
const KINDS = ['slowloris', 'flood', 'oversize', 'slowread', 'mix'];
const SCALE = { slowloris: 0.2, flood: 0.3, oversize: 0.3, slowread: 0.3, mix: 0.3 };

const state = mkdtempSync(join(tmpdir(), 'sock-soak-demo-'));
const children = new Set();
const stopAll = () => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(state, { recursive: true, force: true });
};
process.on('SIGINT', () => {
  stopAll();
  process.exit(130);
});

const service = spawn(process.execPath, [serveJs], {
  env: {
    ...process.env,
    SOCK_DEMO_STATE: state,
    PORT: '0',
    EDGE_PORT: '0',
    UDP_PORT: '0',
    METRICS_PORT: '0',
    STATUS_PORT: '0',
    LOG_LEVEL: 'warn',
  },
  stdio: ['ignore', 'ignore', 'pipe'],
});
children.add(service);
let banner = '';
const ports = await new Promise((resolve, reject) => {
  const t = setTimeout(() => reject(new Error(`demo:serve did not start: ${banner}`)), 30_000);
  service.stderr.on('data', (d) => {
    banner += d;
    const direct = /listening on 127\.0\.0\.1:(\d+)/.exec(banner);
    const edge = /edge \(PROXY protocol from [^)]*\): 127\.0\.0\.1:(\d+)/.exec(banner);
    const metrics = /metrics: (http:\S+)/.exec(banner);
    const status = /live status page: (http:\S+)/.exec(banner);
    // The commit before @sock/observe has no status page: its banner ends with the `pnpm sock` lines.
    if (direct && edge && metrics && (status || banner.includes('without a certificate'))) {
      clearTimeout(t);
      resolve({ direct: Number(direct[1]), edge: Number(edge[1]), metrics: metrics[1], status: status?.[1] });
    }
  });
});
const pki = join(state, 'pki');
const tlsOptions = {
  ca: readFileSync(join(pki, 'ca.crt')),
  cert: readFileSync(join(pki, 'alice.crt')),
  key: readFileSync(join(pki, 'alice.key')),
  servername: 'localhost',
};

let legitOk = 0;
let legitFail = 0;
let client = 0;
/**
 * One certified user: hello, say, close. Through the edge listener, as the load balancer (127.0.0.1,
 * trusted) would pass it on: a PROXY header names a client among 198.51.100.0/24, then TLS.
 */
function chatOnce() {
  return new Promise((resolve) => {
    const tcp = tcpConnect({ host: '127.0.0.1', port: ports.edge });
    tcp.on('error', () => {});
    tcp.write(
      `PROXY TCP4 198.51.100.${client++ % 250} 127.0.0.1 ${40000 + (client % 20000)} ${ports.edge}\r\n`,
    );
    const s = connect({ ...tlsOptions, socket: tcp }, () =>
      s.write('{"type":"hello","name":"alice"}\n{"type":"say","text":"hi"}\n'),
    );
    let got = '';
    const t = setTimeout(() => s.destroy(), 3000);
    s.on('data', (d) => {
      got += d;
      if (got.includes('"welcome"')) s.end();
    });
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(t);
      tcp.destroy();
      if (got.includes('"welcome"')) legitOk++;
      else legitFail++;
      resolve();
    });
  });
}
async function legit(untilMs) {
  while (Date.now() < untilMs) {
    await Promise.all([chatOnce(), chatOnce()]);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function attack(port, kind, seconds) {
  const child = spawn(
    process.execPath,
    [
      join(root, 'lab/load.mjs'),
      'attack',
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--seconds',
      String(seconds),
      '--kind',
      kind,
      '--scale',
      String(SCALE[kind]),
      '--sources',
      '127.0.0.10-127.0.0.250',
    ],
    { stdio: ['ignore', 'ignore', 'ignore'] },
  );
  children.add(child);
  return new Promise((r) => child.on('exit', r)).then(() => children.delete(child));
}

const started = Date.now();
const samples = [];
const rss = () => {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${service.pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
};
const quiet = [];
const sampler = setInterval(
  () => samples.push({ t: (Date.now() - started) / 60_000, rssMiB: rss() }),
  everyMs,
);
let phase = 0;
while (Date.now() - started < durationMs) {
  const s = Math.max(3, Math.min(phaseS, Math.ceil((durationMs - (Date.now() - started)) / 1000)));
  const kind = KINDS[phase++ % KINDS.length];
  process.stderr.write(`soak:demo ${Math.round((Date.now() - started) / 1000)} s: ${kind} for ${s} s\n`);
  await Promise.all([
    attack(ports.direct, kind, s),
    attack(ports.edge, kind, s),
    legit(Date.now() + s * 1000),
  ]);
  // A quiet point: load stopped, connections closed (slowloris ones hit the 1.5 s deadline).
  await new Promise((r) => setTimeout(r, 3000));
  quiet.push({ t: (Date.now() - started) / 60_000, rssMiB: rss() });
}
let refusals = {};
let figures;
try {
  const body = await (await fetch(ports.metrics)).text();
  for (const m of body.matchAll(
    /^sock_rejections_total\{listener="(\w+)",reason="([\w-]+)"[^}]*closed="true"\} (\d+)$/gm,
  )) {
    refusals[`${m[1]} ${m[2]}`] = (refusals[`${m[1]} ${m[2]}`] ?? 0) + Number(m[3]);
  }
  if (ports.status) figures = await (await fetch(new URL('status.json', ports.status))).json();
} catch (err) {
  refusals = { error: String(err) };
}
clearInterval(sampler);
service.kill('SIGTERM');
await new Promise((r) => service.on('exit', r));
rmSync(state, { recursive: true, force: true });

function slope(points) {
  const n = points.length;
  if (n < 3) return null;
  const mx = points.reduce((a, p) => a + p.t, 0) / n;
  const my = points.reduce((a, p) => a + p.rssMiB, 0) / n;
  const num = points.reduce((a, p) => a + (p.t - mx) * (p.rssMiB - my), 0);
  const den = points.reduce((a, p) => a + (p.t - mx) ** 2, 0);
  return den === 0 ? 0 : num / den;
}
// The first cycle of attack kinds sets the allocator's plateau; growth is judged on the quiet points after it.
const steady = quiet.slice(KINDS.length);
const growth = slope(steady);
const at = (p) => (p ? p.rssMiB.toFixed(1) : 'n/a');
const result = {
  serve: serveJs,
  durationMs,
  first: samples[0]?.rssMiB,
  peak: Math.max(...samples.map((p) => p.rssMiB)),
  last: samples.at(-1)?.rssMiB,
  quiet,
  growthMiBPerMinute: growth,
  refusals,
  opened: figures?.totals,
  topKeys: figures?.topKeys?.slice(0, 5),
  limitMiBPerMinute: LIMIT_RSS_MIB_PER_MIN,
  legit: { ok: legitOk, fail: legitFail },
  samples,
};
console.log(
  `RSS MiB: first ${at(samples[0])}, quiet points ${quiet.map((q) => q.rssMiB.toFixed(1)).join(' ')}, peak ${result.peak.toFixed(1)}; growth over the quiet points after the first cycle ${growth === null ? 'n/a (run longer)' : `${growth.toFixed(2)} MiB/min`} (limit ${LIMIT_RSS_MIB_PER_MIN}); certified chats ${legitOk} ok, ${legitFail} failed; ${samples.length} samples over ${((Date.now() - started) / 60_000).toFixed(1)} min`,
);
writeFileSync(join(root, 'bench', 'results', 'soak-demo.json'), `${JSON.stringify(result, null, 2)}\n`);
if (growth !== null && growth > LIMIT_RSS_MIB_PER_MIN) {
  console.log(`refusals: ${JSON.stringify(refusals)}`);
  console.log(`GROWTH TREND: RSS +${growth.toFixed(2)} MiB/min > ${LIMIT_RSS_MIB_PER_MIN}`);
  process.exit(1);
}
console.log(`refusals: ${JSON.stringify(refusals)}\nconnections: ${JSON.stringify(figures?.totals)}`);
console.log('RSS flat');
