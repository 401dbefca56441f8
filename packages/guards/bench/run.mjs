// pnpm bench (guards): the CIDR matcher vs net.BlockList; echo throughput and accept rate with every guard
// on vs raw node:net and vs core alone (core's load generator, child processes, loopback only; throughput
// and server CPU per operation); memory at 1M keys.
// Usage: node bench/run.mjs [--json] [--only matcher,hooks,memory,load] [--seconds N] [--rounds N]
import { execFile } from 'node:child_process';
import { cpSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { compare as compareLoad } from '../../core/bench/harness.mjs';
import { loadTable } from './load.mjs';
import { runMatcher } from './matcher.mjs';

const { runHooks } = await import('./hooks.mjs');

const args = process.argv.slice(2);
const json = args.includes('--json');
const num = (flag, d) => (args.includes(flag) ? Number(args[args.indexOf(flag) + 1]) : d);
const only = args.includes('--only')
  ? args[args.indexOf('--only') + 1].split(',')
  : ['matcher', 'memory', 'load'];
const seconds = num('--seconds', 2);
const rounds = num('--rounds', 3);
const here = (f) => fileURLToPath(new URL(f, import.meta.url));

// Child processes load a snapshot of dist, taken now, inside the package (so '@sock/core' resolves) and
// under a `dist` folder (ignored by git and biome).
const snapshot = here(`./.snapshot-${process.pid}`);
cpSync(here('../dist'), `${snapshot}/dist`, { recursive: true });
process.env.SOCK_GUARDS_DIST = `${snapshot}/dist/index.js`;
process.on('exit', () => rmSync(snapshot, { recursive: true, force: true }));
const log = json ? () => {} : (l) => console.error(l);
const result = { package: '@sock/guards', node: process.version };
const out = [];

if (only.includes('matcher')) {
  const rows = runMatcher({ log });
  result.matcher = rows;
  const t = ['\nCIDR matcher vs net.BlockList (random /24 rules; ns per check)'];
  t.push(
    '| rules | ours ns | BlockList ns | BlockList checks | speedup | build ms (ours / BlockList) | agree |',
  );
  t.push('|---:|---:|---:|---:|---:|---:|:-:|');
  for (const r of rows) {
    t.push(
      `| ${r.rules} | ${r.oursNs.toFixed(0)} | ${r.blockListNs.toFixed(0)} | ${r.blockListChecks} | ${r.speedup.toFixed(0)}× | ${r.buildMs.toFixed(0)} / ${r.blockListBuildMs.toFixed(0)} | ${r.agree ? 'yes' : 'NO'} |`,
    );
  }
  const at100k = rows.find((r) => r.rules === 100_000);
  const at1m = rows.find((r) => r.rules === 1_000_000);
  if (at100k)
    t.push(
      `target ≥ 10,000× at 100k rules: ${at100k.speedup.toFixed(0)}× ${at100k.speedup >= 10_000 ? 'ok' : 'MISS'}`,
    );
  if (at1m)
    t.push(`target ≤ 300 ns at 1M rules: ${at1m.oursNs.toFixed(0)} ns ${at1m.oursNs <= 300 ? 'ok' : 'MISS'}`);
  out.push(t.join('\n'));
}

if (only.includes('hooks')) {
  const rows = runHooks({ log });
  result.hooks = rows;
  const t = ['\nGuards hooks alone (stand-in connection, CPU time)'];
  t.push('| policy | accept + close per connection | frame per 1 KiB message |', '|---|---:|---:|');
  for (const r of rows)
    t.push(`| ${r.policy} | ${r.acceptCloseNs.toFixed(0)} ns | ${r.frameNs.toFixed(0)} ns |`);
  out.push(t.join('\n'));
}

if (only.includes('memory')) {
  const run = promisify(execFile);
  const rows = [];
  for (const family of ['ipv4', 'ipv6']) {
    const { stdout } = await run(process.execPath, ['--expose-gc', here('./memory.mjs'), '1000000', family], {
      timeout: 120_000,
    });
    rows.push(JSON.parse(stdout));
    log(`  memory ${family}: ${(rows.at(-1).bytes / 2 ** 20).toFixed(1)} MiB`);
  }
  result.memory = rows;
  const t = ['\nPer-key state, 1M distinct keys (heap + array buffers after GC)'];
  t.push('| keys | MiB | bytes/key | ns per check | target |', '|---|---:|---:|---:|---|');
  for (const r of rows) {
    const mib = r.bytes / 2 ** 20;
    t.push(
      `| ${r.family} × ${r.keys} | ${mib.toFixed(1)} | ${r.perKey.toFixed(0)} | ${r.nsPerCheck.toFixed(0)} | ≤ 64 MB ${r.bytes <= 64e6 ? 'ok' : 'MISS'} |`,
    );
  }
  out.push(t.join('\n'));
}

if (only.includes('load')) {
  const options = { echo: { conns: 64, seconds, size: 1024 }, accept: { conns: 16, seconds, size: 64 } };
  const targets = { echo: 0.95, accept: 0.9 };
  const vsRaw = await compareLoad({
    baseline: here('../../core/bench/raw-server.mjs'),
    candidate: here('./guards-server.mjs'),
    modes: ['echo', 'accept'],
    rounds,
    options,
    log,
  });
  const vsCore = await compareLoad({
    baseline: here('../../core/bench/core-server.mjs'),
    candidate: here('./guards-server.mjs'),
    modes: ['echo', 'accept'],
    rounds,
    options,
    log,
  });
  result.load = { targets, vsRaw, vsCore };
  out.push(loadTable('core + every guard vs raw node:net (medians of alternating runs)', vsRaw, targets));
  out.push(
    loadTable('core + every guard vs core without guards (what the guards alone cost)', vsCore, targets),
  );
}

if (json) console.log(JSON.stringify(result));
else console.log(out.join('\n'));
