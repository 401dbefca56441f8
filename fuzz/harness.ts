/**
 * Shared harness for the `*.fuzz.test.ts` files in each package's test/ folder.
 *
 * - The number of cases per property comes from `FUZZ_RUNS` (default 200, so `pnpm test` stays fast);
 *   `pnpm fuzz` sets it to 1,000,000.
 * - Memory is sampled while a property runs; the peak heap and RSS must stay under a bound (a parser that
 *   buffers without limit fails here), and when `FUZZ_REPORT` names a file each property appends one JSON
 *   line to it: `{ parser, runs, ms, peakHeapMiB, peakRssMiB, heapGrowthMiB }` (read by fuzz/run.mjs).
 */
import { appendFileSync } from 'node:fs';
import fc from 'fast-check';
import { it } from 'vitest';

export const FUZZ_RUNS = Number(process.env.FUZZ_RUNS ?? 200);
/** Peak heap a fuzzed parser may reach in the test worker. */
export const HEAP_BOUND_BYTES = 768 * 2 ** 20;
const SAMPLE_EVERY = 2048;

/** A test timeout that grows with the number of runs (~50 µs a case, at least 30 s). */
export function fuzzTimeout(perCaseMs = 0.05): number {
  return Math.max(30_000, Math.ceil(FUZZ_RUNS * perCaseMs * 4));
}

interface Peaks {
  heap: number;
  rss: number;
}

function sample(peaks: Peaks): void {
  const m = process.memoryUsage();
  if (m.heapUsed > peaks.heap) peaks.heap = m.heapUsed;
  if (m.rss > peaks.rss) peaks.rss = m.rss;
  if (m.heapUsed > HEAP_BOUND_BYTES) {
    throw new Error(`heap ${Math.round(m.heapUsed / 2 ** 20)} MiB exceeds the fuzz bound`);
  }
}

function report(parser: string, runs: number, started: number, peaks: Peaks, heapBefore: number): void {
  const file = process.env.FUZZ_REPORT;
  if (!file) return;
  const mib = (n: number) => Math.round((n / 2 ** 20) * 10) / 10;
  const line = {
    parser,
    runs,
    ms: Math.round(performance.now() - started),
    peakHeapMiB: mib(peaks.heap),
    peakRssMiB: mib(peaks.rss),
    heapGrowthMiB: mib(process.memoryUsage().heapUsed - heapBefore),
  };
  appendFileSync(file, `${JSON.stringify(line)}\n`);
}

export interface FuzzOptions {
  /** Cases for this property; default FUZZ_RUNS. */
  runs?: number;
  /** Expected cost of one case in ms, for the timeout. */
  perCaseMs?: number;
  /** Fixed seed (to replay a failure); default random. */
  seed?: number;
}

/**
 * Register a test that checks `predicate` on `options.runs ?? FUZZ_RUNS` values of `arb`. `parser` names
 * the parser for the report (`core/length-prefixed`). The predicate throws (expect) to fail.
 */
export function fuzzIt<T>(
  parser: string,
  property: string,
  arb: fc.Arbitrary<T>,
  predicate: (value: T) => void,
  options: FuzzOptions = {},
): void {
  const runs = options.runs ?? FUZZ_RUNS;
  it(
    `${parser}: ${property}`,
    () => {
      const peaks: Peaks = { heap: 0, rss: 0 };
      const heapBefore = process.memoryUsage().heapUsed;
      const started = performance.now();
      let n = 0;
      fc.assert(
        fc.property(arb, (value) => {
          if (++n % SAMPLE_EVERY === 0) sample(peaks);
          predicate(value);
        }),
        { numRuns: runs, ...(options.seed === undefined ? {} : { seed: options.seed }) },
      );
      sample(peaks);
      report(`${parser} · ${property}`, n, started, peaks, heapBefore);
    },
    fuzzTimeout(options.perCaseMs),
  );
}

/** The async variant, for parsers that return promises. */
export function fuzzItAsync<T>(
  parser: string,
  property: string,
  arb: fc.Arbitrary<T>,
  predicate: (value: T) => Promise<void>,
  options: FuzzOptions = {},
): void {
  const runs = options.runs ?? FUZZ_RUNS;
  it(
    `${parser}: ${property}`,
    async () => {
      const peaks: Peaks = { heap: 0, rss: 0 };
      const heapBefore = process.memoryUsage().heapUsed;
      const started = performance.now();
      let n = 0;
      await fc.assert(
        fc.asyncProperty(arb, async (value) => {
          if (++n % SAMPLE_EVERY === 0) sample(peaks);
          await predicate(value);
        }),
        { numRuns: runs, ...(options.seed === undefined ? {} : { seed: options.seed }) },
      );
      sample(peaks);
      report(`${parser} · ${property}`, n, started, peaks, heapBefore);
    },
    fuzzTimeout(options.perCaseMs ?? 0.2),
  );
}

/** Split `buf` at the given cut points (any numbers; taken modulo the length). */
export function split(buf: Buffer, cuts: readonly number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
  const parts: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    parts.push(buf.subarray(prev, p));
    prev = p;
  }
  parts.push(buf.subarray(prev));
  return parts;
}

/** Apply byte edits (position modulo length, xor value) to a copy of `buf`. */
export function mutate(buf: Uint8Array, edits: ReadonlyArray<readonly [number, number]>): Buffer {
  const out = Buffer.from(buf);
  if (out.length === 0) return out;
  for (const [at, x] of edits) {
    const i = at % out.length;
    out[i] = out[i]! ^ (x || 1);
  }
  return out;
}

/** A cheap assertion for hot property bodies (vitest's expect costs microseconds a call). */
export function check(condition: boolean, what: string): asserts condition {
  if (!condition) throw new Error(`property violated: ${what}`);
}

/**
 * `err` must be a sock error (a SockError, marked `Symbol.for('sock.error')`, or a FirewallError, marked
 * `Symbol.for('sock.firewall-error')`) with one of `codes`; anything else (TypeError, RangeError, an
 * OpenSSL error…) is rethrown.
 */
const TYPED_MARKERS = ['sock.error', 'sock.firewall-error', 'sock.ipsec-error'];

export function expectTyped(err: unknown, codes: readonly string[]): void {
  // A SockError, or a FirewallError or IpsecError (each has its own marker: neither is a SockError).
  const marks = err as Record<symbol, unknown> | null;
  const marked =
    typeof err === 'object' &&
    marks !== null &&
    TYPED_MARKERS.some((marker) => marks[Symbol.for(marker)] === true);
  const code = marked ? (err as { code?: unknown }).code : undefined;
  if (typeof code !== 'string') throw err;
  check(codes.includes(code), `unexpected code ${code}`);
}
