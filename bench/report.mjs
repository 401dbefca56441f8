// pnpm bench: runs every package's benchmark (its `bench` script with --json), then writes
// bench/results/latest.json, latest.md and ratios.svg. Each benchmark prints, as its last line:
//   { package, results: [{ name, unit, baseline?, value, ratio?, target?, targetKind?: 'min'|'max', met? }] }
// Usage: node bench/report.mjs [--only core,guards]
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));
const out = join(root, 'bench', 'results');
const args = process.argv.slice(2);
const only = args.includes('--only') ? args[args.indexOf('--only') + 1].split(',') : undefined;

const packages = readdirSync(join(root, 'packages'))
  .filter((name) => !only || only.includes(name))
  .map((name) => ({ name, dir: join(root, 'packages', name) }))
  .filter(({ dir }) => JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).scripts?.bench);

const reports = [];
for (const { name, dir } of packages) {
  process.stderr.write(`bench: ${name} ...\n`);
  const started = Date.now();
  try {
    const { stdout } = await run('pnpm', ['run', '--silent', 'bench', '--json'], {
      cwd: dir,
      timeout: 15 * 60_000,
      maxBuffer: 64 * 1024 * 1024,
    });
    const line = stdout
      .trim()
      .split('\n')
      .reverse()
      .find((l) => l.startsWith('{'));
    const report = JSON.parse(line);
    reports.push({ ...report, seconds: (Date.now() - started) / 1000 });
  } catch (err) {
    reports.push({ package: `@sock/${name}`, error: String(err.message).split('\n')[0], results: [] });
  }
}

// The attack lab (root only, minutes) is not run here: include its last result when there is one.
try {
  const lab = JSON.parse(readFileSync(join(out, 'attack-lab.json'), 'utf8'));
  reports.push({ package: `attack-lab (pnpm bench:attack, ${lab.date})`, results: lab.results });
} catch {}

const machine = {
  node: process.version,
  cpus: `${cpus().length} × ${cpus()[0]?.model ?? 'unknown'}`,
  memoryGiB: Math.round(totalmem() / 2 ** 30),
  date: new Date().toISOString(),
};
writeFileSync(join(out, 'latest.json'), `${JSON.stringify({ machine, reports }, null, 2)}\n`);

const fmt = (n) =>
  n === undefined || n === null
    ? ''
    : Math.abs(n) >= 100
      ? Math.round(n).toLocaleString('en-US')
      : Number(n.toPrecision(3)).toString();
const verdict = (r) => (r.target === undefined ? '' : r.met ? 'met' : '**missed**');
const lines = [
  '# Benchmark results',
  '',
  `Node ${machine.node}, ${machine.cpus}, ${machine.memoryGiB} GiB, ${machine.date}. Ratios are against a baseline measured in the same run.`,
  '',
  '| package | measure | baseline | sock | ratio | target | |',
  '|---|---|---:|---:|---:|---:|---|',
];
for (const rep of reports) {
  if (rep.error) lines.push(`| ${rep.package} | benchmark failed: ${rep.error} | | | | | |`);
  for (const r of rep.results) {
    const target = r.target === undefined ? '' : `${r.targetKind === 'max' ? '≤' : '≥'} ${r.target}`;
    lines.push(
      `| ${rep.package} | ${r.name} | ${fmt(r.baseline)} | ${fmt(r.value)} ${r.unit ?? ''} | ${fmt(r.ratio)} | ${target} | ${verdict(r)} |`,
    );
  }
}
lines.push('', '![ratios](ratios.svg)', '');
writeFileSync(join(out, 'latest.md'), lines.join('\n'));
writeFileSync(join(out, 'ratios.svg'), chart(reports));
console.log(lines.join('\n'));

/** Horizontal bars of every ratio that has a target, with the target marked. Plain SVG, no dependency. */
function chart(reps) {
  const rows = reps.flatMap((rep) =>
    rep.results
      .filter((r) => r.ratio !== undefined && r.target !== undefined)
      .map((r) => ({ ...r, pkg: rep.package })),
  );
  const width = 900;
  const left = 430;
  const barArea = width - left - 60;
  const rowH = 26;
  const max = Math.max(1.2, ...rows.map((r) => Math.min(r.ratio, 3)), ...rows.map((r) => r.target));
  const x = (v) => left + (Math.min(v, max) / max) * barArea;
  const esc = (s) =>
    String(s).replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]);
  const body = rows
    .map((r, i) => {
      const y = 40 + i * rowH;
      const colour = r.met ? '#2e7d32' : '#c62828';
      return [
        `<text x="${left - 8}" y="${y + 15}" text-anchor="end" font-size="12">${esc(`${r.pkg} · ${r.name}`).slice(0, 70)}</text>`,
        `<rect x="${left}" y="${y + 3}" width="${Math.max(1, x(r.ratio) - left)}" height="16" fill="${colour}"/>`,
        `<line x1="${x(r.target)}" x2="${x(r.target)}" y1="${y}" y2="${y + 22}" stroke="#000" stroke-dasharray="3,2"/>`,
        `<text x="${x(r.ratio) + 4}" y="${y + 15}" font-size="11">${r.ratio >= 100 ? Math.round(r.ratio).toLocaleString('en-US') : r.ratio.toFixed(2)}</text>`,
      ].join('');
    })
    .join('\n');
  const height = 60 + rows.length * rowH;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif">
<rect width="100%" height="100%" fill="#fff"/>
<text x="10" y="22" font-size="14" font-weight="bold">sock benchmark ratios (bar) against targets (dashed line); green met, red missed</text>
${body}
</svg>
`;
}
