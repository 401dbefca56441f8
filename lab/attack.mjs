// pnpm bench:attack [--seconds 15] [--only slowloris,flood] [--targets guarded,plain]
// pnpm bench:attack cleanup        deletes namespaces left by an interrupted run (prefix "socklab-")
//
// Builds three network namespaces joined by veth pairs — a server host, an attacker host owning
// 10.67.0.0/16 (a local route: every address in it is the attacker's; 500 are used) and a legitimate
// client host — and runs each scenario against a guarded @sock/core + @sock/guards echo server and, side by
// side, a plain node:net echo server. Traffic never leaves these namespaces; nothing in the root namespace
// is touched. Root only; prints why and exits 0 otherwise. Writes bench/results/attack-lab.json.
import { execFile, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const here = fileURLToPath(new URL('.', import.meta.url));
const root = join(here, '..');
const args = process.argv.slice(2);
const opt = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const PREFIX = 'socklab-';
const IP = '/usr/sbin/ip';

const SCENARIOS = ['slowloris', 'flood', 'oversize', 'slowread', 'mix'];
const seconds = Math.min(60, Number(opt('--seconds', 15)));
const only = opt('--only', SCENARIOS.join(',')).split(',');
const targets = opt('--targets', 'guarded,plain').split(',');
// Guards' bans reach nftables in the server's namespace (the product's point); `--firewall none` to compare.
const firewallBackend = opt('--firewall', 'nft');
const TARGETS = { success: 99.9, p99Ratio: 3, rssMiB: 256 };

async function listOurs() {
  const { stdout } = await run(IP, ['netns', 'list']);
  return stdout
    .split('\n')
    .map((l) => l.split(' ')[0])
    .filter((n) => n?.startsWith(PREFIX));
}

async function cleanup(names) {
  for (const ns of names ?? (await listOurs())) {
    try {
      const { stdout } = await run(IP, ['netns', 'pids', ns]);
      for (const pid of stdout.split('\n').filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {}
      }
    } catch {}
    await run(IP, ['netns', 'delete', ns]).catch(() => {});
  }
}

function skip(reason) {
  console.log(`attack lab skipped: ${reason}`);
  process.exit(0);
}

if (args[0] === 'cleanup') {
  const names = await listOurs();
  await cleanup(names);
  console.log(`removed ${names.length} namespace(s): ${names.join(', ') || 'none'}`);
  process.exit(0);
}
if (process.getuid?.() !== 0) skip('needs root (network namespaces); run as root: sudo pnpm bench:attack');
for (const [bin, flag] of [
  [IP, '-V'],
  ['/usr/bin/prlimit', '--version'],
]) {
  try {
    await run(bin, [flag]);
  } catch {
    skip(`${bin} is not available`);
  }
}
for (const f of ['packages/core/dist/index.js', 'packages/guards/dist/index.js']) {
  try {
    readFileSync(join(root, f));
  } catch {
    skip(`${f} is missing: run pnpm build first`);
  }
}

// Raise the soft fd limit to the hard one (raising the hard limit needs CAP_SYS_RESOURCE).
const { stdout: hardOut } = await run('/usr/bin/prlimit', [
  '--pid',
  String(process.pid),
  '--nofile',
  '--raw',
  '--noheadings',
  '--output',
  'HARD',
]);
const hardFds = Number(hardOut.trim()) || 1024;
const NOFILE = `--nofile=${hardFds}:${hardFds}`;
if (hardFds < 12_000)
  console.error(`warning: the fd hard limit is ${hardFds}; slowloris needs ~6,000 per side`);

const id = process.pid.toString(36);
const ns = { srv: `${PREFIX}${id}-srv`, atk: `${PREFIX}${id}-atk`, cli: `${PREFIX}${id}-cli` };
const children = new Set();
let interrupted = false;
const onSignal = async (sig) => {
  if (interrupted) return;
  interrupted = true;
  console.error(`\n${sig}: stopping and removing namespaces`);
  for (const c of children) c.kill('SIGKILL');
  await cleanup(Object.values(ns));
  process.exit(130);
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

async function setup() {
  const ipn = (n, ...a) => run(IP, ['-n', n, ...a]);
  for (const n of Object.values(ns)) await run(IP, ['netns', 'add', n]);
  const [sa, as, sc, cs] = ['s0', 'a0', 's1', 'c0'].map((x) => `sl${id}${x}`.slice(0, 15));
  await run(IP, ['link', 'add', sa, 'netns', ns.srv, 'type', 'veth', 'peer', 'name', as, 'netns', ns.atk]);
  await run(IP, ['link', 'add', sc, 'netns', ns.srv, 'type', 'veth', 'peer', 'name', cs, 'netns', ns.cli]);
  for (const [n, dev, addr] of [
    [ns.srv, sa, '10.66.0.1/24'],
    [ns.atk, as, '10.66.0.2/24'],
    [ns.srv, sc, '10.68.0.1/24'],
    [ns.cli, cs, '10.68.0.2/24'],
  ]) {
    await ipn(n, 'addr', 'add', addr, 'dev', dev);
    await ipn(n, 'link', 'set', dev, 'up');
  }
  for (const n of Object.values(ns)) await ipn(n, 'link', 'set', 'lo', 'up');
  // The attacker owns all of 10.67.0.0/16 (AnyIP), the server routes it back through the attacker's veth.
  await ipn(ns.atk, 'route', 'add', 'local', '10.67.0.0/16', 'dev', 'lo');
  await ipn(ns.srv, 'route', 'add', '10.67.0.0/16', 'via', '10.66.0.2');
}

/** Spawn node in a namespace with a raised fd limit; resolves lines through `onLine`. */
function nodeIn(n, script, argv, onLine) {
  const child = spawn(
    IP,
    ['netns', 'exec', n, '/usr/bin/prlimit', NOFILE, process.execPath, join(here, script), ...argv],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  children.add(child);
  let buf = '';
  child.stdout.on('data', (d) => {
    buf += d;
    let i = buf.indexOf('\n');
    while (i >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line.startsWith('{')) onLine(JSON.parse(line));
      i = buf.indexOf('\n');
    }
  });
  const exited = new Promise((r) => child.on('exit', r)).then(() => children.delete(child));
  return { child, exited };
}

/** Run a bounded load process; resolves with its final JSON line. */
function load(n, argv, limitS) {
  let last;
  const p = nodeIn(n, 'load.mjs', argv, (o) => {
    last = o;
  });
  const kill = setTimeout(() => p.child.kill('SIGKILL'), (limitS + 15) * 1000);
  return p.exited.then(() => {
    clearTimeout(kill);
    return last;
  });
}

function rssMiB(pid) {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

async function scenario(target, name) {
  let ready;
  let stats;
  const readyP = new Promise((r) => {
    ready = r;
  });
  const fwArgs = target === 'guarded' ? ['--firewall', firewallBackend] : [];
  const srv = nodeIn(
    ns.srv,
    'server.mjs',
    [target, '--host', '0.0.0.0', '--port', '7000', ...fwArgs],
    (o) => {
      if (o.ready) ready(o);
      if (o.stats) stats = o.stats;
    },
  );
  const info = await Promise.race([
    readyP,
    new Promise((_, j) => setTimeout(() => j(new Error('server not ready')), 15_000)),
  ]);
  const rss = [rssMiB(info.pid)];
  const sampler = setInterval(() => rss.push(rssMiB(info.pid)), 500);
  const legitArgs = ['legit', '--host', '10.68.0.1', '--port', '7000'];
  let attack;
  let legit;
  if (name === 'baseline') {
    legit = await load(ns.cli, [...legitArgs, '--seconds', String(Math.max(5, seconds - 5))], seconds);
  } else {
    const a = load(
      ns.atk,
      [
        'attack',
        '--host',
        '10.66.0.1',
        '--port',
        '7000',
        '--seconds',
        String(seconds),
        '--kind',
        name,
        '--sources',
        '10.67.0.0/16:500',
      ],
      seconds,
    );
    await new Promise((r) => setTimeout(r, 3000));
    legit = await load(ns.cli, [...legitArgs, '--seconds', String(seconds - 5)], seconds);
    attack = await a;
  }
  clearInterval(sampler);
  srv.child.stdin.end();
  srv.child.kill('SIGTERM');
  const hard = setTimeout(() => srv.child.kill('SIGKILL'), 5000);
  await srv.exited;
  clearTimeout(hard);
  const total = (legit?.ok ?? 0) + (legit?.fail ?? 0);
  return {
    target,
    scenario: name,
    success: total ? (100 * legit.ok) / total : 0,
    requests: total,
    p50: legit?.p50,
    p99: legit?.p99,
    errors: legit?.errors,
    rssStartMiB: rss[0],
    rssPeakMiB: Math.max(...rss),
    attack,
    server: stats,
  };
}

const started = Date.now();
const rows = [];
try {
  await cleanup(); // leftovers of an earlier interrupted run
  await setup();
  for (const target of targets) {
    for (const name of ['baseline', ...only]) {
      if (interrupted) break;
      process.stderr.write(`attack lab: ${target} / ${name} ...\n`);
      try {
        rows.push(await scenario(target, name));
      } catch (err) {
        // One broken scenario (a server that did not start) must not lose the others' results.
        console.error(`attack lab: ${target} / ${name} failed: ${err.message}`);
        for (const c of children) c.kill('SIGKILL');
        rows.push({ target, scenario: name, success: 0, requests: 0, error: err.message });
      }
    }
  }
} finally {
  for (const c of children) c.kill('SIGKILL');
  await cleanup(Object.values(ns));
}

const fmt = (n, d = 1) => (n === undefined || n === null ? '-' : Number(n).toFixed(d));
const base = Object.fromEntries(rows.filter((r) => r.scenario === 'baseline').map((r) => [r.target, r]));
const line = (cells) => `| ${cells.join(' | ')} |`;
const table = [
  line([
    'target',
    'scenario',
    'legit ok %',
    'requests',
    'p50 ms',
    'p99 ms',
    'p99 / no-attack',
    'RSS start→peak MiB',
    'attack: opened / refused / max open',
  ]),
  line(Array(9).fill('---')),
];
for (const r of rows) {
  const ratio = r.p99 && base[r.target]?.p99 ? r.p99 / base[r.target].p99 : undefined;
  table.push(
    line([
      r.target,
      r.scenario,
      fmt(r.success, 2),
      r.requests,
      fmt(r.p50, 2),
      fmt(r.p99, 2),
      fmt(ratio, 2),
      `${fmt(r.rssStartMiB, 0)}→${fmt(r.rssPeakMiB, 0)}`,
      r.attack ? `${r.attack.opened} / ${r.attack.refused} / ${r.attack.maxOpen}` : '',
    ]),
  );
}
console.log(table.join('\n'));

const results = [];
for (const r of rows.filter((x) => x.target === 'guarded' && x.scenario !== 'baseline')) {
  const plain = rows.find((x) => x.target === 'plain' && x.scenario === r.scenario);
  const b = base.guarded;
  results.push(
    {
      name: `${r.scenario}: legitimate success, guarded (baseline: plain server)`,
      unit: '%',
      baseline: plain?.success,
      value: r.success,
      target: TARGETS.success,
      targetKind: 'min',
      met: r.success >= TARGETS.success,
    },
    {
      name: `${r.scenario}: p99 latency, guarded (baseline: its no-attack p99)`,
      unit: 'ms',
      baseline: b?.p99,
      value: r.p99,
      ratio: r.p99 && b?.p99 ? r.p99 / b.p99 : undefined,
      target: TARGETS.p99Ratio,
      targetKind: 'max',
      met: !!(r.p99 && b?.p99 && r.p99 / b.p99 <= TARGETS.p99Ratio),
    },
    {
      name: `${r.scenario}: peak server RSS, guarded (baseline: plain server)`,
      unit: 'MiB',
      baseline: plain?.rssPeakMiB,
      value: r.rssPeakMiB,
      target: TARGETS.rssMiB,
      targetKind: 'max',
      met: r.rssPeakMiB <= TARGETS.rssMiB,
    },
  );
}
const out = {
  package: 'attack-lab',
  seconds: (Date.now() - started) / 1000,
  scenarioSeconds: seconds,
  date: new Date().toISOString(),
  results,
  rows,
};
writeFileSync(join(root, 'bench', 'results', 'attack-lab.json'), `${JSON.stringify(out, null, 2)}\n`);
console.log(
  `\nwritten bench/results/attack-lab.json (${results.filter((r) => r.met).length}/${results.length} targets met) in ${Math.round(out.seconds)} s`,
);
