// The `sock listen` benchmark (issue 17): the guarded CLI as a user runs it, against a careful raw
// node:net server, HAProxy in front of that server, and node:cluster, on loopback. Every figure is a
// ratio to a baseline measured in the same run (alternating rounds, median), with server CPU per
// operation beside throughput. Load generators run in their own processes.
// Usage: node bench/run.mjs [--json] [--only echo,accept,memory,workers] [--seconds N] [--rounds N]
//        [--idle N] [--warmup SECONDS]
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { NOFILE, spawnLimited, startHaproxy, startRaw, startRawCluster, startSock } from './servers.mjs';

const args = process.argv.slice(2);
const json = args.includes('--json');
const num = (flag, d) => (args.includes(flag) ? Number(args[args.indexOf(flag) + 1]) : d);
const only = args.includes('--only')
  ? args[args.indexOf('--only') + 1].split(',')
  : ['echo', 'accept', 'memory', 'workers'];
const seconds = num('--seconds', 2);
const rounds = Math.max(1, num('--rounds', 5));
const idle = num('--idle', 10_000);
const here = (f) => fileURLToPath(new URL(f, import.meta.url));
const LOADGEN = here('./loadgen.mjs');
const ACCEPT_LOADGEN = here('../../../packages/core/bench/loadgen.mjs');
const log = json ? () => {} : (l) => console.error(l);
const SIZE = 1024;
const DEPTH = 8;
const CONNS = 64;

async function jsonLine(child) {
  const rl = createInterface({ input: child.stdout });
  for await (const line of rl) return JSON.parse(line);
  throw new Error('load generator printed nothing');
}

/** Run one load generator process against `port` and charge the server's CPU over exactly that run. */
async function drive(server, argv) {
  const before = server.cpuMs();
  const gen = spawnLimited([process.execPath, ...argv], { stdio: ['ignore', 'pipe', 'inherit'] });
  const result = await jsonLine(gen);
  await once(gen, 'exit');
  return { ...result, serverCpuMs: server.cpuMs() - before };
}

/**
 * Each fresh server is first driven, unmeasured, by the same load for this long, so every variant is
 * measured in steady state: a cold run charges sock for the JIT compiling its code, which a long-running
 * server pays once (the raw server has 30 lines to compile).
 */
const WARMUP_SECONDS = num('--warmup', 3);

const loads = {
  /** 64 connections, each pipelining 8 × 1 KiB frames; per op = per echoed KiB. */
  echo: async (server, secs = seconds) => {
    const r = await drive(server, [
      LOADGEN,
      'pipeline',
      String(server.port),
      String(CONNS),
      String(secs),
      String(SIZE),
      String(DEPTH),
    ]);
    const ops = r.perSecond * r.elapsed;
    return { perSecond: r.perSecond, cpuUsPerOp: (r.serverCpuMs * 1000) / ops, errors: r.errors };
  },
  /** New connections (16 in parallel), each one 64-byte frame echoed, then closed. */
  accept: async (server, secs = seconds) => {
    const r = await drive(server, [ACCEPT_LOADGEN, 'accept', String(server.port), '16', String(secs), '64']);
    const ops = r.perSecond * secs;
    return { perSecond: r.perSecond, cpuUsPerOp: (r.serverCpuMs * 1000) / ops, errors: r.errors };
  },
};

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * Alternate the variants' order every round (a fresh server each time, warmed up first unless told
 * not to), measure `load`, and return the medians per variant.
 */
async function alternate(label, variants, load, { warmUp = true } = {}) {
  const runs = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
  const names = Object.keys(variants);
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? names : [...names].reverse();
    for (const name of order) {
      const server = await variants[name]();
      try {
        if (warmUp && WARMUP_SECONDS > 0) await load(server, WARMUP_SECONDS);
        const m = await load(server);
        runs[name].push(m);
        log(
          `  ${label} ${name} round ${r + 1}: ${m.perSecond.toFixed(0)}/s, ${m.cpuUsPerOp.toFixed(2)} µs CPU/op`,
        );
      } finally {
        await server.stop();
      }
    }
  }
  return Object.fromEntries(
    names.map((n) => [
      n,
      {
        perSecond: median(runs[n].map((x) => x.perSecond)),
        cpuUsPerOp: median(runs[n].map((x) => x.cpuUsPerOp)),
        errors: runs[n].reduce((s, x) => s + (x.errors ?? 0), 0),
      },
    ]),
  );
}

