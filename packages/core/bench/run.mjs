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
const targets = { echo: 0.95, accept: 0.9 };
if (json) {
  console.log(JSON.stringify({ package: '@sock/core', node: process.version, targets, rows }));
} else {
  console.log(printTable('@sock/core vs raw node:net (median of alternating runs)', rows, targets));
}
