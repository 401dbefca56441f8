// Echo throughput and accept rate of a candidate server against a baseline, with core's load generator:
// alternating child processes on loopback, medians of `rounds`. Besides throughput it reports the
// server's CPU time per operation, which other load on a shared machine disturbs far less.
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const loadgen = fileURLToPath(new URL('../../core/bench/loadgen.mjs', import.meta.url));
const wrap = fileURLToPath(new URL('./cpu-wrap.mjs', import.meta.url));

function nextMessage(child) {
  return new Promise((resolve) => child.once('message', resolve));
}

async function firstLine(child) {
  const rl = createInterface({ input: child.stdout });
  for await (const line of rl) {
    rl.close();
    return JSON.parse(line);
  }
  throw new Error('child exited before printing');
}

async function measure(script, mode, { conns, seconds, size }) {
  const server = fork(wrap, [script], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  try {
    const { port } = await firstLine(server);
    server.send('cpu');
    const before = (await nextMessage(server)).cpu;
    const gen = fork(loadgen, [mode, String(port), String(conns), String(seconds), String(size)], {
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    });
    const result = await firstLine(gen);
    await once(gen, 'exit');
    server.send('cpu');
    const after = (await nextMessage(server)).cpu;
    const cpuUs = after.user - before.user + after.system - before.system;
    const ops = result.perSecond * seconds;
    return { ...result, cpuUsPerOp: ops > 0 ? cpuUs / ops : Number.POSITIVE_INFINITY };
  } finally {
    server.send('stop');
    const timer = setTimeout(() => server.kill('SIGKILL'), 5000);
    await once(server, 'exit');
    clearTimeout(timer);
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function compareLoad({ baseline, candidate, modes, rounds, options, log }) {
  const rows = [];
  for (const mode of modes) {
    const runs = { baseline: [], candidate: [] };
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? ['baseline', 'candidate'] : ['candidate', 'baseline'];
      for (const name of order) {
        const result = await measure(name === 'baseline' ? baseline : candidate, mode, options[mode]);
        log(
          `  ${mode} ${name} round ${r + 1}: ${result.perSecond.toFixed(0)}/s, ${result.cpuUsPerOp.toFixed(1)} µs CPU/op`,
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
      errors: [...runs.baseline, ...runs.candidate].reduce((n, x) => n + x.errors, 0),
    });
  }
  return rows;
}

export function loadTable(title, rows, targets) {
  const out = [`\n${title}`];
  out.push(
    '| mode | baseline /s | candidate /s | throughput ratio | CPU µs/op base / cand | CPU ratio | target |',
    '|---|---:|---:|---:|---:|---:|---|',
  );
  for (const r of rows) {
    const t = targets[r.mode];
    out.push(
      `| ${r.mode} | ${r.baselinePerSecond.toFixed(0)} | ${r.candidatePerSecond.toFixed(0)} | ${r.ratio.toFixed(3)} | ${r.baselineCpuUs.toFixed(1)} / ${r.candidateCpuUs.toFixed(1)} | ${r.cpuRatio.toFixed(3)} | ≥ ${t}: throughput ${r.ratio >= t ? 'ok' : 'MISS'}, CPU ${r.cpuRatio >= t ? 'ok' : 'MISS'} |`,
    );
  }
  return out.join('\n');
}
