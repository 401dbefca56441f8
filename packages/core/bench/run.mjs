// pnpm bench (core): raw node:net vs @sock/core, same u32 length-prefixed echo, 64 connections, 1 KiB.
// Usage: node bench/run.mjs [--json] [--seconds N] [--rounds N]
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
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
// The inbox bound (issue 13): heap per connection for each attack alone (200 connections), then the stress
// run: 1,000 connections each doing cases 2–4 at once. Server heap, Buffers and RSS against the bound.
const inbox = async (argv) => {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [here('./inbox-bound.mjs'), '--json', ...argv],
    {
      maxBuffer: 16 * 1024 * 1024,
      timeout: 10 * 60_000,
    },
  );
  return JSON.parse(stdout.trim().split('\n').pop());
};
if (!json) console.error('inbox bound: 200 connections per case, then 1,000 doing the worst at once ...');
const perCase = await inbox(['--conns', '200', '--cases', 'replies,async,empty,worst']);
const stress = await inbox(['--conns', '1000', '--cases', 'worst']);
const caseNames = {
  replies: 'error replies owed (case 2)',
  async: 'async decodes pending (case 3)',
  empty: 'empty frames (case 4)',
  worst: 'cases 2–4 at once, largest frames',
};
/** A KiB-per-connection row with the bound as its ceiling. */
const underBound = (name, kib, bound) => ({
  name: `${name} (KiB, bound ${bound.toFixed(0)})`,
  unit: 'KiB',
  value: kib,
  target: bound,
  targetKind: 'max',
  targetOn: 'value',
  met: kib <= bound,
});
const boundRows = [
  ...perCase.rows.map((r) =>
    underBound(
      `inbox bound: server heap+Buffers per connection, ${caseNames[r.case]}, 200 stalled conns`,
      r.perConnKiB,
      r.boundKiB,
    ),
  ),
  ...stress.rows.flatMap((r) => [
    underBound(
      'stress: 1,000 conns doing cases 2–4 at once: server heap+Buffers per connection',
      r.perConnKiB,
      r.boundKiB,
    ),
    underBound(
      'stress: 1,000 conns doing cases 2–4 at once: server RSS above 1,000 idle conns, per connection',
      ((r.rssMiB - r.idleRssMiB) * 1024) / r.conns,
      r.boundKiB,
    ),
    { name: 'stress: server heap used, 1,000 attacking conns (MiB)', unit: 'MiB', value: r.heapMiB },
    { name: 'stress: server RSS, 1,000 attacking conns (MiB)', unit: 'MiB', value: r.rssMiB },
  ]),
];

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
  results.push(...boundRows);
  console.log(JSON.stringify({ package: '@sock/core', node: process.version, results }));
} else {
  console.log(printTable('@sock/core vs raw node:net (median of alternating runs)', rows, targets));
  console.table(
    boundRows.map(({ name, value, target }) => ({ name, value: Number(value.toFixed(1)), target })),
  );
}
