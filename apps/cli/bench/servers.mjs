// The servers the `sock listen` benchmark compares, each started as a user would start it, in its own
// process (tree): `sock listen` with every guard on, core's hand-written node:net server, a raw node:cluster,
// and HAProxy in front of the raw server. Each start() resolves with { port, cpuMs(), rssBytes(), stop() },
// where CPU and RSS are read from /proc for the whole process tree (primary and workers, HAProxy and its
// backend), so the server is charged for everything it runs.
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = (f) => fileURLToPath(new URL(f, import.meta.url));
const SOCK = here('../dist/index.js');
const RAW = here('../../../packages/core/bench/raw-server.mjs');
const RAW_CLUSTER = here('./raw-cluster.mjs');
/**
 * Descriptor limit for every server and load generator child (10,000 idle connections need more than the
 * usual 1024): 65,536, or the hard limit when that is lower (a container may not raise it).
 */
const hardNofile = Number(
  execFileSync('prlimit', ['--pid', String(process.pid), '--nofile', '--output=HARD', '--noheadings'], {
    encoding: 'utf8',
  }).trim(),
);
export const NOFILE = Number.isFinite(hardNofile) ? Math.min(65_536, hardNofile) : 65_536;
const TICK_MS = 10; // USER_HZ is 100 on Linux

/** Spawn under `prlimit --nofile` (it execs the command: the pid is the command's). */
export function spawnLimited(argv, options = {}) {
  return spawn('prlimit', [`--nofile=${NOFILE}:${NOFILE}`, '--', ...argv], options);
}

const stat = (pid) => {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(f[1]), cpuMs: (Number(f[11]) + Number(f[12])) * TICK_MS };
  } catch {
    return undefined;
  }
};

/** The pid and all its descendants, alive now. */
function tree(root) {
  const parents = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = stat(name);
    if (s) parents.set(Number(name), s.ppid);
  }
  const out = [root];
  for (let i = 0; i < out.length; i++) for (const [pid, ppid] of parents) if (ppid === out[i]) out.push(pid);
  return out;
}

const treeCpuMs = (roots) => roots.flatMap(tree).reduce((n, pid) => n + (stat(pid)?.cpuMs ?? 0), 0);
const treeRss = (roots) =>
  roots.flatMap(tree).reduce((n, pid) => {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      return n + (m ? Number(m[1]) * 1024 : 0);
    } catch {
      return n;
    }
  }, 0);

async function firstLine(child, what) {
  const rl = createInterface({ input: child.stdout });
  const exited = once(child, 'exit').then(([code]) => {
    throw new Error(`${what} exited (${code}) before it was ready`);
  });
  const line = (async () => {
    for await (const l of rl) return l;
    throw new Error(`${what} closed stdout before it was ready`);
  })();
  try {
    return JSON.parse(await Promise.race([line, exited]));
  } finally {
    exited.catch(() => {});
  }
}

async function stopChild(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await once(child, 'exit');
  clearTimeout(timer);
}

function handle(children, port, cleanup = () => {}) {
  const roots = children.map((c) => c.pid);
  return {
    port,
    cpuMs: () => treeCpuMs(roots),
    rssBytes: () => treeRss(roots),
    async stop() {
      for (const c of children) await stopChild(c);
      cleanup();
    },
  };
}

const stdio = ['ignore', 'pipe', 'inherit'];

/** Extra node flags for the servers (profile.mjs sets `--cpu-prof ...` here). */
const benchNodeArgs = () => process.env.SOCK_BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? [];

/** The deny list of the guarded server: 10,000 /24s that the load generator is never in. */
function denyFile(dir) {
  const lines = [];
  for (let i = 0; i < 10_000; i++) lines.push(`10.${(i >> 8) & 255}.${i & 255}.0/24`);
  const file = join(dir, 'deny.txt');
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

/**
 * `sock listen --framing length --echo` with every guard the CLI has: an IP deny list, connection limits,
 * connection and message rates high enough never to trip, idle and first-frame deadlines, strikes.
 */
export async function startSock({ workers } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'sock-bench-'));
  const args = [
    ...['listen', '127.0.0.1', '0', '--framing', 'length', '--echo', '--json'],
    ...['--denyfile', denyFile(dir), '--max-conns', '100000', '--max-conns-per-ip', '100000'],
    ...['--conn-rate', '10000000/s', '--msg-rate', '10000000/s'],
    ...['--idle-timeout', '1m', '--handshake-timeout', '10s', '--ban-after', '10'],
    ...(workers ? ['--workers', String(workers)] : []),
  ];
  const child = spawnLimited([process.execPath, ...benchNodeArgs(), SOCK, ...args], {
    stdio,
    env: { ...process.env, NO_COLOR: '1' },
  });
  const { port } = await firstLine(child, 'sock listen');
  return handle([child], port, () => rmSync(dir, { recursive: true, force: true }));
}

/** Core's hand-written node:net u32 echo server (one write per frame). */
export async function startRaw() {
  const child = spawnLimited([process.execPath, ...benchNodeArgs(), RAW], { stdio });
  const { port } = await firstLine(child, 'raw server');
  return handle([child], port);
}

/** The same raw server on `workers` node:cluster workers. */
export async function startRawCluster({ workers }) {
  const child = spawnLimited([process.execPath, RAW_CLUSTER, String(workers)], { stdio });
  const { port } = await firstLine(child, 'raw cluster');
  return handle([child], port);
}

async function freePort() {
  const s = createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

/**
 * HAProxy 2.6 (TCP mode) in front of the raw server, its guards a stick table per source IP: refuse
 * when conn_cur or conn_rate pass limits as high as the guarded server's.
 */
export async function startHaproxy() {
  const raw = await startRaw();
  const dir = mkdtempSync(join(tmpdir(), 'sock-bench-haproxy-'));
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const cfg = join(dir, 'haproxy.cfg');
    writeFileSync(
      cfg,
      `global
  maxconn ${Math.floor((NOFILE - 200) / 2)}
defaults
  mode tcp
  timeout connect 5s
  timeout client 1m
  timeout server 1m
frontend guarded
  bind 127.0.0.1:${port}
  stick-table type ip size 100k expire 60s store conn_cur,conn_rate(1s)
  tcp-request connection track-sc0 src
  tcp-request connection reject if { sc0_conn_cur gt 100000 } || { sc0_conn_rate gt 10000000 }
  default_backend echo
backend echo
  server raw 127.0.0.1:${raw.port}
`,
    );
    const child = spawnLimited(['/usr/sbin/haproxy', '-f', cfg, '-db'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d) => {
      err += d;
    });
    // Ready when it accepts on its port (it prints nothing on success).
    const up = await waitForPort(port, child);
    if (up) {
      const h = handle([child], port);
      return {
        ...h,
        cpuMs: () => h.cpuMs() + raw.cpuMs(),
        rssBytes: () => h.rssBytes() + raw.rssBytes(),
        async stop() {
          await h.stop();
          await raw.stop();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }
    await stopChild(child);
    if (attempt >= 3) {
      await raw.stop();
      throw new Error(`haproxy did not start: ${err.trim()}`);
    }
  }
}

async function waitForPort(port, child) {
  const { connect } = await import('node:net');
  for (let i = 0; i < 100 && child.exitCode === null; i++) {
    const ok = await new Promise((r) => {
      const s = connect({ port, host: '127.0.0.1' });
      s.once('connect', () => {
        s.destroy();
        r(true);
      });
      s.once('error', () => r(false));
    });
    if (ok) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}
