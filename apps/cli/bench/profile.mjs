// Where the guarded server's time goes, next to the raw node:net server's: each under `node --cpu-prof`,
// driven by the same load generators as run.mjs (pipelined echo, then accepts). Each server is warmed up
// first and only the samples of the measured window count, so the figures are steady state (a cold run
// is mostly the JIT compiling). Time is charged per operation (µs per echoed KiB, per accepted
// connection), so the two servers compare line by line. Writes bench/results/profile-guarded-echo.md.
// Usage: node bench/profile.mjs [--seconds N] [--warmup N]
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { spawnLimited, startRaw, startSock } from './servers.mjs';

const args = process.argv.slice(2);
const num = (flag, d) => (args.includes(flag) ? Number(args[args.indexOf(flag) + 1]) : d);
const seconds = num('--seconds', 5);
const warmup = num('--warmup', 3);
const here = (f) => fileURLToPath(new URL(f, import.meta.url));
const root = here('../../../');
const loads = {
  'pipelined echo (64 conns × 8 × 1 KiB), µs per echoed KiB': {
    argv: (port, secs) => [here('./loadgen.mjs'), 'pipeline', port, '64', secs, '1024', '8'],
    ops: (r) => r.perSecond * r.elapsed,
  },
  'accepts (16 parallel: connect, 64 B echo, close), µs per connection': {
    argv: (port, secs) => [
      here('../../../packages/core/bench/loadgen.mjs'),
      'accept',
      port,
      '16',
      secs,
      '64',
    ],
    ops: (r) => r.perSecond * seconds,
  },
};

const keyOf = (f) => {
  const file = f.url ? relative(root, f.url.replace(/^file:\/\//, '')) : '';
  return `${f.functionName || '(anonymous)'}|${file}|${f.lineNumber + 1}`;
};

/**
 * Self time per function (name, file, line), in ms, from a .cpuprofile, counting only the samples taken
 * between `from` and `to` (µs on the monotonic clock both V8 and process.hrtime read on Linux).
 */
function times(profile, from, to) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  let at = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i] ?? 0;
    if (at < from || at > to) continue;
    const dt = (profile.timeDeltas[i] ?? 0) / 1000;
    const k = keyOf(byId.get(profile.samples[i]).callFrame);
    self.set(k, (self.get(k) ?? 0) + dt);
  }
  return self;
}

const area = (file, name) =>
  name.startsWith('(')
    ? name
    : file.includes('packages/core/')
      ? 'core'
      : file.includes('packages/guards/')
        ? 'guards'
        : file.includes('packages/observe/')
          ? 'observe'
          : file.includes('apps/cli/dist')
            ? 'cli'
            : file.includes('node_modules')
              ? 'dependency'
              : 'node internals and native';

async function runLoad(argv) {
  const gen = spawnLimited([process.execPath, ...argv.map(String)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const rl = createInterface({ input: gen.stdout });
  let result;
  for await (const line of rl) result = JSON.parse(line);
  await once(gen, 'exit').catch(() => {});
  return result;
}

const nowUs = () => Number(process.hrtime.bigint() / 1000n);

/** Profile one server under one load: µs per operation by function, over the measured window only. */
async function profileOne(start, load) {
  const dir = mkdtempSync(join(tmpdir(), 'sock-prof-'));
  process.env.SOCK_BENCH_NODE_ARGS = `--cpu-prof --cpu-prof-dir=${dir}`;
  const server = await start();
  if (warmup > 0) await runLoad(load.argv(server.port, warmup));
  const from = nowUs();
  const result = await runLoad(load.argv(server.port, seconds));
  const to = nowUs();
  await server.stop();
  delete process.env.SOCK_BENCH_NODE_ARGS;
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error('no profile written');
  const self = times(JSON.parse(readFileSync(join(dir, file), 'utf8')), from, to);
  rmSync(dir, { recursive: true, force: true });
  const ops = load.ops(result);
  const perOp = new Map([...self].map(([k, ms]) => [k, (ms * 1000) / ops]));
  return { ops, perSecond: result.perSecond, perOp };
}

const busyOf = (perOp) =>
  [...perOp].filter(([k]) => !k.startsWith('(idle)')).reduce((n, [, us]) => n + us, 0);
const fmt = (us) => us.toFixed(2);

const out = [
  '# Profile: `sock listen --framing length --echo` with every guard on, next to raw node:net',
  '',
  `\`node apps/cli/bench/profile.mjs\` (${new Date().toISOString().slice(0, 10)}, Node ${process.version}): the two`,
  'servers of `bench/run.mjs` (the guarded one has a deny list of 10,000 CIDRs, connection limits, connection',
  'and message rates, idle and first-frame deadlines, strikes) under `--cpu-prof`, each warmed up for',
  `${warmup} s and then profiled over ${seconds} s of the same load. Self time (the function itself, not its`,
  'callees), per operation, busy samples only: where the guarded server spends more than the raw one.',
  'Lines are in the built dist.',
];
for (const [label, load] of Object.entries(loads)) {
  const raw = await profileOne(startRaw, load);
  const sock = await profileOne(startSock, load);
  const rawBusy = busyOf(raw.perOp);
  const sockBusy = busyOf(sock.perOp);
  out.push('', `## ${label}`, '');
  out.push(
    `raw: ${Math.round(raw.perSecond).toLocaleString('en-US')} ops/s, ${fmt(rawBusy)} µs busy per op; guarded: ${Math.round(sock.perSecond).toLocaleString('en-US')} ops/s, ${fmt(sockBusy)} µs busy per op (main thread; ratio ${(rawBusy / sockBusy).toFixed(3)}).`,
    '',
  );
  const areas = new Map();
  const add = (perOp, i) => {
    for (const [k, us] of perOp) {
      if (k.startsWith('(idle)')) continue;
      const [name, f] = k.split('|');
      const a = area(f, name);
      const row = areas.get(a) ?? [0, 0];
      row[i] += us;
      areas.set(a, row);
    }
  };
  add(raw.perOp, 0);
  add(sock.perOp, 1);
  out.push('| area | raw µs/op | guarded µs/op | difference |', '|---|---:|---:|---:|');
  for (const [a, [r, s]] of [...areas].sort((x, y) => y[1][1] - y[1][0] - (x[1][1] - x[1][0])))
    out.push(`| ${a} | ${fmt(r)} | ${fmt(s)} | ${fmt(s - r)} |`);
  const keys = new Set([...raw.perOp.keys(), ...sock.perOp.keys()]);
  const rows = [...keys]
    .filter((k) => !k.startsWith('(idle)'))
    .map((k) => [k, raw.perOp.get(k) ?? 0, sock.perOp.get(k) ?? 0])
    .sort((x, y) => y[2] - y[1] - (x[2] - x[1]));
  out.push(
    '',
    'The 25 functions whose time grows most from raw to guarded:',
    '',
    '| # | function | where | raw µs/op | guarded µs/op | difference |',
    '|---:|---|---|---:|---:|---:|',
  );
  rows.slice(0, 25).forEach(([k, r, s], i) => {
    const [name, f, line] = k.split('|');
    out.push(
      `| ${i + 1} | \`${name}\` | ${f ? `${f}:${line}` : ''} | ${fmt(r)} | ${fmt(s)} | ${fmt(s - r)} |`,
    );
  });
}
const target = join(root, 'bench', 'results', 'profile-guarded-echo.md');
writeFileSync(target, `${out.join('\n')}\n`);
console.log(out.join('\n'));
