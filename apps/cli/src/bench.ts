import { type Connection, connect } from '@sock/core';
import { tlsClient } from '@sock/tls';
import { createUdpSocket, type UdpSocket } from '@sock/udp';
import type { Command } from 'commander';
import { describeError, EXIT, ExitError, UsageError } from './errors.js';
import { makeFraming } from './listen.js';
import { oneOf, parseCount, parseDur, parsePort, parseSize } from './parse.js';
import { style, table } from './style.js';
import { addClientTlsFlags, type ClientTlsFlags, clientTls } from './tls-flags.js';

interface BenchFlags extends ClientTlsFlags {
  conns: string;
  size: string;
  duration: string;
  udp?: boolean;
  framing: string;
  json?: boolean;
  progress?: boolean;
}

interface BenchResult {
  transport: 'tcp' | 'tls' | 'udp';
  conns: number;
  size: number;
  durationMs: number;
  messages: number;
  messagesPerSecond: number;
  megabytesPerSecond: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  errors: number;
  lost: number;
}

const MAX_SAMPLES = 200_000;

export function benchCommand(program: Command): void {
  const cmd = program
    .command('bench')
    .description('load generator against an echo server: throughput and latency percentiles')
    .argument('<host>')
    .argument('<port>')
    .option('--conns <n>', 'concurrent connections (or UDP sockets)', '10')
    .option('--size <bytes>', 'message size', '64')
    .option('--duration <dur>', 'how long to run (at most 10m)', '5s')
    .option('-u, --udp', 'UDP datagrams (a reply not back within 1 s is lost)')
    .option('--framing <framing>', 'line or length (the server must use the same)', 'line')
    .option('--json', 'print the result as JSON')
    .option('--no-progress', 'no progress bar (it is only drawn on a terminal anyway)');
  addClientTlsFlags(cmd);
  cmd.addHelpText(
    'after',
    '\nExample:\n  sock listen 7000 & sock bench 127.0.0.1 7000 --conns 50 --size 1k --duration 10s',
  );
  cmd.action(async (host: string, portArg: string, flags: BenchFlags) => {
    const port = parsePort(portArg);
    const conns = parseCount(flags.conns, '--conns');
    if (conns > 10_000) throw new UsageError('--conns must be at most 10000');
    const size = parseSize(flags.size, '--size');
    const durationMs = parseDur(flags.duration, '--duration');
    if (durationMs < 100 || durationMs > 600_000)
      throw new UsageError('--duration must be from 100ms to 10m');
    const framingName = oneOf(flags.framing, ['line', 'length'] as const, '--framing');
    const tls = clientTls(flags);
    if (flags.udp && tls) throw new UsageError('--udp and --tls exclude each other');
    const result = await bench({
      host,
      port,
      conns,
      size,
      durationMs,
      framingName,
      tls,
      udp: flags.udp ?? false,
      progress: flags.progress !== false,
    });
    if (flags.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    else process.stdout.write(`${formatResult(result)}\n`);
    if (result.messages === 0) throw new ExitError(EXIT.RUNTIME);
  });
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function formatResult(r: BenchResult): string {
  const f = (n: number) => n.toFixed(n < 10 ? 3 : 1);
  return table(
    [
      'transport',
      'conns',
      'size',
      'messages',
      'msg/s',
      'MB/s',
      'p50 ms',
      'p90 ms',
      'p99 ms',
      'max ms',
      'errors',
      'lost',
    ],
    [
      [
        r.transport,
        String(r.conns),
        String(r.size),
        String(r.messages),
        r.messagesPerSecond.toFixed(0),
        r.megabytesPerSecond.toFixed(2),
        f(r.latencyMs.p50),
        f(r.latencyMs.p90),
        f(r.latencyMs.p99),
        f(r.latencyMs.max),
        String(r.errors),
        String(r.lost),
      ],
    ],
  );
}

async function bench(o: {
  host: string;
  port: number;
  conns: number;
  size: number;
  durationMs: number;
  framingName: 'line' | 'length';
  tls: ReturnType<typeof clientTls>;
  udp: boolean;
  progress: boolean;
}): Promise<BenchResult> {
  const payload = Buffer.alloc(o.size, 'x');
  const samples = new Float64Array(MAX_SAMPLES);
  let sampleCount = 0;
  let messages = 0;
  let errors = 0;
  let lost = 0;
  const record = (ms: number) => {
    messages++;
    // Reservoir sampling keeps percentiles honest without unbounded memory.
    if (sampleCount < MAX_SAMPLES) samples[sampleCount++] = ms;
    else {
      const j = Math.floor(Math.random() * messages);
      if (j < MAX_SAMPLES) samples[j] = ms;
    }
  };
  const started = performance.now();
  const deadline = started + o.durationMs;
  const bar = o.progress ? progressBar(o.durationMs, () => messages) : undefined;
  const transport = o.udp ? ('udp' as const) : o.tls ? ('tls' as const) : ('tcp' as const);
  const framing = makeFraming(o.framingName, String(Math.max(o.size, 65_536)));
  const firstError: string[] = [];

  const tcpWorker = async () => {
    let conn: Connection<Buffer, Uint8Array>;
    try {
      conn = await connect<Buffer, Uint8Array>({
        host: o.host,
        port: o.port,
        framing,
        timeoutMs: 5000,
        ...(o.tls ? { transport: tlsClient(o.tls) } : {}),
      });
    } catch (err) {
      errors++;
      firstError.push(describeError(err));
      return;
    }
    const replies = conn[Symbol.asyncIterator]();
    try {
      while (performance.now() < deadline) {
        const t = performance.now();
        await conn.send(payload);
        const r = await replies.next();
        if (r.done) {
          errors++;
          firstError.push('the server closed the connection');
          return;
        }
        record(performance.now() - t);
      }
    } catch (err) {
      errors++;
      firstError.push(describeError(err));
    } finally {
      await conn.close().catch(() => {});
    }
  };

  const udpWorker = async () => {
    const socket: UdpSocket = createUdpSocket({ maxPayloadBytes: Math.min(65_507, Math.max(o.size, 1232)) });
    try {
      await socket.connect({ host: o.host, port: o.port });
      const it = socket[Symbol.asyncIterator]();
      while (performance.now() < deadline) {
        const t = performance.now();
        await socket.send(payload);
        let timer: NodeJS.Timeout | undefined;
        const r = await Promise.race([
          it.next(),
          new Promise<'lost'>((res) => (timer = setTimeout(() => res('lost'), 1000))),
        ]);
        clearTimeout(timer);
        if (r === 'lost') lost++;
        else if (r.done) return;
        else record(performance.now() - t);
      }
    } catch (err) {
      errors++;
      firstError.push(describeError(err));
    } finally {
      await socket.close();
    }
  };

  await Promise.all(Array.from({ length: o.conns }, () => (o.udp ? udpWorker() : tcpWorker())));
  bar?.stop();
  const elapsed = performance.now() - started;
  const sorted = samples.slice(0, sampleCount).sort();
  if (firstError.length > 0)
    process.stderr.write(`sock: bench: ${errors} error(s), first: ${firstError[0]}\n`);
  return {
    transport,
    conns: o.conns,
    size: o.size,
    durationMs: Math.round(elapsed),
    messages,
    messagesPerSecond: (messages / elapsed) * 1000,
    megabytesPerSecond: (messages * o.size * 2) / (elapsed / 1000) / 1e6,
    latencyMs: {
      p50: percentile(sorted, 50),
      p90: percentile(sorted, 90),
      p99: percentile(sorted, 99),
      max: sorted.length ? sorted[sorted.length - 1]! : 0,
    },
    errors,
    lost,
  };
}

/** A progress bar on stderr, only on a terminal. */
function progressBar(totalMs: number, count: () => number): { stop(): void } | undefined {
  if (!process.stderr.isTTY) return undefined;
  const s = style(process.stderr);
  const start = performance.now();
  const width = 30;
  const draw = () => {
    const done = Math.min(1, (performance.now() - start) / totalMs);
    const filled = Math.round(done * width);
    process.stderr.write(
      `\r${s.green('█'.repeat(filled))}${s.dim('░'.repeat(width - filled))} ${(done * 100).toFixed(0).padStart(3)}%  ${count()} msgs`,
    );
  };
  const timer = setInterval(draw, 100);
  return {
    stop() {
      clearInterval(timer);
      draw();
      process.stderr.write('\n');
    },
  };
}
