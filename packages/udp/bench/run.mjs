// pnpm bench (udp): datagrams/s received through createUdpSocket with per-datagram guards and
// anti-amplification accounting, against a raw node:dgram socket, in the same run. The load generator
// and each receiver run in child processes; variants alternate; medians are reported.
// Two figures per variant: datagrams/s delivered to the application, and datagrams per receiver
// CPU-second (the receiving capacity, which does not depend on whether the generator saturates it).
// On a shared machine the generator may not saturate the receivers, and a receiver that is not
// saturated spends more CPU per datagram (fewer datagrams per wake-up): `--rate N` paces the generator
// to N datagrams/s in all, below every variant's capacity, so all of them are compared at the same load.
// Usage: node bench/run.mjs [--json] [--seconds N] [--rounds N] [--sources N] [--size N] [--rate N]
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const json = args.includes('--json');
const num = (flag, d) => (args.includes(flag) ? Number(args[args.indexOf(flag) + 1]) : d);
const seconds = Math.min(num('--seconds', 2), 10);
const rounds = Math.min(num('--rounds', 3), 9);
const sources = Math.min(num('--sources', 8), 200);
const size = Math.min(num('--size', 100), 1232);
const rate = Math.max(0, num('--rate', 0));
const WARMUP_MS = 400;
const TARGET = 0.95; // issue 17: datagrams per CPU-second with guards >= 0.95x raw node:dgram
const here = (f) => fileURLToPath(new URL(f, import.meta.url));
const log = json ? () => {} : (l) => console.error(l);

async function firstLine(child) {
  const rl = createInterface({ input: child.stdout });
  for await (const line of rl) {
    rl.close();
    return JSON.parse(line);
  }
  throw new Error('receiver exited before printing its port');
}

function ask(child, message) {
  const reply = once(child, 'message');
  child.send(message);
  return reply.then(([m]) => m);
}

async function stopChild(child) {
  if (child.exitCode !== null) return;
  const exited = once(child, 'exit');
  try {
    child.send('stop');
  } catch {}
  const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(timer);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function measure(variant) {
  const receiver = fork(here('./receiver.mjs'), [variant], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  let gen;
  try {
    const { port } = await firstLine(receiver);
    gen = fork(here('./loadgen.mjs'), [port, sources, size, seconds + 5, rate].map(String), {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    await once(gen, 'message'); // ready
    await sleep(WARMUP_MS);
    receiver.send('start');
    await sleep(seconds * 1000);
    const report = await ask(receiver, 'report');
    return {
      rate: (report.count / report.ms) * 1000,
      perCpuSecond: report.cpuMs > 0 ? (report.count / report.cpuMs) * 1000 : 0,
      admission: report.admission,
      dropped: report.dropped,
    };
  } finally {
    if (gen) await stopChild(gen);
    await stopChild(receiver);
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
// `udp`: guards and amplification accounting, datagrams by callback (`onDatagram`, as raw's 'message');
// `udp-bare`: the same socket without guards or accounting; `udp-iter`: `udp` read with `for await`.
const runs = { raw: [], udp: [], 'udp-bare': [], 'udp-iter': [] };
let admission = '';
let dropped = {};
for (let r = 0; r < rounds; r++) {
  const order = ['raw', 'udp', 'udp-bare', 'udp-iter'];
  for (const variant of r % 2 === 0 ? order : [...order].reverse()) {
    const m = await measure(variant);
    runs[variant].push(m);
    if (variant === 'udp') {
      admission = m.admission;
      dropped = m.dropped;
    }
    log(
      `round ${r + 1} ${variant}: ${Math.round(m.rate)} datagrams/s, ${Math.round(m.perCpuSecond)} per CPU-s`,
    );
  }
}

const row = (name) => ({
  variant: name,
  datagramsPerSecond: Math.round(median(runs[name].map((m) => m.rate))),
  datagramsPerCpuSecond: Math.round(median(runs[name].map((m) => m.perCpuSecond))),
});
const raw = row('raw');
const udp = row('udp');
const bare = row('udp-bare');
const iter = row('udp-iter');
const result = {
  package: '@sock/udp',
  node: process.version,
  settings: { seconds, rounds, sources, size, rate },
  admission,
  target: TARGET,
  rows: [raw, udp, bare, iter],
  ratio: {
    datagramsPerSecond: udp.datagramsPerSecond / raw.datagramsPerSecond,
    datagramsPerCpuSecond: udp.datagramsPerCpuSecond / raw.datagramsPerCpuSecond,
  },
  droppedByUdp: dropped,
  bareRatio: {
    datagramsPerSecond: bare.datagramsPerSecond / raw.datagramsPerSecond,
    datagramsPerCpuSecond: bare.datagramsPerCpuSecond / raw.datagramsPerCpuSecond,
  },
  iterRatio: {
    datagramsPerSecond: iter.datagramsPerSecond / raw.datagramsPerSecond,
    datagramsPerCpuSecond: iter.datagramsPerCpuSecond / raw.datagramsPerCpuSecond,
  },
};

if (json) {
  console.log(JSON.stringify(result));
} else {
  const pad = (s, n) => String(s).padEnd(n);
  const vsRaw = (r) => (r.datagramsPerCpuSecond / raw.datagramsPerCpuSecond).toFixed(3);
  const lines = [
    `@sock/udp vs raw node:dgram: ${sources} sources, ${size}-byte datagrams, ${rate > 0 ? `paced to ${rate}/s, ` : ''}${rounds} alternating rounds of ${seconds}s (medians)`,
    `udp: admission by ${admission}, anti-amplification accounting on, onDatagram callback; udp-bare: neither; udp-iter: udp read with for await`,
    `${pad('variant', 10)}${pad('datagrams/s', 14)}${pad('per CPU-s', 12)}per CPU-s vs raw`,
    ...result.rows.map(
      (r) =>
        `${pad(r.variant, 10)}${pad(r.datagramsPerSecond, 14)}${pad(r.datagramsPerCpuSecond, 12)}${vsRaw(r)}`,
    ),
    `udp/raw: ${result.ratio.datagramsPerSecond.toFixed(3)} delivered datagrams/s, ` +
      `${result.ratio.datagramsPerCpuSecond.toFixed(3)} per CPU-second (target >= ${TARGET})`,
    `datagrams dropped by @sock/udp: ${JSON.stringify(dropped)}`,
  ];
  console.log(lines.join('\n'));
}
