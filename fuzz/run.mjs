// pnpm fuzz [--runs N] [--only core,guards]: every *.fuzz.test.ts with FUZZ_RUNS cases per property
// (default 1,000,000), then a table of cases, time, peak heap and RSS per parser property, written to
// bench/results/fuzz.json. Exits non-zero if any property failed (a crash, an untyped error, a broken
// round trip or a heap over the bound in fuzz/harness.ts).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const opt = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const runs = Number(opt('--runs', 1_000_000));
const only = opt('--only', 'core,guards,firewall,tls,udp,ipsec').split(',');
const dir = mkdtempSync(join(tmpdir(), 'sock-fuzz-'));
const report = join(dir, 'report.jsonl');

const vitest = join(root, 'node_modules', '.bin', 'vitest');
const argv = ['run', ...only.flatMap((p) => ['--project', p]), 'fuzz', '--maxWorkers=2'];
process.stderr.write(
  `fuzz: ${runs.toLocaleString('en-US')} cases per property, projects ${only.join(', ')}\n`,
);
const started = Date.now();
const code = await new Promise((resolve) => {
  const child = spawn(vitest, argv, {
    cwd: root,
    stdio: 'inherit',
    env: {
      ...process.env,
      FUZZ_RUNS: String(runs),
      FUZZ_REPORT: report,
      NODE_OPTIONS: '--max-old-space-size=1024',
    },
  });
  const stop = (sig) => child.kill(sig);
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  child.on('exit', (c, sig) => resolve(c ?? (sig ? 1 : 0)));
});

const rows = existsSync(report)
  ? readFileSync(report, 'utf8')
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l))
  : [];
rmSync(dir, { recursive: true, force: true });
rows.sort((a, b) => a.parser.localeCompare(b.parser));
const pad = (s, n) => String(s).padEnd(n);
const lines = [
  `${pad('parser · property', 100)} ${pad('cases', 10)} ${pad('s', 7)} ${pad('µs/case', 8)} ${pad('peak heap MiB', 14)} peak RSS MiB`,
];
for (const r of rows) {
  lines.push(
    `${pad(r.parser.slice(0, 99), 100)} ${pad(r.runs.toLocaleString('en-US'), 10)} ${pad((r.ms / 1000).toFixed(1), 7)} ${pad(((r.ms * 1000) / r.runs).toFixed(1), 8)} ${pad(r.peakHeapMiB, 14)} ${r.peakRssMiB}`,
  );
}
console.log(lines.join('\n'));
const out = join(root, 'bench', 'results', 'fuzz.json');
writeFileSync(
  out,
  `${JSON.stringify({ runsPerProperty: runs, seconds: (Date.now() - started) / 1000, exitCode: code, node: process.version, date: new Date().toISOString(), properties: rows }, null, 2)}\n`,
);
console.log(
  `\n${rows.length} properties, ${code === 0 ? 'no failure' : 'FAILURES (see above)'}; written ${out}`,
);
process.exit(code);