const results = [];
/** Two rows per comparison: throughput (candidate / baseline) and CPU efficiency (baseline CPU / candidate CPU). */
function pair(name, unit, base, cand, target) {
  const ratio = cand.perSecond / base.perSecond;
  const cpuRatio = base.cpuUsPerOp / cand.cpuUsPerOp;
  results.push({
    name: `${name}: throughput`,
    unit,
    baseline: base.perSecond,
    value: cand.perSecond,
    ratio,
    ...(target ? { target, targetKind: 'min', met: ratio >= target } : {}),
  });
  results.push({
    name: `${name}: server CPU µs per op (ratio = baseline / this)`,
    unit: 'µs',
    baseline: base.cpuUsPerOp,
    value: cand.cpuUsPerOp,
    ratio: cpuRatio,
    ...(target ? { target, targetKind: 'min', met: cpuRatio >= target } : {}),
  });
}

const guarded = () => startSock();
const haproxy = () => startHaproxy();

if (only.includes('echo')) {
  const m = await alternate('echo', { raw: startRaw, guarded, haproxy }, loads.echo);
  pair(
    'sock listen, every guard / raw node:net: echo 64 conns × 8 × 1 KiB pipelined (op = 1 KiB)',
    'KiB/s',
    m.raw,
    m.guarded,
    1.0,
  );
  pair(
    'HAProxy (stick-table guards) + raw / raw node:net: same echo (CPU = HAProxy + raw)',
    'KiB/s',
    m.raw,
    m.haproxy,
  );
}
if (only.includes('accept')) {
  const m = await alternate('accept', { raw: startRaw, guarded, haproxy }, loads.accept);
  pair(
    'sock listen, every guard / raw node:net: new connections/s (op = accept + 64 B echo + close)',
    'conn/s',
    m.raw,
    m.guarded,
    0.95,
  );
  pair('HAProxy (stick-table guards) + raw / raw node:net: new connections/s', 'conn/s', m.raw, m.haproxy);
}
if (only.includes('memory')) {
  if (NOFILE < idle + 1000)
    throw new Error(
      `--idle ${idle} needs a descriptor limit above ${idle + 1000}; the hard limit here is ${NOFILE}`,
    );
  // Idle connections held by a load generator: server RSS growth per connection, after one echoed frame
  // (so the first-frame deadline is met). Both children run with `prlimit --nofile=NOFILE`.
  const idleLoad = async (server) => {
    const before = server.rssBytes();
    const gen = spawnLimited([process.execPath, LOADGEN, 'hold', String(server.port), String(idle), '64'], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const { held, errors } = await jsonLine(gen);
    await new Promise((r) => setTimeout(r, 1000));
    const after = server.rssBytes();
    gen.stdin.end();
    await once(gen, 'exit');
    if (held !== idle) throw new Error(`held ${held} of ${idle} connections (${errors} errors)`);
    // Reported through the same medians: "perSecond" is bytes per connection here (lower is better).
    return { perSecond: (after - before) / held, cpuUsPerOp: 1, errors };
  };
  // No warm-up: the figure is the memory a fresh server holds per connection.
  const m = await alternate('idle', { raw: startRaw, guarded }, idleLoad, { warmUp: false });
  const ratio = m.guarded.perSecond / m.raw.perSecond;
  results.push({
    name: `RSS per idle connection, ${idle.toLocaleString('en-US')} connections: sock listen every guard / raw net.Socket (bytes; nofile ${NOFILE} via prlimit)`,
    unit: 'B',
    baseline: m.raw.perSecond,
    value: m.guarded.perSecond,
    ratio,
    target: 1.5,
    targetKind: 'max',
    met: ratio <= 1.5,
  });
}
if (only.includes('workers')) {
  const m = await alternate(
    'workers',
    {
      sock1: () => startSock({ workers: 1 }),
      sock2: () => startSock({ workers: 2 }),
      raw1: () => startRawCluster({ workers: 1 }),
      raw2: () => startRawCluster({ workers: 2 }),
    },
    loads.echo,
  );
  pair(
    'sock listen --workers 2 / --workers 1 (every guard, cluster store): echo scaling',
    'KiB/s',
    m.sock1,
    m.sock2,
  );
  pair('raw node:net cluster, 2 workers / 1 worker: echo scaling', 'KiB/s', m.raw1, m.raw2);
  pair('sock listen --workers 2 / raw node:net cluster of 2: echo', 'KiB/s', m.raw2, m.sock2);
}

if (json) console.log(JSON.stringify({ package: 'sock listen (apps/cli)', node: process.version, results }));
else {
  const fmt = (n) =>
    Math.abs(n) >= 100 ? Math.round(n).toLocaleString('en-US') : Number(n.toPrecision(3)).toString();
  console.log('| measure | baseline | candidate | ratio | target |\n|---|---:|---:|---:|---|');
  for (const r of results)
    console.log(
      `| ${r.name} | ${fmt(r.baseline)} | ${fmt(r.value)} ${r.unit} | ${fmt(r.ratio)} | ${r.target === undefined ? '' : `${r.targetKind === 'max' ? '≤' : '≥'} ${r.target}${r.met ? ' met' : ' MISSED'}`} |`,
    );
}
