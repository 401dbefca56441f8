// Runs a server script in a child process and a load generator in another, alternating variants, and
// reports each variant against the baseline. Shared by the packages' benchmarks.
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const loadgen = fileURLToPath(new URL('./loadgen.mjs', import.meta.url));

async function firstLine(child) {
  const rl = createInterface({ input: child.stdout });
  for await (const line of rl) {
    rl.close();
    return JSON.parse(line);
  }
  throw new Error('child exited before printing');
}

/** Start `script` (prints {"port"}), run the load generator against it, stop it. */
export async function measure(script, mode, { conns = 64, seconds = 3, size = 1024, env = {} } = {}) {
  const server = fork(script, [], {
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    env: { ...process.env, ...env },
  });
  try {
    const { port } = await firstLine(server);
    const gen = fork(loadgen, [mode, String(port), String(conns), String(seconds), String(size)], {
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    });
    const result = await firstLine(gen);
    await once(gen, 'exit');
    return result;
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
 * ratio (higher is better for throughput; for latency the ratio is candidate/baseline, lower is better).
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
          `  ${mode} ${name} round ${r + 1}: ${result.perSecond.toFixed(0)}/s p99 ${result.p99.toFixed(2)} ms`,
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
      baselineP50: pick('baseline', 'p50'),
      candidateP50: pick('candidate', 'p50'),
      baselineP99: pick('baseline', 'p99'),
      candidateP99: pick('candidate', 'p99'),
      errors:
        runs.candidate.reduce((n, x) => n + x.errors, 0) + runs.baseline.reduce((n, x) => n + x.errors, 0),
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
