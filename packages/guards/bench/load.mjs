// The table for guards' load comparison; the measuring is core's harness (core/bench/harness.mjs:
// alternating child processes, throughput, latency and server CPU per operation).
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
