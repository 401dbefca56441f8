// pnpm bench (core): raw node:net vs @sock/core, same u32 length-prefixed echo, 64 connections, 1 KiB.
// Usage: node bench/run.mjs [--json] [--seconds N] [--rounds N]
import { fileURLToPath } from 'node:url';
import { compare, printTable } from './harness.mjs';

const args = process.argv.slice(2);
const json = args.includes('--json');
const num = (flag, d) => (args.includes(flag) ? Number(args[args.indexOf(flag) + 1]) : d);
const seconds = num('--seconds', 3);
const rounds = num('--rounds', 3);
const here = (f) => fileURLToPath(new URL(f, import.meta.url));

const rows = await compare({
  baseline: here('./raw-server.mjs'),
  candidate: here('./core-server.mjs'),
  modes: ['echo', 'accept'],
  rounds,
  options: { echo: { conns: 64, seconds, size: 1024 }, accept: { conns: 16, seconds, size: 64 } },
  log: json ? () => {} : (l) => console.error(l),
});
// The same echo with callback delivery (`onMessage`): no promise per message.
const [callback] = await compare({
  baseline: here('./raw-server.mjs'),
  candidate: here('./core-callback-server.mjs'),
  modes: ['echo'],
  rounds,
  options: { echo: { conns: 64, seconds, size: 1024 } },
  log: json ? () => {} : (l) => console.error(l),
});
rows.push({ ...callback, mode: 'echo-onMessage' });
const targets = { echo: 0.95, 'echo-onMessage': 0.95, accept: 0.9 };
const names = {
  echo: 'echo throughput, 64 conns, 1 KiB, for-await handler (core / raw node:net)',
  'echo-onMessage': 'echo throughput, 64 conns, 1 KiB, onMessage callback (core / raw node:net)',
  accept: 'new connections/s (core / raw node:net)',
};
if (json) {
  // The shape every package's benchmark prints with --json; bench/report.mjs at the root collects them.
  const results = rows.flatMap((r) => [
    {
      name: names[r.mode],
      unit: r.mode === 'accept' ? 'conn/s' : 'msg/s',
      baseline: r.baselinePerSecond,
      value: r.candidatePerSecond,
      ratio: r.ratio,
      target: targets[r.mode],
      targetKind: 'min',
      met: r.ratio >= targets[r.mode],
    },
    {
      name: `${r.mode} p99 latency ms (core / raw)`,
      unit: 'ms',
      baseline: r.baselineP99,
      value: r.candidateP99,
      ratio: r.candidateP99 / r.baselineP99,
    },
  ]);
  console.log(JSON.stringify({ package: '@sock/core', node: process.version, results }));
} else {
  console.log(printTable('@sock/core vs raw node:net (median of alternating runs)', rows, targets));
}
