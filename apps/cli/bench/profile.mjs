// Where the guarded server's time goes: `sock listen` with every guard (as in run.mjs) under `node
// --cpu-prof`, driven by the same load generators (pipelined echo, then accepts), and a summary of the
// top self-time functions written to bench/results/profile-guarded-echo.md.
// Usage: node bench/profile.mjs [--seconds N]
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { spawnLimited, startSock } from './servers.mjs';

const args = process.argv.slice(2);
const seconds = args.includes('--seconds') ? Number(args[args.indexOf('--seconds') + 1]) : 5;
const here = (f) => fileURLToPath(new URL(f, import.meta.url));
const root = here('../../../');
const loads = {
  'pipelined echo (64 conns × 8 × 1 KiB)': (port) => [
    here('./loadgen.mjs'),
    'pipeline',
    port,
    '64',
    seconds,
    '1024',
    '8',
  ],
  'accepts (16 parallel: connect, 64 B echo, close)': (port) => [
    here('../../../packages/core/bench/loadgen.mjs'),
    'accept',
    port,
    '16',
    seconds,
    '64',
  ],
};

const keyOf = (f) => {
  const file = f.url ? relative(root, f.url.replace(/^file:\/\//, '')) : '';
  return `${f.functionName || '(anonymous)'}|${file}|${f.lineNumber + 1}`;
};

/**
 * Self and inclusive time per function (name, file, line), in ms, from a .cpuprofile, counting only the
 * samples between the first and the last one under a socket callback (`onconnection`, `onStreamRead`):
 * start-up (module loading, building the deny list) and shutdown are left out.
 */
function times(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const stack = (id) => {
    const out = [];
    for (let at = id; at !== undefined; at = parent.get(at)) out.push(byId.get(at));
    return out;
  };
  const underSocket = (id) =>
    stack(id).some(
      (n) => n.callFrame.functionName === 'onconnection' || n.callFrame.functionName === 'onStreamRead',
    );
  let first = profile.samples.findIndex(underSocket);
  let last = profile.samples.findLastIndex(underSocket);
  if (first < 0) [first, last] = [0, profile.samples.length - 1];
  const self = new Map();
  const inclusive = new Map();
  let total = 0;
  for (let i = first; i <= last; i++) {
    const dt = (profile.timeDeltas[i] ?? 0) / 1000;
    total += dt;
    const frames = stack(profile.samples[i]);
    const k = keyOf(frames[0].callFrame);
    self.set(k, (self.get(k) ?? 0) + dt);
    for (const key of new Set(frames.map((n) => keyOf(n.callFrame))))
      inclusive.set(key, (inclusive.get(key) ?? 0) + dt);
  }
  const sorted = (m) => [...m].sort((a, b) => b[1] - a[1]);
  return { total, rows: sorted(self), inclusive: sorted(inclusive) };
}

const area = (file, name) =>
  name.startsWith('(')
    ? name
    : file.includes('packages/core/')
      ? 'core'
      : file.includes('packages/guards/')
        ? 'guards'
        : file.includes('apps/cli/')
          ? 'cli'
          : file.includes('node_modules')
            ? 'dependency'
            : file.startsWith('node:') || file === ''
              ? 'node internals'
              : 'other';

const out = [
  '# Profile: `sock listen --framing length --echo` with every guard on',
  '',
  `\`node apps/cli/bench/profile.mjs\` (${new Date().toISOString().slice(0, 10)}, Node ${process.version}): the server of`,
  '`bench/run.mjs` (deny list of 10,000 CIDRs, connection limits, connection and message rates, idle and',
  `first-frame deadlines, strikes) under \`--cpu-prof\`, ${seconds} s of each load. Self time is the time spent in`,
  'the function itself (not its callees), counted from the first to the last sample under a socket callback',
  '(start-up and shutdown left out); shares are of the busy (non-idle) samples. Lines are in the built dist.',
];
for (const [label, argv] of Object.entries(loads)) {
  const dir = mkdtempSync(join(tmpdir(), 'sock-prof-'));
  process.env.SOCK_BENCH_NODE_ARGS = `--cpu-prof --cpu-prof-dir=${dir}`;
  const server = await startSock();
  const gen = spawnLimited([process.execPath, ...argv(server.port).map(String)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const rl = createInterface({ input: gen.stdout });
  let result;
  for await (const line of rl) result = JSON.parse(line);
  await once(gen, 'exit').catch(() => {});
  await server.stop();
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error('no profile written');
  const { total, rows, inclusive } = times(JSON.parse(readFileSync(join(dir, file), 'utf8')));
  rmSync(dir, { recursive: true, force: true });
  const busy = rows.filter(([k]) => !k.startsWith('(idle)')).reduce((n, [, ms]) => n + ms, 0);
  const areas = new Map();
  for (const [k, ms] of rows) {
    const [name, f] = k.split('|');
    const a = area(f, name);
    areas.set(a, (areas.get(a) ?? 0) + ms);
  }
  out.push('', `## ${label}`, '');
  out.push(
    `${Math.round(result?.perSecond ?? 0).toLocaleString('en-US')} ops/s; ${(total / 1000).toFixed(1)} s sampled, ${((busy / total) * 100).toFixed(0)} % busy.`,
    '',
  );
  out.push('| area | self ms | share of busy |', '|---|---:|---:|');
  for (const [a, ms] of [...areas].sort((x, y) => y[1] - x[1]))
    if (a !== '(idle)') out.push(`| ${a} | ${ms.toFixed(0)} | ${((ms / busy) * 100).toFixed(1)} % |`);
  out.push('', '| # | function | where | self ms | share of busy |', '|---:|---|---|---:|---:|');
  let i = 0;
  for (const [k, ms] of rows) {
    if (k.startsWith('(idle)')) continue;
    if (++i > 25) break;
    const [name, f, line] = k.split('|');
    out.push(
      `| ${i} | \`${name}\` | ${f ? `${f}:${line}` : ''} | ${ms.toFixed(0)} | ${((ms / busy) * 100).toFixed(1)} % |`,
    );
  }
  out.push('', "Inclusive time (self + callees) of sock's own functions:", '');
  out.push('| function | where | total ms | share of busy |', '|---|---|---:|---:|');
  let j = 0;
  for (const [k, ms] of inclusive) {
    const [name, f, line] = k.split('|');
    if (!['core', 'guards', 'cli'].includes(area(f, name))) continue;
    if (++j > 20) break;
    out.push(`| \`${name}\` | ${f}:${line} | ${ms.toFixed(0)} | ${((ms / busy) * 100).toFixed(1)} % |`);
  }
}
const target = join(root, 'bench', 'results', 'profile-guarded-echo.md');
writeFileSync(target, `${out.join('\n')}\n`);
console.log(out.join('\n'));
