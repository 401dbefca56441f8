// Runs a server script in a child process and a load generator in another, alternating variants, and
// reports each variant against the baseline. Shared by the packages' benchmarks.
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const loadgen = fileURLToPath(new URL('./loadgen.mjs', import.meta.url));
const cpuWrap = fileURLToPath(new URL('./cpu-wrap.mjs', import.meta.url));

async function firstLine(child) {
  const rl = createInterface({ input: child.stdout });
  for await (const line of rl) {
    rl.close();
    return JSON.parse(line);
  }
  throw new Error('child exited before printing');
}

const nextMessage = (child) => new Promise((resolve) => child.once('message', resolve));

async function serverCpuUs(server) {
  server.send('cpu');
  const { cpu } = await nextMessage(server);
  return cpu.user + cpu.system;
}

/**
 * How long each fresh server is driven, unmeasured, before its measured run: until the JIT has compiled
 * its hot paths. A cold 2–3 s run charges the server for compiling its own code (sock has more of it
 * than a 30-line raw server), which a long-running server pays once; the figures are steady state.
 */
export const WARMUP_SECONDS = 3;

/** Drive `port` with the load generator for `seconds`, results discarded. */
export async function warmUp(mode, port, { conns = 64, size = 1024, seconds = WARMUP_SECONDS } = {}) {
  const gen = fork(loadgen, [mode, String(port), String(conns), String(seconds), String(size)], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  await once(gen, 'exit');
}

/**
 * Start `script` (prints {"port"}), warm it up, run the load generator against it, stop it. Besides
 * throughput and latency it charges the server's CPU time per operation, which other load on a shared
 * machine disturbs far less than throughput.
 */
export async function measure(script, mode, { conns = 64, seconds = 3, size = 1024, env = {} } = {}) {
  const server = fork(cpuWrap, [script], {
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    env: { ...process.env, ...env },
  });
  try {
    const { port } = await firstLine(server);
    await warmUp(mode, port, { conns, size });
    const before = await serverCpuUs(server);
    const gen = fork(loadgen, [mode, String(port), String(conns), String(seconds), String(size)], {
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    });
    const result = await firstLine(gen);
    await once(gen, 'exit');
    const ops = result.perSecond * seconds;
    const cpuUsPerOp = ops > 0 ? ((await serverCpuUs(server)) - before) / ops : Number.POSITIVE_INFINITY;
    return { ...result, cpuUsPerOp };
  } finally {
    server.send('stop');
    const timer = setTimeout(() => server.kill('SIGKILL'), 5000);
    await once(server, 'exit');
    clearTimeout(timer);
  }
}

function median(values) {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/**
 * Alternate baseline and candidate `rounds` times per mode; report medians and the candidate/baseline
 * ratios: throughput (higher is better), CPU per operation as baseline/candidate (higher is better), and
 * latencies.
 */
export async function compare({ baseline, candidate, modes, rounds = 3, options = {}, log = () => {} }) {
  const rows = [];
  for (const mode of modes) {
    const runs = { baseline: [], candidate: [] };
    for (let r = 0; r < rounds; r++) {
      for (const [name, script] of r % 2 === 0
        ? [
            ['baseline', baseline],
            ['candidate', candidate],
          ]
        : [
            ['candidate', candidate],
            ['baseline', baseline],
          ]) {
        const result = await measure(script, mode, options[mode]);
        log(
          `  ${mode} ${name} round ${r + 1}: ${result.perSecond.toFixed(0)}/s p99 ${result.p99.toFixed(2)} ms, ${result.cpuUsPerOp.toFixed(1)} µs CPU/op`,
        );
        runs[name].push(result);
      }
    }
    const pick = (name, key) => median(runs[name].map((x) => x[key]));
    rows.push({
      mode,
      baselinePerSecond: pick('baseline', 'perSecond'),
      candidatePerSecond: pick('candidate', 'perSecond'),
      ratio: pick('candidate', 'perSecond') / pick('baseline', 'perSecond'),
      baselineCpuUs: pick('baseline', 'cpuUsPerOp'),
      candidateCpuUs: pick('candidate', 'cpuUsPerOp'),
      cpuRatio: pick('baseline', 'cpuUsPerOp') / pick('candidate', 'cpuUsPerOp'),
      baselineP50: pick('baseline', 'p50'),
      candidateP50: pick('candidate', 'p50'),
      baselineP99: pick('baseline', 'p99'),
      candidateP99: pick('candidate', 'p99'),
      errors: [...runs.baseline, ...runs.candidate].reduce((n, x) => n + x.errors, 0),
    });
  }
  return rows;
}

export function printTable(title, rows, targets) {
  const out = [`\n${title}`];
  out.push(
    '| mode | baseline /s | candidate /s | ratio | target | p50 base/cand ms | p99 base/cand ms |',
    '|---|---:|---:|---:|---:|---:|---:|',
  );
  for (const r of rows) {
    const target = targets[r.mode];
    const ok = r.ratio >= target ? 'ok' : 'MISS';
    out.push(
      `| ${r.mode} | ${r.baselinePerSecond.toFixed(0)} | ${r.candidatePerSecond.toFixed(0)} | ${r.ratio.toFixed(3)} | ≥ ${target} ${ok} | ${r.baselineP50.toFixed(3)} / ${r.candidateP50.toFixed(3)} | ${r.baselineP99.toFixed(3)} / ${r.candidateP99.toFixed(3)} |`,
    );
  }
  return out.join('\n');
}
