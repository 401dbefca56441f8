// Memory held by 1M distinct keys in the per-key state (run with --expose-gc, in its own process).
// Usage: node --expose-gc bench/memory.mjs [keys] [ipv4|ipv6]
const { createGuards } = await import(process.env.SOCK_GUARDS_DIST ?? '../dist/index.js');

const keys = Number(process.argv[2] ?? 1_000_000);
const family = process.argv[3] ?? 'ipv4';

function used() {
  globalThis.gc();
  globalThis.gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

const guards = createGuards({
  store: { maxKeys: keys },
  rates: { datagrams: { perKey: { rate: 100, burst: 100 }, bytesPerKey: false } },
});
const before = used();
const t0 = performance.now();
for (let i = 0; i < keys; i++) {
  const address =
    family === 'ipv4'
      ? `${(i >>> 24) + 11}.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`
      : `2001:db8:${(i >>> 16).toString(16)}:${(i & 0xffff).toString(16)}::1`;
  guards.check(address);
}
const ms = performance.now() - t0;
const after = used();
const snap = guards.snapshot();
process.stdout.write(
  `${JSON.stringify({ family, keys, bytes: after - before, perKey: (after - before) / keys, tableSize: snap.store.datagrams.size, evictions: snap.store.datagrams.evictions, nsPerCheck: (ms * 1e6) / keys })}\n`,
);
