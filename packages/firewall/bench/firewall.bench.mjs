// Benchmark of @sock/firewall inside a throwaway network namespace (needs root, nft, iptables, ipset).
// Run: pnpm --filter @sock/firewall bench [-- --json] [-- --count 100000]
// It builds on dist/ (the bench script builds first) and deletes its namespace even on failure.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { createFirewall } from '../dist/index.js';

const run = promisify(execFile);
const IP = '/usr/sbin/ip';
const args = process.argv.slice(2);
const json = args.includes('--json');
const countArg = args.indexOf('--count');
const COUNT = countArg >= 0 ? Number(args[countArg + 1]) : 100_000;
const BASELINE = 1000;
const SINGLE = 30;

if (process.getuid?.() !== 0) {
  console.error('bench: needs root (it creates a network namespace); skipped');
  process.exit(process.env.CI === 'true' ? 1 : 0);
}

/** 198.18.0.0/15 (RFC 2544 benchmarking) holds 131,072 addresses. */
function address(i) {
  const n = (198 << 24) + (18 << 16) + i + 1;
  return [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');
}

async function time(fn) {
  const t = performance.now();
  const result = await fn();
  return { ms: performance.now() - t, result };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const ns = `sfw-bench-${randomBytes(3).toString('hex')}`;
const dir = await mkdtemp(join(tmpdir(), 'sockfw-bench-'));
const rows = [];
const deadline = setTimeout(() => {
  console.error('bench: took longer than 5 minutes, giving up');
  void cleanup().then(() => process.exit(1));
}, 300_000);

async function cleanup() {
  clearTimeout(deadline);
  await run(IP, ['netns', 'del', ns]).catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
}

try {
  await run(IP, ['netns', 'add', ns]);
  const requests = Array.from({ length: COUNT }, (_, i) => ({
    target: address(i),
    ttl: '1h',
    reason: 'bench',
  }));
  const base = { netns: ns, env: {}, onInvalid: 'skip' };

  for (const backend of ['nftables', 'iptables']) {
    const bare = createFirewall({ ...base, backend });
    await bare.init();
    const plain = await time(() => bare.banMany(requests, { onInvalid: 'skip' }));
    const applied = COUNT - (plain.result.skipped?.length ?? 0);
    rows.push({ backend, case: `banMany ${applied} in one transaction`, ms: plain.ms });
    await bare.destroy();

    const stateFile = join(dir, `${backend}.json`);
    const fw = createFirewall({ ...base, backend, stateFile });
    await fw.init();
    const batch = await time(() => fw.banMany(requests, { onInvalid: 'skip' }));
    rows.push({ backend, case: `banMany ${applied} + atomic state file write`, ms: batch.ms });
    const listed = await time(() => fw.list());
    rows.push({ backend, case: `list() of ${listed.result.length}`, ms: listed.ms });

    // A fresh process after a reboot: our table is gone, the state file remains.
    await fw.destroy();
    const fresh = createFirewall({ ...base, backend, stateFile });
    const restored = await time(() => fresh.restore());
    rows.push({ backend, case: `restore() of ${applied} from the state file`, ms: restored.ms });

    const single = createFirewall({ ...base, backend });
    await single.init();
    const lat = [];
    for (let i = 0; i < SINGLE; i++) {
      const t = performance.now();
      await single.ban(`198.19.255.${i + 1}`, { ttl: '1h' });
      lat.push(performance.now() - t);
    }
    rows.push({
      backend,
      case: `single ban() latency, median of ${SINGLE} (set holds ${applied})`,
      ms: median(lat),
    });
    await single.destroy();
  }

  // Baseline: one iptables process and one linear rule per address.
  const loop = await time(async () => {
    for (let i = 0; i < BASELINE; i++) {
      await run(IP, ['netns', 'exec', ns, 'iptables', '-w', '-A', 'INPUT', '-s', address(i), '-j', 'DROP']);
    }
  });
  rows.push({ backend: 'baseline', case: `loop of ${BASELINE} × iptables -A`, ms: loop.ms });
  const perBan = loop.ms / BASELINE;
  rows.push({
    backend: 'baseline',
    case: `same loop extrapolated to ${COUNT}`,
    ms: perBan * COUNT,
  });
} finally {
  await cleanup();
}

if (json) {
  console.log(JSON.stringify({ count: COUNT, node: process.version, rows }, null, 2));
} else {
  const w = Math.max(...rows.map((r) => r.case.length));
  console.log(`@sock/firewall bench — ${COUNT} addresses, Node ${process.version}, namespace ${ns}`);
  console.log(`${'backend'.padEnd(10)}  ${'case'.padEnd(w)}  ${'ms'.padStart(10)}`);
  for (const r of rows)
    console.log(`${r.backend.padEnd(10)}  ${r.case.padEnd(w)}  ${r.ms.toFixed(1).padStart(10)}`);
}
