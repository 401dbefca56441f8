// pnpm soak --duration 10m [--every 5s] [--phase 20s]
// Mixed legitimate and abusive load on loopback (attack sources 127.0.0.10-250) against a guarded echo
// server (lab/server.mjs) for the given duration. Samples the server's heap, RSS and open file descriptors
// (/proc/PID/fd) every few seconds, and after each phase (load stopped, full GC) the quiet points a least-squares line
// is fitted to for the growth per minute. Exits 1 on a leak trend, writes bench/results/soak.json.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDuration } from '../packages/core/dist/index.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const opt = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const durationMs = parseDuration(opt('--duration', '2m'), '--duration');
const everyMs = parseDuration(opt('--every', '5s'), '--every');
const phaseS = Math.round(parseDuration(opt('--phase', '20s'), '--phase') / 1000);
/** Growth per minute over the steady half that counts as a leak. */
const LIMITS = { heapMiB: 2, rssMiB: 8, fds: 10 };
const KINDS = ['slowloris', 'flood', 'oversize', 'slowread', 'mix'];
const SCALE = { slowloris: 0.2, flood: 0.2, oversize: 0.3, slowread: 0.3, mix: 0.2 };

const children = new Set();
function node(script, argv, onLine, flags = []) {
  const child = spawn(process.execPath, [...flags, join(root, 'lab', script), ...argv], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  children.add(child);
  let buf = '';
  child.stdout.on('data', (d) => {
    buf += d;
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line.startsWith('{')) onLine(JSON.parse(line));
    }
  });
  const exited = new Promise((r) => child.on('exit', r)).then(() => children.delete(child));
  return { child, exited };
}
const stopAll = () => {
  for (const c of children) c.kill('SIGKILL');
};
process.on('SIGINT', () => {
  stopAll();
  process.exit(130);
});
process.on('SIGTERM', () => {
  stopAll();
  process.exit(143);
});

let latest;
let ready;
const readyP = new Promise((r) => {
  ready = r;
});
let onQuiet;
const server = node(
  'server.mjs',
  ['guarded', '--host', '127.0.0.1', '--port', '0'],
  (o) => {
    if (o.ready) ready(o);
    if (o.stats) latest = o.stats;
    if (o.stats?.quiet) onQuiet?.(o.stats);
  },
  ['--expose-gc'],
);
const { port, pid } = await readyP;
const started = Date.now();
const samples = [];
const quiet = [];
/** Between phases: no load, connections closed, a full GC; the points the leak verdict is fitted to. */
async function quietSample() {
  await new Promise((r) => setTimeout(r, 2000));
  const stats = await new Promise((resolve) => {
    onQuiet = resolve;
    process.kill(pid, 'SIGUSR2');
    setTimeout(() => resolve(undefined), 3000);
  });
  sample();
  quiet.push({ ...samples.at(-1), heapMiB: (stats?.heapUsed ?? latest?.heapUsed ?? 0) / 2 ** 20 });
}
const sample = () => {
  let fds = 0;
  try {
    fds = readdirSync(`/proc/${pid}/fd`).length;
  } catch {}
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  samples.push({
    t: (Date.now() - started) / 60_000,
    heapMiB: (latest?.heapUsed ?? 0) / 2 ** 20,
    rssMiB: m ? Number(m[1]) / 1024 : 0,
    fds,
    open: latest?.open ?? latest?.connections,
  });
};
const sampler = setInterval(sample, everyMs);

let legitOk = 0;
let legitFail = 0;
let phase = 0;
while (Date.now() - started < durationMs) {
  const left = Math.ceil((durationMs - (Date.now() - started)) / 1000);
  const s = Math.max(3, Math.min(phaseS, left));
  const kind = KINDS[phase++ % KINDS.length];
  process.stderr.write(`soak: ${Math.round((Date.now() - started) / 1000)} s, ${kind} for ${s} s\n`);
  const common = ['--host', '127.0.0.1', '--port', String(port), '--seconds', String(s)];
  let legit;
  const a = node(
    'load.mjs',
    [
      'attack',
      ...common,
      '--kind',
      kind,
      '--scale',
      String(SCALE[kind]),
      '--sources',
      '127.0.0.10-127.0.0.250',
    ],
    () => {},
  );
  const l = node(
    'load.mjs',
    ['legit', ...common, '--lanes', '2', '--rate', '20', '--local', '127.0.0.1'],
    (o) => {
      legit = o;
    },
  );
  await Promise.all([a.exited, l.exited]);
  legitOk += legit?.ok ?? 0;
  legitFail += legit?.fail ?? 0;
  await quietSample();
}
// Let the last connections close, take a final sample.
await new Promise((r) => setTimeout(r, Math.min(5000, everyMs)));
sample();
clearInterval(sampler);
server.child.stdin.end();
server.child.kill('SIGTERM');
await server.exited;

/**
 * Least-squares slope (per minute) of `key` over the quiet points (after each phase, post-GC), the first
 * one (warm-up: JIT, pools, first allocations) left out.
 */
function slope(key, from = 1) {
  const pts = quiet.slice(from);
  const n = pts.length;
  if (n < 3) return null;
  const mx = pts.reduce((a, p) => a + p.t, 0) / n;
  const my = pts.reduce((a, p) => a + p[key], 0) / n;
  const num = pts.reduce((a, p) => a + (p.t - mx) * (p[key] - my), 0);
  const den = pts.reduce((a, p) => a + (p.t - mx) ** 2, 0);
  return den === 0 ? 0 : num / den;
}
// RSS keeps what the allocator took at each phase's peak (freed memory is not returned at once): it is
// judged only after one full cycle of the phases, when every kind of load has set its plateau.
const growth = { heapMiB: slope('heapMiB'), rssMiB: slope('rssMiB', KINDS.length), fds: slope('fds') };
const leaks = Object.entries(LIMITS).filter(([k, limit]) => growth[k] !== null && growth[k] > limit);
const peak = (k) => Math.max(...samples.map((s) => s[k]));
const rows = [
  ['measure', 'first quiet', 'peak', 'last quiet', 'growth/min (quiet points)', 'limit/min'],
  ...Object.keys(LIMITS).map((k) => [k, quiet[0]?.[k], peak(k), quiet.at(-1)?.[k], growth[k], LIMITS[k]]),
];
console.log(
  rows
    .map((r) =>
      r
        .map((c) => (typeof c === 'number' ? c.toFixed(2) : c === null ? 'n/a (run longer)' : String(c)))
        .join('\t'),
    )
    .join('\n'),
);
const total = legitOk + legitFail;
console.log(
  `legitimate requests: ${legitOk}/${total} ok (${total ? ((100 * legitOk) / total).toFixed(3) : 0}%), ${samples.length} samples, ${quiet.length} quiet points over ${((Date.now() - started) / 60_000).toFixed(1)} min`,
);
writeFileSync(
  join(root, 'bench', 'results', 'soak.json'),
  `${JSON.stringify({ durationMs, everyMs, growthPerMinute: growth, limitsPerMinute: LIMITS, leaks: leaks.map(([k]) => k), legit: { ok: legitOk, fail: legitFail }, quiet, samples }, null, 2)}\n`,
);
if (leaks.length > 0) {
  console.log(
    `LEAK TREND: ${leaks.map(([k]) => `${k} +${growth[k].toFixed(2)}/min > ${LIMITS[k]}`).join(', ')}`,
  );
  process.exit(1);
}
console.log('no leak trend');
